"""The production :class:`~decentro_core.ports.Cache`: Redis, with a cross-process lock.

Every key lives under ``prefix`` (``decentro:`` by default), so one Redis can serve several
applications. :meth:`RedisCache.lock` is a token lock (``SET NX PX``, released by a script
that deletes the key only for its holder). Its lease is short (``lock_lease``, 5 s) and renewed
while its holder works (by one thread per cache for all the locks held), so a worker killed while
holding it blocks the next caller for one lease at most, not for the longest call.

Round trips. A KYC miss is three: the ``GET`` that misses; the lock's ``SET NX`` pipelined with a
``GET`` of the key the lock guards (a lock named ``<key>:lock`` guards ``<key>``, the runner's
convention), so the re-check after winning costs nothing; and, when the lock is released, the
values ``set`` while holding it pipelined with the release. A value set under a lock is thus
written when the lock is let go (``get`` on the holder's thread sees it before); a failure to
write it is logged, like any failed cache write, and never raised.

Outages. Each Redis call gets one attempt of ``socket_timeout`` seconds (redis-py's default
retries ten times with backoff, which made a cut host answer in seconds). A failed call opens a
circuit breaker (:class:`~decentro_core.breaker.CircuitBreaker`): for ``cooldown`` seconds no
call goes to Redis, then one call tries it again. Meanwhile, with ``local_fallback=True`` (what
``DECENTRO_CACHE_FAIL_OPEN=true`` builds) the cache works in this process only: values set
during the outage are kept in a bounded in-memory cache, locks are per-process locks, so single
flight still holds between this process's threads and what it verified is not verified again.
Those values are dropped when Redis answers again, so nothing read from the process outlives
the outage (a hit is only ever a value this process or Redis stored for that key). Without
``local_fallback`` each call raises :class:`~decentro_core.errors.CacheUnavailable` at once.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import TypeVar

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from decentro_core.breaker import CircuitBreaker
from decentro_core.errors import CacheUnavailable, CircuitOpen, StoreError
from decentro_core.memory import KeyedLocks, MemoryCache
from decentro_core.observability import BreakerChange, Instruments

__all__ = ["BREAKER_MODULE", "RedisCache"]

_log = logging.getLogger(__name__)

LOCK_SUFFIX = ":lock"
_POLL = 0.05  # seconds between attempts on a held lock
_RENEWAL_IDLE = 30.0  # seconds the renewal thread waits with no lock held before it ends
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
          "else return 0 end")
_ABSENT = object()
_REDIS = "redis"  # the breaker's one circuit
BREAKER_MODULE = "redis-cache"
"""The ``module`` the cache's breaker reports to ``Instruments.breaker`` (``decentro_circuit_open``)."""
_T = TypeVar("_T")


@dataclass
class _Held:
    """A lock this thread holds: the writes waiting for its release, the guarded key's value."""

    key: str
    token: bytes
    guarded: str | None
    prefetched: object = _ABSENT
    writes: dict[str, tuple[bytes, int]] = field(default_factory=dict)


class _Renewals:
    """One thread per cache renewing the leases of every lock its holders hold, each every third
    of the lease until its holder lets go (a thread started per lock cost about 170 us of CPU).
    Started on first use, and again in a forked child (the parent's thread is not there)."""

    def __init__(self, renew: Callable[[_Held], bool], every: float) -> None:
        self._renew, self._every = renew, every
        self._reset()
        _ALL_RENEWALS.add(self)

    def _reset(self) -> None:
        self._due: dict[int, tuple[float, _Held]] = {}  # by id(frame): when to renew it next
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def hold(self, frame: _Held) -> None:
        with self._changed:
            self._due[id(frame)] = (time.monotonic() + self._every, frame)
            if self._thread is None or not self._thread.is_alive():  # none yet, ended idle, or forked
                self._thread = threading.Thread(target=self._run, daemon=True, name="decentro-lock-renewal")
                self._thread.start()
            self._changed.notify()

    def let_go(self, frame: _Held) -> None:
        with self._changed:
            self._due.pop(id(frame), None)

    def _run(self) -> None:
        while True:
            with self._changed:
                while True:
                    now = time.monotonic()
                    due = [frame for at, frame in self._due.values() if at <= now]
                    if due:
                        for frame in due:
                            self._due[id(frame)] = (now + self._every, frame)
                        break
                    earliest = min((at for at, _ in self._due.values()), default=None)
                    if earliest is None:
                        # Nothing held: wait a while for the next lock, then end (a closed cache,
                        # or a quiet process, keeps no thread); hold() starts another.
                        if not self._changed.wait(_RENEWAL_IDLE) and not self._due:
                            self._thread = None
                            return
                        continue
                    self._changed.wait(earliest - now)
            for frame in due:
                if self._renew(frame):
                    continue
                with self._changed:
                    still_held = self._due.pop(id(frame), None) is not None
                if still_held:  # after release a failed renewal is expected, not news
                    _log.warning("A cache lock could not be renewed; another caller may go ahead")


_ALL_RENEWALS: weakref.WeakSet[_Renewals] = weakref.WeakSet()


def _reset_renewals_after_fork() -> None:
    for renewals in list(_ALL_RENEWALS):
        renewals._reset()  # the parent's lock state and thread are not the child's


os.register_at_fork(after_in_child=_reset_renewals_after_fork)


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
        socket_timeout: float = 0.25,
        cooldown: float = 5.0,
        local_fallback: bool = False,
        client: redis.Redis | None = None,
        instruments: Instruments | None = None,
    ) -> None:
        self.prefix = prefix
        self._lease = lock_lease
        self._local = threading.local()
        self._renewals = _Renewals(self._renew, lock_lease / 3)
        self._breaker = CircuitBreaker(threshold=1, cooldown=cooldown, listener=self._changed)
        self._fallback = local_fallback
        self._instruments = instruments
        self._outage_values = MemoryCache()  # replaced, so emptied, when Redis answers again
        self._outage_locks = KeyedLocks()
        try:
            self._client = client or redis.Redis.from_url(
                url, socket_connect_timeout=socket_timeout, socket_timeout=socket_timeout,
                retry=Retry(NoBackoff(), 0),
            )
        except (ValueError, RedisError) as exc:
            raise StoreError("The cache URL is not a valid redis:// URL") from exc

    @property
    def degraded(self) -> bool:
        """Whether Redis is being left alone after a failure (calls served in-process or refused)."""
        return self._breaker.is_open(_REDIS)

    def _changed(self, key: str, change: BreakerChange) -> None:
        if self._instruments is not None and change != "rejected":  # not once per call served in-process
            self._instruments.breaker(BREAKER_MODULE, change)
        if change == "opened":
            _log.warning("decentro: Redis cache unreachable; %s for %.0f s before trying it again",
                         "working in this process only" if self._fallback else "refusing cache calls",
                         self._breaker.cooldown)
        elif change == "closed":
            self._outage_values = MemoryCache()
            _log.warning("decentro: Redis cache answers again")

    def _call(self, call: Callable[[], _T], outage: Callable[[], _T]) -> _T:
        """``call`` on Redis, or ``outage`` (in-process) while it is unreachable."""
        try:
            trial = self._breaker.admit(_REDIS)
        except CircuitOpen:
            return self._outage(outage, None)
        try:
            result = call()
        except RedisError as exc:
            self._breaker.failed(_REDIS)
            return self._outage(outage, exc)
        if trial is not None:
            self._breaker.succeeded(_REDIS)
        return result

    def _outage(self, outage: Callable[[], _T], exc: RedisError | None) -> _T:
        if not self._fallback:
            name = type(exc).__name__ if exc is not None else "Redis unreachable, paused"
            raise CacheUnavailable(f"Cache operation failed ({name})") from exc
        return outage()

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
        full = self.prefix + key
        return self._call(lambda: _as_bytes(self._client.get(full)), lambda: self._outage_values.get(full))

    def set(self, key: str, value: bytes, *, ttl: int) -> None:
        held = self._held()
        if held:  # written with the release, in one round trip
            held[-1].writes[key] = (value, ttl)
            return
        full = self.prefix + key
        if ttl <= 0:  # already expired: like the memory cache, it is simply not there
            self.delete(key)
            return
        self._call(lambda: self._client.set(full, value, ex=ttl),
                   lambda: self._outage_values.set(full, value, ttl=ttl))

    def delete(self, key: str) -> None:
        for frame in self._held():
            frame.writes.pop(key, None)
            if frame.guarded == key:
                frame.prefetched = _ABSENT
        full = self.prefix + key
        self._outage_values.delete(full)  # gone here in any case, so no stale in-process hit
        self._call(lambda: self._client.delete(full), lambda: None)

    @contextmanager
    def lock(self, key: str, *, timeout: float) -> Iterator[bool]:
        """Wait up to ``timeout`` seconds for the lock on ``key``; yield whether it was won.
        While Redis is unreachable (``local_fallback``) the lock is this process's."""
        guarded = key[: -len(LOCK_SUFFIX)] if key.endswith(LOCK_SUFFIX) else None
        frame = _Held(self.prefix + "lock:" + key, secrets.token_hex(16).encode(), guarded)
        deadline = time.monotonic() + max(timeout, 0.0)
        won = self._call(lambda: self._acquire(frame, deadline=deadline), lambda: None)
        if won is None:  # Redis unreachable: single flight between this process's threads
            with self._outage_locks.hold(frame.key, timeout=deadline - time.monotonic()) as local:
                yield local
            return
        if not won:
            yield False
            return
        self._renewals.hold(frame)
        held = self._held()
        held.append(frame)
        try:
            yield True
        finally:
            self._renewals.let_go(frame)
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

    def _renew(self, frame: _Held) -> bool:
        """Reset a held lock's lease to its full length (``False``: it is not ours any more)."""
        try:
            return bool(self._client.eval(_RENEW, 1, frame.key, frame.token, max(1, int(self._lease * 1000))))
        except RedisError:
            return False

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
        except RedisError as exc:
            self._breaker.failed(_REDIS)
            # An outage, not a bug: one line with the error's type, as every other Redis failure here.
            _log.warning("Could not write under or release a cache lock (%s); it expires with its lease",
                         type(exc).__name__)
            if self._fallback:  # what was verified is kept here for the outage, not verified again
                for key, (value, ttl) in frame.writes.items():
                    if ttl > 0:
                        self._outage_values.set(self.prefix + key, value, ttl=ttl)
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
