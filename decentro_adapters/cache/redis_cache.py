"""The production :class:`~decentro_core.ports.Cache`: Redis, with a cross-process lock.

Every key lives under ``prefix`` (``decentro:`` by default), so one Redis can serve several
applications. :meth:`RedisCache.lock` is a token lock (``SET NX PX``, released by a script
that deletes the key only for its holder). Its lease is short (``lock_lease``, 5 s) and renewed
by the holder while it works, so a worker killed while holding it blocks the next caller for
one lease at most, not for the longest call.

Round trips. A KYC miss is three: the ``GET`` that misses; the lock's ``SET NX`` pipelined with a
``GET`` of the key the lock guards (a lock named ``<key>:lock`` guards ``<key>``, the runner's
convention), so the re-check after winning costs nothing; and, when the lock is released, the
values ``set`` while holding it pipelined with the release. A value set under a lock is thus
written when the lock is let go (``get`` on the holder's thread sees it before); a failure to
write it is logged, like any failed cache write, and never raised.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType

import redis
from redis.exceptions import RedisError

from decentro_core.errors import CacheUnavailable, StoreError

__all__ = ["RedisCache"]

_log = logging.getLogger(__name__)

LOCK_SUFFIX = ":lock"
_POLL = 0.05  # seconds between attempts on a held lock
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
          "else return 0 end")
_ABSENT = object()


@dataclass
class _Held:
    """A lock this thread holds: the writes waiting for its release, the guarded key's value."""

    key: str
    token: bytes
    guarded: str | None
    prefetched: object = _ABSENT
    writes: dict[str, tuple[bytes, int]] = field(default_factory=dict)


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
        self._local = threading.local()
        try:
            self._client = client or redis.Redis.from_url(
                url, socket_connect_timeout=socket_timeout, socket_timeout=socket_timeout
            )
        except (ValueError, RedisError) as exc:
            raise StoreError("The cache URL is not a valid redis:// URL") from exc

    def _held(self) -> list[_Held]:
        held: list[_Held] | None = getattr(self._local, "held", None)
        if held is None:
            held = self._local.held = []
        return held

    def get(self, key: str) -> bytes | None:
        for frame in reversed(self._held()):
            if key in frame.writes:
                return frame.writes[key][0]
            if frame.guarded == key and frame.prefetched is not _ABSENT:
                value, frame.prefetched = frame.prefetched, _ABSENT  # read with the lock: use it once
                return _as_bytes(value)
        with _store_errors():
            value = self._client.get(self.prefix + key)
        return _as_bytes(value)

    def set(self, key: str, value: bytes, *, ttl: int) -> None:
        held = self._held()
        if held:  # written with the release, in one round trip
            held[-1].writes[key] = (value, ttl)
            return
        with _store_errors():
            if ttl <= 0:  # already expired: like the memory cache, it is simply not there
                self._client.delete(self.prefix + key)
            else:
                self._client.set(self.prefix + key, value, ex=ttl)

    def delete(self, key: str) -> None:
        for frame in self._held():
            frame.writes.pop(key, None)
            if frame.guarded == key:
                frame.prefetched = _ABSENT
        with _store_errors():
            self._client.delete(self.prefix + key)

    @contextmanager
    def lock(self, key: str, *, timeout: float) -> Iterator[bool]:
        """Wait up to ``timeout`` seconds for the lock on ``key``; yield whether it was won."""
        guarded = key[: -len(LOCK_SUFFIX)] if key.endswith(LOCK_SUFFIX) else None
        frame = _Held(self.prefix + "lock:" + key, secrets.token_hex(16).encode(), guarded)
        with _store_errors():
            won = self._acquire(frame, deadline=time.monotonic() + max(timeout, 0.0))
        if not won:
            yield False
            return
        done = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(frame, done), daemon=True,
                                   name="decentro-lock-renewal")
        renewer.start()
        held = self._held()
        held.append(frame)
        try:
            yield True
        finally:
            done.set()  # the renewal thread stops at its next wake-up; nobody waits for it
            held.remove(frame)
            self._release(frame)

    def _acquire(self, frame: _Held, *, deadline: float) -> bool:
        lease_ms = max(1, int(self._lease * 1000))
        while True:
            pipe = self._client.pipeline(transaction=False)
            pipe.set(frame.key, frame.token, nx=True, px=lease_ms)
            if frame.guarded is not None:
                pipe.get(self.prefix + frame.guarded)
            replies = pipe.execute()
            if replies[0]:
                if frame.guarded is not None:
                    frame.prefetched = replies[1]
                return True
            if time.monotonic() + _POLL > deadline:
                return False
            time.sleep(_POLL)

    def _renew(self, frame: _Held, done: threading.Event) -> None:
        """Reset the lease to its full length every third of it, until the holder is done."""
        while not done.wait(self._lease / 3):
            try:
                renewed = self._client.eval(_RENEW, 1, frame.key, frame.token, max(1, int(self._lease * 1000)))
            except RedisError:
                renewed = 0
            if not renewed:
                if not done.is_set():  # after release a failed renewal is expected, not news
                    _log.warning("A cache lock could not be renewed; another caller may go ahead")
                return

    def _release(self, frame: _Held) -> None:
        """The values set under the lock, then the release, in one round trip."""
        pipe = self._client.pipeline(transaction=False)
        for key, (value, ttl) in frame.writes.items():
            if ttl <= 0:
                pipe.delete(self.prefix + key)
            else:
                pipe.set(self.prefix + key, value, ex=ttl)
        pipe.eval(_RELEASE, 1, frame.key, frame.token)
        try:
            replies = pipe.execute(raise_on_error=False)
        except RedisError:
            _log.warning("Could not write under or release a cache lock; it expires with its lease", exc_info=True)
            return
        if any(isinstance(reply, Exception) for reply in replies[:-1]):
            _log.error("decentro: a result could not be cached; it was returned all the same")
        if isinstance(replies[-1], Exception):
            _log.warning("Could not release a cache lock; it expires with its lease")
        elif not replies[-1]:
            # The lease ran out while we held it; another process may hold it now, and it is theirs.
            _log.warning("A cache lock outlived its lease; raise lock_lease above the slowest call")

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RedisCache:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _as_bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode()  # only when the caller's client decodes responses


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise CacheUnavailable(f"Cache operation failed ({type(exc).__name__})") from exc
