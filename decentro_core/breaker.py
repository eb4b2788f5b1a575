"""A circuit breaker per Decentro module: when Decentro stops answering, fail fast.

Without it, a hanging upstream holds every worker thread for a whole deadline, and requests
that never call Decentro (callbacks, settled status reads) queue behind them. After
``threshold`` consecutive failures that say Decentro is not answering (timeouts, refused
connections, 5xx) the module's circuit opens: calls fail at once with
:class:`~decentro_core.errors.CircuitOpen` (nothing sent). Once ``cooldown`` seconds have passed
since it opened or since the last trial, the next call is let through as the circuit's *trial*,
one at a time: an answer closes the circuit, a failure keeps it open for another cooldown. A read
trial gets at most ``cooldown`` seconds to answer, so a hung Decentro holds no thread for long; a
write trial (a payment, an OTP, a message) keeps its own timeout, since a cut one could leave its
outcome unknown, and while it waits no other trial starts. Every module closes this way, also one
whose calls are all writes (notifications): before, only a read could be the trial, and such a
module's circuit, once open, stayed open for the life of the process.
Each change (opened, closed, a call rejected, a trial let through) is told to ``listener``
(the runner passes its instruments' ``breaker``), outside the lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import CircuitOpen
from .observability import BreakerChange

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Consecutive-failure breaker, one circuit per key (Decentro module), thread-safe."""

    def __init__(self, *, threshold: int, cooldown: float, monotonic: Callable[[], float] = time.monotonic,
                 listener: Callable[[str, BreakerChange], None] | None = None) -> None:
        self.threshold = threshold
        self._listener = listener or _ignore
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._failures: dict[str, int] = {}
        self._last_try: dict[str, float] = {}  # open circuits: when the circuit opened or last tried
        self._trying: set[str] = set()  # circuits whose trial is still waiting for its answer
        self._guard = threading.Lock()

    def admit(self, key: str, *, may_try: bool = True, request_id: str | None = None) -> float | None:
        """Let a call through (``None``), let it through as the trial (the cooldown: how long a
        read trial may wait for its answer), or raise :class:`CircuitOpen` (the call is not made).
        The trial's :meth:`succeeded` or :meth:`failed` ends it; ``may_try=False`` never tries."""
        if self.threshold <= 0:
            return None
        with self._guard:
            since = self._last_try.get(key)
            if since is None:
                return None
            now = self._monotonic()
            trial = may_try and now - since >= self.cooldown and key not in self._trying
            if trial:
                self._last_try[key] = now  # the next trial, one cooldown later at the earliest
                self._trying.add(key)
        self._listener(key, "trial" if trial else "rejected")
        if trial:
            return self.cooldown
        raise CircuitOpen("Decentro is not answering; calls are paused for a few seconds", request_id=request_id)

    def succeeded(self, key: str) -> None:
        with self._guard:
            self._failures.pop(key, None)
            self._trying.discard(key)
            closed = self._last_try.pop(key, None) is not None
        if closed:
            self._listener(key, "closed")

    def failed(self, key: str) -> None:
        if self.threshold <= 0:
            return
        with self._guard:
            if key in self._trying:  # the trial failed: the next one a whole cooldown from now
                self._trying.discard(key)
                self._last_try[key] = self._monotonic()
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            opened = count >= self.threshold and key not in self._last_try
            if opened:
                self._last_try[key] = self._monotonic()
        if opened:
            self._listener(key, "opened")

    def is_open(self, key: str) -> bool:
        with self._guard:
            return key in self._last_try


def _ignore(key: str, change: BreakerChange) -> None:
    """No listener."""
