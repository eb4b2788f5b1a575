"""A circuit breaker per Decentro module: when Decentro stops answering, fail fast.

Without it, a hanging upstream holds every worker thread for a whole deadline, and requests
that never call Decentro (callbacks, settled status reads) queue behind them. After
``threshold`` consecutive failures that say Decentro is not answering (timeouts, refused
connections, 5xx) the module's circuit opens: calls fail at once with
:class:`~decentro_core.errors.CircuitOpen` (nothing sent). After ``cooldown`` seconds one call
is let through as a trial: an answer closes the circuit, a failure opens it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .errors import CircuitOpen

__all__ = ["CircuitBreaker"]


class CircuitBreaker:
    """Consecutive-failure breaker, one circuit per key (Decentro module), thread-safe."""

    def __init__(self, *, threshold: int, cooldown: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._monotonic = monotonic
        self._failures: dict[str, int] = {}
        self._opened_at: dict[str, float] = {}
        self._trial: set[str] = set()
        self._guard = threading.Lock()

    def admit(self, key: str, *, request_id: str | None = None) -> None:
        """Let a call through, or raise :class:`CircuitOpen` (the call is not made)."""
        if self.threshold <= 0:
            return
        with self._guard:
            opened = self._opened_at.get(key)
            if opened is None:
                return
            if self._monotonic() - opened >= self.cooldown and key not in self._trial:
                self._trial.add(key)  # half open: this call is the trial
                return
        raise CircuitOpen("Decentro is not answering; calls are paused for a few seconds", request_id=request_id)

    def succeeded(self, key: str) -> None:
        with self._guard:
            self._failures.pop(key, None)
            self._opened_at.pop(key, None)
            self._trial.discard(key)

    def failed(self, key: str) -> None:
        if self.threshold <= 0:
            return
        with self._guard:
            trial = key in self._trial
            self._trial.discard(key)
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            if trial or count >= self.threshold:
                self._opened_at[key] = self._monotonic()

    def is_open(self, key: str) -> bool:
        with self._guard:
            return key in self._opened_at
