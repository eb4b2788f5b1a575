"""A :class:`~decentro_core.ports.Cache` over a cachelib backend or a Flask-Caching ``Cache``.

Both expose ``get``, ``set(key, value, timeout=...)`` and ``delete``, so one adapter serves
both: ``CachelibCache(cachelib.FileSystemCache(...))`` or ``FlaskCachingCache(cache)`` with
the application's ``flask_caching.Cache``. Their APIs have no owner-checked lock, so
:meth:`CachelibCache.lock` is local to this process: single flight holds between the threads
of one worker only. Use :class:`~decentro_adapters.cache.redis_cache.RedisCache` when several
processes must share it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from decentro_core.errors import CacheUnavailable
from decentro_core.memory import KeyedLocks

__all__ = ["CachelibCache", "FlaskCachingCache"]


class _Backend(Protocol):
    def get(self, key: str) -> Any: ...

    def set(self, key: str, value: Any, timeout: int | None = None) -> Any: ...

    def delete(self, key: str) -> Any: ...


class CachelibCache:
    """Bytes by key with a TTL in any cachelib-style backend; the lock is per process."""

    def __init__(self, backend: _Backend, *, prefix: str = "decentro:") -> None:
        self.backend = backend
        self.prefix = prefix
        self._locks = KeyedLocks()  # an entry per key only while it is held or waited for

    def get(self, key: str) -> bytes | None:
        value = self._call(self.backend.get, self.prefix + key)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, *, ttl: int) -> None:
        if ttl <= 0:  # cachelib reads timeout=0 as "never expires": the opposite of what we mean
            self._call(self.backend.delete, self.prefix + key)
        else:
            self._call(self.backend.set, self.prefix + key, value, timeout=ttl)

    def delete(self, key: str) -> None:
        self._call(self.backend.delete, self.prefix + key)

    def lock(self, key: str, *, timeout: float) -> AbstractContextManager[bool]:
        return self._locks.hold(key, timeout=timeout)

    @staticmethod
    def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as exc:  # backends raise their drivers' errors: none may leak out
            raise CacheUnavailable(f"Cache operation failed ({type(exc).__name__})") from exc


FlaskCachingCache = CachelibCache
"""``FlaskCachingCache(cache)`` for the application's ``flask_caching.Cache`` object."""
