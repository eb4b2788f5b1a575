"""The ``Decentro`` Flask extension: configuration, the service, the limiter and the blueprint."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from flask import Flask, current_app
from flask_limiter import Limiter

from decentro_core.errors import ConfigurationError
from decentro_core.settings import Settings
from decentro_core.webhooks import WebhookProcessor

from .config import DEMO_WEBHOOK_SECRET, FlaskOptions, merged_mapping
from .limiting import build_limiter

__all__ = ["Decentro", "DecentroState", "get_service", "get_state"]

log = logging.getLogger("flask_decentro")

Identity = Callable[[], "str | None"]


@dataclass
class DecentroState:
    """What one application's extension holds, in ``app.extensions["decentro"]``."""

    settings: Settings
    options: FlaskOptions
    service: Any
    webhooks: WebhookProcessor
    limiter: Limiter
    identity: Identity | None


def get_state(app: Flask | None = None) -> DecentroState:
    """The extension state of ``app`` (default: ``current_app``)."""
    target = app if app is not None else current_app
    try:
        state: DecentroState = target.extensions["decentro"]
    except KeyError:
        raise RuntimeError("Decentro is not initialised on this app: call Decentro(app)") from None
    return state


def get_service(app: Flask | None = None) -> Any:
    """The application's ``BlockingDecentroService``: every KYC, payment and notification call."""
    return get_state(app).service


class Decentro:
    """KYC, payments and Decentro callbacks for a Flask application.

    ``Decentro(app)`` or ``decentro = Decentro(); decentro.init_app(app)``. Options given here
    (``use_mocks=False`` or ``DECENTRO_URL_PREFIX="/kyc-api"``) win over ``app.config``, which
    wins over the environment. ``identity`` returns the signed-in user's id; it is required in
    live mode. ``service`` replaces the service built from settings (tests, custom ports);
    ``cache`` picks one ``flask_caching.Cache`` when the app has several.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        identity: Identity | None = None,
        service: Any = None,
        cache: Any = None,
        **overrides: Any,
    ) -> None:
        self._identity = identity
        self._service = service
        self._flask_cache = cache
        self._overrides = overrides
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the configuration, build the service and mount the blueprint."""
        from .routes import create_blueprint

        mapping = merged_mapping(self._overrides, app.config)
        settings = Settings.from_mapping(mapping).check()
        options = FlaskOptions.from_mapping(mapping)
        if not settings.use_mocks and self._identity is None:
            raise ConfigurationError(
                "Live mode (USE_MOCKS=false) needs Decentro(identity=...): a callable returning "
                "the signed-in user's id; reading user_id from the request body is for demos only"
            )
        settings = _with_webhook_secret(settings, options)
        service = self._service or _build_service(settings, cache=self._cache_port(app))
        state = DecentroState(
            settings=settings,
            options=options,
            service=service,
            webhooks=_build_webhooks(service, settings, options),
            limiter=build_limiter(app, options),
            identity=self._identity,
        )
        app.extensions["decentro"] = state
        app.register_blueprint(create_blueprint(state), url_prefix=options.url_prefix or None)

    def _cache_port(self, app: Flask) -> Any:
        """The host app's flask-caching backend as the cache port, when it has one."""
        backends = app.extensions.get("cache") or {}
        if self._flask_cache is not None:
            backend = backends.get(self._flask_cache)
        else:
            backend = next(iter(backends.values())) if len(backends) == 1 else None
        if backend is None:
            return None
        from decentro_adapters.cache.cachelib_cache import FlaskCachingCache

        log.info("Decentro caches KYC results in the app's flask-caching backend")
        # The backend itself, not the Cache proxy, so it works outside a request too.
        return FlaskCachingCache(backend)

    @property
    def service(self) -> Any:
        """The current app's ``BlockingDecentroService``."""
        return get_service()

    @property
    def state(self) -> DecentroState:
        return get_state()


def _with_webhook_secret(settings: Settings, options: FlaskOptions) -> Settings:
    if settings.webhook_secrets or not options.webhook_require_signature:
        return settings
    if not settings.use_mocks:
        raise ConfigurationError(
            "DECENTRO_WEBHOOK_SECRET is empty: set it, or set DECENTRO_WEBHOOK_REQUIRE_SIGNATURE=false "
            "and protect callbacks with DECENTRO_WEBHOOK_CREDENTIAL or DECENTRO_WEBHOOK_ALLOWED_IPS"
        )
    log.warning(
        "DECENTRO_WEBHOOK_SECRET is not set: mock mode uses the PUBLIC demo secret %r. "
        "Anyone can sign callbacks with it. Never use it in production.",
        DEMO_WEBHOOK_SECRET,
    )
    return replace(settings, webhook_secrets=(DEMO_WEBHOOK_SECRET,))


def _build_webhooks(service: Any, settings: Settings, options: FlaskOptions) -> WebhookProcessor:
    return WebhookProcessor(
        service.records,
        service.vault,
        service.audit,
        secrets=settings.webhook_secrets,
        require_signature=options.webhook_require_signature,
        credential=options.webhook_credential or None,
        allowed_ips=options.webhook_allowed_ips,
        max_bytes=options.webhook_max_bytes,
        stale_after=timedelta(seconds=options.webhook_stale_after),
        clock=service.clock,
    )


def _build_service(settings: Settings, *, cache: Any) -> Any:
    from decentro_adapters.bootstrap import build_service

    return build_service(settings, cache=cache)
