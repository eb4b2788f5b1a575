"""What one application's extension holds, and how views and commands reach it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app
from flask_limiter import Limiter

from decentro_core.service import BlockingDecentroService
from decentro_core.settings import Settings
from decentro_core.webhooks import WebhookProcessor

from .config import FlaskOptions

__all__ = ["DecentroState", "Identity", "Operator", "get_service", "get_state"]

Identity = Callable[[], "str | None"]
Operator = Callable[[], bool]


@dataclass
class DecentroState:
    """One application's extension state, in ``app.extensions["decentro"]``."""

    settings: Settings
    options: FlaskOptions
    service: BlockingDecentroService
    webhooks: WebhookProcessor
    limiter: Limiter
    identity: Identity | None
    close: Callable[[], None]
    operator: Operator | None = None  # the host app's check for the operator console (None: no console)


def get_state(app: Flask | None = None) -> DecentroState:
    """The extension state of ``app`` (default: ``current_app``)."""
    target = app if app is not None else current_app
    try:
        state: DecentroState = target.extensions["decentro"]
    except KeyError:
        raise RuntimeError("Decentro is not initialised on this app: call Decentro(app)") from None
    return state


def get_service(app: Flask | None = None) -> BlockingDecentroService:
    """The application's ``BlockingDecentroService``: every KYC, payment and notification call."""
    return get_state(app).service
