"""The Flask tests' application factory: in-memory ports, the mock gateway, a fresh limiter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask_helpers import WEBHOOK_SECRET, build_service

from decentro_core.service import BlockingDecentroService
from flask_decentro import Decentro


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """``make_app(**decentro_options)``: a fresh app with its own service and limiter."""

    def factory(*, config: dict[str, Any] | None = None, **options: Any) -> Flask:
        app = Flask("decentro_test")
        app.config.update({"TESTING": True, **(config or {})})
        options.setdefault("service", build_service())
        options.setdefault("DECENTRO_WEBHOOK_SECRET", WEBHOOK_SECRET)
        Decentro(app, **options)
        return app

    return factory


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Iterator[Any]:
    with app.test_client() as test_client:
        yield test_client


@pytest.fixture
def service(app: Flask) -> BlockingDecentroService:
    return app.extensions["decentro"].service  # type: ignore[no-any-return]
