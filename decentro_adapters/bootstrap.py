"""The composition root: builds every port the caller did not give, from settings.

Mock mode (``USE_MOCKS=true``, the default) answers from the in-process emulator; live mode
talks to Decentro. Both use the same vault, stores and cache, so mock mode exercises the
real code path everywhere but the wire.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from decentro_core.memory import MemoryCache
from decentro_core.settings import Settings

__all__ = ["PORTS", "build_ports", "build_service"]

log = logging.getLogger("decentro")
PORTS = ("gateway", "cache", "vault", "audit", "consents", "records", "aadhaar_verifier")
STORE_PORTS = ("consents", "audit", "records")


def build_ports(settings: Settings, **given: Any) -> tuple[dict[str, Any], list[Callable[[], None]]]:
    """Every port, the given ones untouched; and the close functions of what was opened here."""
    ports: dict[str, Any] = {name: given.get(name) for name in PORTS}
    closers: list[Callable[[], None]] = []

    def fill(name: str, build: Callable[[], Any]) -> None:
        if ports[name] is None:
            ports[name] = build()
            if callable(getattr(ports[name], "close", None)):
                closers.append(ports[name].close)

    fill("gateway", lambda: _gateway(settings))
    fill("vault", lambda: _vault(settings))
    if any(ports[name] is None for name in STORE_PORTS):
        from .sql.stores import open_stores

        stores = open_stores(settings.database_url, vault=ports["vault"])
        closers.append(stores.close)
        for name in STORE_PORTS:
            fill(name, functools.partial(getattr, stores, name))
    fill("cache", lambda: _cache(settings))
    fill("aadhaar_verifier", lambda: _aadhaar_verifier(settings))
    return ports, closers


def build_service(settings: Settings | None = None, **given: Any) -> Any:
    """A :class:`~decentro_core.service.BlockingDecentroService` with every port built."""
    from decentro_core.service import BlockingDecentroService

    return BlockingDecentroService(settings, **given)


def _vault(settings: Settings) -> Any:
    from .vault.fernet import FernetVault

    return FernetVault.from_settings(settings)


def _gateway(settings: Settings) -> Any:
    if settings.use_mocks:
        from .gateway.mock import MockGateway

        return MockGateway()
    from .gateway.live import RequestsGateway

    return RequestsGateway(settings)


def _cache(settings: Settings) -> Any:
    if settings.cache_url:
        from .cache.redis_cache import RedisCache

        return RedisCache(settings.cache_url)
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
