"""The composition root: the one place that builds ports from settings.

``build(settings)`` returns the service, its webhook processor and one ``close()``; the Flask
extension, the CLI, ``bench/``, the examples and the tests use it. ``build_ports`` is what
``decentro_core``'s zero-argument ``DecentroService()`` calls (through
``decentro_core.defaults``). Mock mode (``USE_MOCKS=true``, the default) answers from the
in-process emulator; live mode talks to Decentro. Both use the same vault, stores and cache,
so mock mode exercises the real code path everywhere but the wire. The ``instruments`` port
is the library's log lines, plus Prometheus metrics (``DECENTRO_METRICS=prometheus``) and
OpenTelemetry spans (``DECENTRO_TRACING=otel``) when asked for.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from decentro_core.audit import AuditKeyring
from decentro_core.errors import ConfigurationError
from decentro_core.memory import MemoryCache
from decentro_core.observability import LOG_INSTRUMENTS, FanOut, Instruments
from decentro_core.ports import Ports
from decentro_core.service import BlockingDecentroService
from decentro_core.settings import Settings
from decentro_core.webhooks import WebhookProcessor

__all__ = ["System", "build", "build_ports", "instruments_from_settings"]

log = logging.getLogger("decentro")
PORT_NAMES = tuple(f.name for f in fields(Ports))
STORE_PORTS = ("consents", "audit", "records")
SERVICE_OPTIONS = ("clock", "new_reference_id", "sleep", "rng", "monotonic")


@dataclass
class System:
    """What :func:`build` hands back: the service, its webhook processor, and ``close()``."""

    service: BlockingDecentroService
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def webhooks(self) -> WebhookProcessor:
        """Built on first use, so a script that never receives callbacks needs no webhook secret."""
        return self.service.webhooks

    def close(self) -> None:
        """Close everything :func:`build` opened, last opened first (once)."""
        while self._closers:
            self._closers.pop()()

    def __enter__(self) -> System:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def build(settings: Settings | None = None, **given: Any) -> System:
    """The service and its webhook processor. ``given`` may hold any port by name (kept as
    given, never closed here) and the service's ``clock``, ``new_reference_id``, ``sleep``, ``rng``."""
    settings = (settings or Settings.from_env()).check()
    options = {name: given.pop(name) for name in SERVICE_OPTIONS if name in given}
    unknown = set(given) - set(PORT_NAMES)
    if unknown:
        raise TypeError(f"unknown ports: {sorted(unknown)}")
    ports, close = build_ports(settings, **given)
    service = BlockingDecentroService(settings, ports, **options)
    return System(service=service, _closers=[close])


def build_ports(settings: Settings, **given: Any) -> tuple[Ports, Callable[[], None]]:
    """Every port, the given ones untouched, and one function closing what was opened here."""
    built: dict[str, Any] = {name: given.get(name) for name in PORT_NAMES}
    closers: list[Callable[[], None]] = []

    def fill(name: str, build_one: Callable[[], Any]) -> None:
        if built[name] is None:
            built[name] = build_one()
            if callable(getattr(built[name], "close", None)):
                closers.append(built[name].close)

    def close() -> None:
        while closers:
            closers.pop()()

    try:
        fill("instruments", lambda: instruments_from_settings(settings))
        fill("gateway", lambda: _gateway(settings))
        fill("vault", lambda: _vault(settings))
        if any(built[name] is None for name in STORE_PORTS):
            from .sql.audit import PeeweeAuditSink
            from .sql.stores import open_stores

            # DECENTRO_AUDIT_KEYS is read before connecting, so a bad key leaves nothing open
            keyring = AuditKeyring.from_settings(settings) if built["audit"] is None else None
            stores = open_stores(settings.database_url, vault=built["vault"])
            closers.append(stores.close)
            if keyring is not None:
                built["audit"] = PeeweeAuditSink(stores.database, stores.models, keyring)
            for name in STORE_PORTS:
                if built[name] is None:
                    built[name] = getattr(stores, name)
        fill("cache", lambda: _cache(settings, built["instruments"]))
        fill("aadhaar_verifier", lambda: _aadhaar_verifier(settings))
    except BaseException:
        close()  # what was opened before the failure (HTTP pool, database) is not left open
        raise
    return Ports(**built), close


def instruments_from_settings(settings: Settings) -> Instruments:
    """Log lines always; Prometheus metrics and OpenTelemetry spans when the settings ask."""
    members: list[Instruments] = [LOG_INSTRUMENTS]
    try:
        if settings.metrics == "prometheus":
            from .observability.prometheus import PrometheusInstruments

            members.append(PrometheusInstruments())
        if settings.tracing == "otel":
            from .observability.otel import OpenTelemetryInstruments

            members.append(OpenTelemetryInstruments())
    except ImportError as exc:
        extra = "metrics" if settings.metrics and "prometheus" in str(exc.name) else "otel"
        raise ConfigurationError(f"DECENTRO_METRICS/DECENTRO_TRACING: {exc.name} is not installed; "
                                 f"pip install 'flask-decentro[{extra}]'") from None
    return members[0] if len(members) == 1 else FanOut(members)


def _vault(settings: Settings) -> Any:
    from .vault.fernet import FernetVault

    return FernetVault.from_settings(settings)


def _gateway(settings: Settings) -> Any:
    if settings.use_mocks:
        from .gateway.mock import MockGateway

        return MockGateway()
    from .gateway.live import RequestsGateway

    return RequestsGateway(settings)


def _cache(settings: Settings, instruments: Instruments | None = None) -> Any:
    if settings.cache_url:
        from .cache.redis_cache import RedisCache

        # A short timeout and in-process work while Redis is unreachable (when the cache may
        # fail open): a host cut from Redis still answers quickly and verifies a document once.
        return RedisCache(settings.cache_url, socket_timeout=settings.redis_timeout,
                          cooldown=settings.redis_cooldown, local_fallback=settings.cache_fail_open,
                          instruments=instruments)
    if not settings.use_mocks:
        log.warning("decentro: DECENTRO_CACHE_URL is not set; using an in-memory cache that is not shared "
                    "between processes (a document may be verified, and billed, once per process)")
    return MemoryCache()


def _aadhaar_verifier(settings: Settings) -> Any:
    if settings.use_mocks:
        from .aadhaar.mock import MockAadhaarVerifier

        return MockAadhaarVerifier()
    from .aadhaar.offline import UidaiOfflineVerifier

    return UidaiOfflineVerifier.from_settings(settings)
