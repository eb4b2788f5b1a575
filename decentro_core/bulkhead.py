"""A bulkhead: a bound on the threads of one process that may wait on Decentro at once.

A deadline bounds one call and the circuit breaker stops calls once Decentro is known to be
down, but until then every thread of a worker can be waiting on a hung Decentro, and requests
that never call it (callbacks, status reads of settled payments, KYC cache hits) queue behind
them. The bulkhead keeps threads free for those: at most ``limit`` requests may be in flight to
Decentro in this process, and at most ``per_module[module]`` to one module (a hung KYC leaves
slots for payments). A request past either bound is not sent: it fails at once with
:class:`~decentro_core.errors.BulkheadFull` (HTTP 503 with ``Retry-After``), which the runner
treats as it treats an open circuit (nothing was sent, so a payment refused this way was not
made). The name and the fail-fast semantics (no waiting for a slot) follow resilience4j's
semaphore bulkhead with ``maxWaitDuration`` 0 (resilience4j.readme.io/docs/bulkhead).

A slot is held only while a request is in flight (``gateway.send``): never during the backoff
between attempts, a lock wait or the store's writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .errors import BulkheadFull

__all__ = ["BLOCKING_BULKHEAD", "BULKHEAD_RETRY_AFTER", "Bulkhead", "bulkhead_limit"]

BLOCKING_BULKHEAD = 3
"""``DECENTRO_BULKHEAD_MAX`` 0 in a blocking service: one under the 4 threads per gunicorn worker
docs/deployment.md runs, so one thread of each worker is always free for what never calls Decentro."""

BULKHEAD_RETRY_AFTER = 1.0
"""Seconds a refused caller is told to wait (``Retry-After``): a slot frees when a request ends."""


def bulkhead_limit(setting: int, *, automatic: int = BLOCKING_BULKHEAD) -> int:
    """The bound ``DECENTRO_BULKHEAD_MAX`` gives: 0 is ``automatic``, -1 none (0 here), else itself."""
    if setting == 0:
        return automatic
    return 0 if setting < 0 else setting


class Bulkhead:
    """Counting bulkhead, process-wide and per module, thread-safe; ``limit`` <= 0: no bound."""

    def __init__(self, *, limit: int, per_module: Mapping[str, int] | None = None) -> None:
        self.limit = limit
        self.per_module = dict(per_module or {})
        self._in_flight: dict[str, int] = {}
        self._total = 0
        self._guard = threading.Lock()

    def in_flight(self, module: str | None = None) -> int:
        """Requests in flight now (to ``module``, or to any)."""
        with self._guard:
            return self._total if module is None else self._in_flight.get(module, 0)

    @contextmanager
    def slot(self, module: str, *, request_id: str | None = None) -> Iterator[None]:
        """Hold one slot for ``module`` while the block runs, or raise :class:`BulkheadFull` at once."""
        self._take(module, request_id)
        try:
            yield
        finally:
            with self._guard:
                self._total -= 1
                self._in_flight[module] -= 1

    def _take(self, module: str, request_id: str | None) -> None:
        cap = self.per_module.get(module, 0)
        with self._guard:
            used = self._in_flight.get(module, 0)
            full = (0 < self.limit <= self._total) or (0 < cap <= used)
            if not full:
                self._total += 1
                self._in_flight[module] = used + 1
        if full:
            raise BulkheadFull("Too many calls to Decentro are waiting in this process; retry in a moment",
                               request_id=request_id, retry_after=BULKHEAD_RETRY_AFTER)
