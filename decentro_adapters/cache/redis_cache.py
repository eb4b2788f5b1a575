"""The production :class:`~decentro_core.ports.Cache`: Redis, with a cross-process lock.

Every key lives under ``prefix`` (``decentro:`` by default), so one Redis can serve several
applications. :meth:`RedisCache.lock` is redis-py's token lock: it is released only by its
holder. Its lease is short (``lock_lease``, 5 s) and renewed by the holder while it works, so
a worker killed while holding it blocks the next caller for one lease at most, not for the
longest call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

import redis
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from decentro_core.errors import CacheUnavailable, StoreError

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
        lock_lease: float = 5.0,
        socket_timeout: float = 1.0,
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
        if not won:
            yield False
            return
        done = threading.Event()
        renewer = threading.Thread(target=_renew, args=(lock, self._lease, done), daemon=True,
                                   name="decentro-lock-renewal")
        renewer.start()
        try:
            yield True
        finally:
            done.set()  # the renewal thread stops at its next wake-up; nobody waits for it
            _release(lock)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RedisCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _renew(lock: Lock, lease: float, done: threading.Event) -> None:
    """Reset the lease to its full length every third of it, until the holder is done."""
    while not done.wait(lease / 3):
        try:
            lock.reacquire()
        except (LockError, RedisError):
            if not done.is_set():  # after release a failed renewal is expected, not news
                _log.warning("A cache lock could not be renewed; another caller may go ahead")
            return


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
        raise CacheUnavailable(f"Cache operation failed ({type(exc).__name__})") from exc
