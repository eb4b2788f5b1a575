"""A circuit breaker per Decentro module: when Decentro stops answering, fail fast.

Without it, a hanging upstream holds every worker thread for a whole deadline, and requests
that never call Decentro (callbacks, settled status reads) queue behind them. After
``threshold`` consecutive failures that say Decentro is not answering (timeouts, refused
connections, 5xx) the module's circuit opens: calls fail at once with
:class:`~decentro_core.errors.CircuitOpen` (nothing sent). Every ``cooldown`` seconds the next
call is let through as a *trial*: an answer closes the circuit. A read trial (a KYC check, a
status look-up) gets at most ``cooldown`` seconds to answer, so trials never pile up on a hung
Decentro. A write (a payment, an OTP, a message) is the trial only where no read has come for
two cooldowns (the module's calls are all writes, as in notifications, or a process sends only
collect requests): it keeps its own timeout, since a cut one could leave its outcome unknown,
there is one at a time, and a failed one restarts the cooldown. Where reads come, they alone
try, so a hung Decentro holds no more threads than before. Before, only a read could be the
trial anywhere, and a write-only module's circuit, once open, stayed open for the life of the
process.
Each change (opened, closed, a call rejected, a trial let through) is told to ``listener``
(the runner passes its instruments' ``breaker``), outside the lock.
"""

from __future__ import annotations

import math
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
        self._writing: dict[str, int] = {}  # circuits whose write trial still waits: its thread
        self._read_seen: dict[str, float] = {}  # open circuits: when a read last asked to go through
        self._guard = threading.Lock()

    def admit(self, key: str, *, may_try: bool = True, read: bool = True,
              request_id: str | None = None) -> float | None:
        """Let a call through (``None``), let it through as a trial (the cooldown: how long a
        read trial may wait for its answer), or raise :class:`CircuitOpen` (the call is not made).
        A write trial is ended by :meth:`succeeded` or :meth:`failed` on its thread;
        ``may_try=False`` never tries."""
        if self.threshold <= 0:
            return None
        with self._guard:
            since = self._last_try.get(key)
            if since is None:
                return None
            now = self._monotonic()
            if read:
                self._read_seen[key] = now
                trial = may_try and now - since >= self.cooldown
            else:  # only where no read comes to try, and one at a time
                reads_around = now - self._read_seen.get(key, -math.inf) < 2 * self.cooldown
                trial = may_try and now - since >= self.cooldown and not reads_around and key not in self._writing
            if trial:
                self._last_try[key] = now  # the next trial, one cooldown later at the earliest
                if not read:
                    self._writing[key] = threading.get_ident()
        self._listener(key, "trial" if trial else "rejected")
        if trial:
            return self.cooldown
        raise CircuitOpen("Decentro is not answering; calls are paused for a few seconds", request_id=request_id)

    def succeeded(self, key: str) -> None:
        with self._guard:
            self._failures.pop(key, None)
            self._end_write_trial(key)
            self._read_seen.pop(key, None)
            closed = self._last_try.pop(key, None) is not None
        if closed:
            self._listener(key, "closed")

    def failed(self, key: str) -> None:
        if self.threshold <= 0:
            return
        with self._guard:
            if self._end_write_trial(key):  # the next trial a whole cooldown from now
                self._last_try[key] = self._monotonic()
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            opened = count >= self.threshold and key not in self._last_try
            if opened:
                self._last_try[key] = self._monotonic()
        if opened:
            self._listener(key, "opened")

    def _end_write_trial(self, key: str) -> bool:
        """Under the guard: end ``key``'s write trial if this thread runs it."""
        if self._writing.get(key) != threading.get_ident():
            return False
        del self._writing[key]
        return True

    def is_open(self, key: str) -> bool:
        with self._guard:
            return key in self._last_try


def _ignore(key: str, change: BreakerChange) -> None:
    """No listener."""
