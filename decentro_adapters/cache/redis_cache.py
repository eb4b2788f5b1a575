"""The production :class:`~decentro_core.ports.Cache`: Redis, with a cross-process lock.

Every key lives under ``prefix`` (``decentro:`` by default), so one Redis can serve several
applications. :meth:`RedisCache.lock` is redis-py's token lock: it is released only by its
holder, and expires after ``lock_lease`` seconds if the holder dies, so a crashed worker
cannot block a key for ever.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from decentro_core.errors import StoreError

__all__ = ["RedisCache"]

_log = logging.getLogger(__name__)


class RedisCache:
    """Bytes by key with a TTL in Redis; ``lock`` gives single flight across processes.

    >>> cache = RedisCache("redis://127.0.0.1:6379/0")   # doctest: +SKIP
    >>> with cache.lock("kyc:pan:abc", timeout=10) as won:  # doctest: +SKIP
    ...     ...
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "decentro:",
        lock_lease: float = 60.0,
        socket_timeout: float = 5.0,
        client: redis.Redis | None = None,
    ) -> None:
        self.prefix = prefix
        self._lease = lock_lease
        try:
            self._client = client or redis.Redis.from_url(
                url, socket_connect_timeout=socket_timeout, socket_timeout=socket_timeout
            )
        except (ValueError, RedisError) as exc:
            raise StoreError("The cache URL is not a valid redis:// URL") from exc

    def get(self, key: str) -> bytes | None:
        with _store_errors():
            value = self._client.get(self.prefix + key)
        if value is None or isinstance(value, bytes):
            return value
        return str(value).encode()  # only when the caller's client decodes responses

    def set(self, key: str, value: bytes, *, ttl: int) -> None:
        with _store_errors():
            if ttl <= 0:  # already expired: like the memory cache, it is simply not there
                self._client.delete(self.prefix + key)
            else:
                self._client.set(self.prefix + key, value, ex=ttl)

    def delete(self, key: str) -> None:
        with _store_errors():
            self._client.delete(self.prefix + key)

    @contextmanager
    def lock(self, key: str, *, timeout: float) -> Iterator[bool]:
        """Wait up to ``timeout`` seconds for the lock on ``key``; yield whether it was won."""
        lock = self._client.lock(self.prefix + "lock:" + key, timeout=self._lease, thread_local=False)
        with _store_errors():
            won = bool(lock.acquire(blocking=True, blocking_timeout=max(timeout, 0.0)))
        try:
            yield won
        finally:
            if won:
                _release(lock)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RedisCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _release(lock: Lock) -> None:
    try:
        lock.release()
    except LockError:
        # The lease ran out while we held it; another process may hold it now, and it is theirs.
        _log.warning("A cache lock outlived its lease; raise lock_lease above the slowest call")
    except RedisError:
        _log.warning("Could not release a cache lock; it expires with its lease", exc_info=True)


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StoreError(f"Cache operation failed ({type(exc).__name__})") from exc
