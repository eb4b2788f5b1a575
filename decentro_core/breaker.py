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
A circuit also opens on slow answers, which never count as failures: when, among the
module's last ``window`` calls (at least ``min_calls`` of them), the share that took
``slow_call_seconds`` or longer reaches ``slow_call_rate`` (resilience4j's
``slowCallRateThreshold`` and ``slowCallDurationThreshold``, resilience4j.readme.io/docs/circuitbreaker).
A Decentro that answers in 8 s under a 10 s timeout never times out, yet holds every thread
that calls it; and a trial answered that slowly keeps the circuit open for another cooldown.
The runner does not judge calls with a budget of their own (Aadhaar OTP validation is slow by
nature).
Each change (opened, closed, a call rejected, a trial let through) is told to ``listener``
(the runner passes its instruments' ``breaker``), outside the lock.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from .errors import CircuitOpen
from .observability import BreakerChange

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Consecutive-failure and slow-call breaker, one circuit per key (Decentro module), thread-safe.

    ``slow_call_rate`` 0 (or ``slow_call_seconds`` 0): slow answers never open a circuit."""

    def __init__(self, *, threshold: int, cooldown: float, monotonic: Callable[[], float] = time.monotonic,
                 listener: Callable[[str, BreakerChange], None] | None = None, slow_call_seconds: float = 0.0,
                 slow_call_rate: float = 0.0, window: int = 10, min_calls: int = 5) -> None:
        self.threshold = threshold
        self.slow_call_seconds, self.slow_call_rate = slow_call_seconds, slow_call_rate
        self.window, self.min_calls = max(1, window), max(1, min_calls)
        self._durations: dict[str, deque[bool]] = {}  # closed circuits: whether each recent call was slow
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
        raise CircuitOpen("Decentro is not answering; calls are paused for a few seconds", request_id=request_id,
                          retry_after=self.cooldown)

    def succeeded(self, key: str, *, seconds: float | None = None) -> None:
        """An answer came, after ``seconds`` (``None``: not judged for slowness)."""
        with self._guard:
            self._failures.pop(key, None)
            self._end_write_trial(key)
            if self._slow(seconds) and key in self._last_try:
                # A slow trial: Decentro answers, but holds threads as if it did not. The next
                # trial comes a whole cooldown after this answer.
                self._last_try[key] = self._monotonic()
                return
            opened = self._slow_calls_open(key, seconds)
            self._read_seen.pop(key, None)
            closed = not opened and self._last_try.pop(key, None) is not None
        if closed or opened:
            self._listener(key, "opened" if opened else "closed")

    def failed(self, key: str, *, seconds: float | None = None) -> None:
        """No answer (a timeout, a refused connection, a 5xx), after ``seconds``."""
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
                self._durations.pop(key, None)
            else:
                opened = self._slow_calls_open(key, seconds)
        if opened:
            self._listener(key, "opened")

    def _slow(self, seconds: float | None) -> bool:
        return seconds is not None and 0 < self.slow_call_seconds <= seconds and self.slow_call_rate > 0

    def _slow_calls_open(self, key: str, seconds: float | None) -> bool:
        """Under the guard: count a call of a closed circuit; open it when too many recent ones were slow."""
        if seconds is None or self.slow_call_rate <= 0 or self.slow_call_seconds <= 0 or key in self._last_try:
            return False
        recent = self._durations.setdefault(key, deque(maxlen=self.window))
        recent.append(self._slow(seconds))
        if len(recent) < self.min_calls or sum(recent) < self.slow_call_rate * len(recent):
            return False
        self._durations.pop(key, None)
        self._last_try[key] = self._monotonic()
        return True

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
