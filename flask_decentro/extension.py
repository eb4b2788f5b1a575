"""The ``Decentro`` Flask extension: configuration, the service, the limiter and the blueprint."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask

from decentro_adapters.bootstrap import build
from decentro_core.errors import ConfigurationError
from decentro_core.events import Handler
from decentro_core.service import BlockingDecentroService
from decentro_core.settings import Settings
from decentro_core.webhooks import WebhookProcessor

from .config import FlaskOptions, merged_mapping
from .limiting import build_limiter, check_limits
from .metrics import MetricsAccess, check_metrics_endpoint, mount_metrics
from .routes import create_blueprint
from .signals import connect_dispatcher
from .state import DecentroState, Identity, Operator, get_service, get_state

__all__ = ["Decentro"]

log = logging.getLogger("flask_decentro")


class Decentro:
    """KYC, payments and Decentro callbacks for a Flask application.

    ``Decentro(app)`` or ``decentro = Decentro(); decentro.init_app(app)``. Options given here
    (``use_mocks=False`` or ``DECENTRO_URL_PREFIX="/kyc-api"``) win over ``app.config``, which
    wins over the environment. ``identity`` returns the signed-in user's id; it is required in
    live mode. ``operator`` returns ``True`` when the visitor may use the operator console
    (``lambda: current_user.is_admin``): given, the console is mounted at
    ``DECENTRO_CONSOLE_PREFIX`` (:mod:`flask_decentro.console`); not given, there is none.
    ``service`` replaces the service built from settings (tests, custom ports); ``cache`` picks
    one ``flask_caching.Cache`` when the app has several; ``metrics_access`` guards the
    ``DECENTRO_METRICS_ENDPOINT`` scrape endpoint (a callable; false answers 403).
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        identity: Identity | None = None,
        operator: Operator | None = None,
        service: BlockingDecentroService | None = None,
        cache: Any = None,
        metrics_access: MetricsAccess | None = None,
        **overrides: Any,
    ) -> None:
        self._identity = identity
        self._operator = operator
        self._metrics_access = metrics_access
        self._service = service
        self._flask_cache = cache
        self._overrides = overrides
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the configuration, build the service and mount the blueprint."""
        mapping = merged_mapping(self._overrides, app.config)
        settings = Settings.from_mapping(mapping).check()
        options = FlaskOptions.from_mapping(mapping)
        if not settings.use_mocks and self._identity is None:
            raise ConfigurationError(
                "Live mode (USE_MOCKS=false) needs Decentro(identity=...): a callable returning "
                "the signed-in user's id; reading user_id from the request body is for demos only"
            )
        _check_payee(self._service.settings if self._service is not None else settings, options)
        _check_console(app, self._operator, options)
        check_limits(options, settings, self._identity)
        check_metrics_endpoint(options.metrics_endpoint, settings)
        if self._service is None:
            system = build(settings, **self._cache_port(app))
            service, webhooks, close = system.service, system.webhooks, system.close
        else:  # the host app's service (and its closing); callbacks follow this app's settings
            service, close = self._service, _nothing
            ports = service.ports
            webhooks = WebhookProcessor.from_settings(settings, records=ports.records, vault=ports.vault,
                                                      audit=ports.audit, clock=service.clock, events=service.events,
                                                      instruments=ports.instruments)
        connect_dispatcher(service.events, app)
        state = DecentroState(
            settings=settings, options=options, service=service, webhooks=webhooks,
            limiter=build_limiter(app, options, settings, identity=self._identity), identity=self._identity, close=close, operator=self._operator,
        )
        app.extensions["decentro"] = state
        app.register_blueprint(create_blueprint(state), url_prefix=options.url_prefix or None)
        if self._operator is not None:
            from .console import create_console_blueprint

            app.register_blueprint(create_console_blueprint(state), url_prefix=options.console_prefix)
        _exempt_from_host_csrf(app)
        if options.metrics_endpoint:
            mount_metrics(app, options.metrics_endpoint, settings=settings, instruments=service.ports.instruments,
                          access=self._metrics_access)

    def _cache_port(self, app: Flask) -> dict[str, Any]:
        """The host app's flask-caching backend as the cache port, when it has one."""
        backends = app.extensions.get("cache") or {}
        if self._flask_cache is not None:
            backend = backends.get(self._flask_cache)
        else:
            backend = next(iter(backends.values())) if len(backends) == 1 else None
        if backend is None:
            return {}
        from decentro_adapters.cache.cachelib_cache import FlaskCachingCache

        log.info("Decentro caches KYC results in the app's flask-caching backend")
        # The backend itself, not the Cache proxy, so it works outside a request too.
        return {"cache": FlaskCachingCache(backend)}

    @property
    def service(self) -> BlockingDecentroService:
        """The current app's ``BlockingDecentroService``."""
        return get_service()

    def on(self, event_type: str, handler: Handler | None = None, *, name: str | None = None) -> Any:
        """Register an outcome-event handler (``@decentro.on("payment.succeeded")``) on the
        current app's service: see :meth:`BlockingDecentroService.on`. Needs an app context
        (or use ``flask_decentro.signals``, which needs none)."""
        return get_service().events.on(event_type, handler, name=name)

    @property
    def state(self) -> DecentroState:
        return get_state()


def _check_payee(settings: Settings, options: FlaskOptions) -> None:
    """Live payments need the account they are paid into: refused at start-up, not at the
    first customer's payment (mock mode pays the emulator's own account)."""
    if options.payments_enabled and not settings.use_mocks and not settings.payee_account:
        raise ConfigurationError(
            "Live mode takes UPI payments at POST /payments and needs DECENTRO_PAYEE_ACCOUNT (your "
            "Decentro virtual account); set it, or DECENTRO_PAYMENTS_ENABLED=false to leave the "
            "payment routes out"
        )


def _check_console(app: Flask, operator: Operator | None, options: FlaskOptions) -> None:
    """The console's settings, checked before anything is built."""
    if operator is None:
        return
    if not callable(operator):
        raise ConfigurationError("Decentro(operator=...) takes a callable returning True for an operator")
    if not app.config.get("SECRET_KEY"):
        raise ConfigurationError("The operator console keeps its form token in the session: set the app's SECRET_KEY")
    if not options.console_prefix.startswith("/") or options.console_prefix == "/":
        raise ConfigurationError("DECENTRO_CONSOLE_PREFIX must be a path below / (such as /decentro/console)")
    if not 1 <= options.console_page_size <= 500:
        raise ConfigurationError("DECENTRO_CONSOLE_PAGE_SIZE must be between 1 and 500")


# The API authenticates callbacks by HMAC, and its JSON routes need a Content-Type no cross-site
# form can send (a form upload checks Fetch Metadata itself); the console checks its own token.
# A host's Flask-WTF CSRFProtect would refuse them all for want of its token field.
_OWN_CSRF_DEFENCE = ("decentro", "decentro_console")


def _exempt_from_host_csrf(app: Flask) -> None:
    """Exempt the blueprints from Flask-WTF's ``CSRFProtect``, whether the host sets it up before
    ``Decentro(app)`` or after (then on the first request, before its check runs)."""
    done = False

    def exempt() -> None:
        nonlocal done
        csrf = app.extensions.get("csrf")
        if done or csrf is None or not callable(getattr(csrf, "exempt", None)):
            return
        for name in _OWN_CSRF_DEFENCE:
            if name in app.blueprints:
                csrf.exempt(app.blueprints[name])
        done = True

    exempt()
    # First of the app's before-request functions, so it runs ahead of CSRFProtect's check.
    app.before_request_funcs.setdefault(None, []).insert(0, exempt)


def _nothing() -> None:
    """A service the host app built is the host app's to close."""
