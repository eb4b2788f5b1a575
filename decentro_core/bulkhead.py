"""A bulkhead: a bound on the threads of one process that may wait on Decentro at once.

A deadline bounds one call and the circuit breaker stops calls once Decentro is known to be
down, but until then every thread of a worker can be waiting on a hung Decentro, and requests
that never call it (callbacks, status reads of settled payments, KYC cache hits) queue behind
them. The bulkhead keeps threads free for those: at most ``limit`` requests may be in flight to
Decentro in this process, and at most ``per_module[module]`` to one module (a hung KYC leaves
slots for payments). A request past either bound waits at most ``wait`` seconds for a slot
(``DECENTRO_BULKHEAD_WAIT``: a burst of prompt answers frees one in time; a hang does not), then
is not sent: it fails with :class:`~decentro_core.errors.BulkheadFull` (HTTP 503 with
``Retry-After``), which the runner treats as it treats an open circuit (nothing was sent, so a
payment refused this way was not made). The runner does not wait while the module's circuit is
open. The name and the semantics follow resilience4j's semaphore bulkhead
(``maxConcurrentCalls``, ``maxWaitDuration``; resilience4j.readme.io/docs/bulkhead).

A slot is held only while a request is in flight (``gateway.send``): never during the backoff
between attempts, a lock wait or the store's writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .errors import BulkheadFull

__all__ = ["BLOCKING_BULKHEAD", "BULKHEAD_RETRY_AFTER", "Bulkhead", "bulkhead_limit"]

BLOCKING_BULKHEAD = 6
"""``DECENTRO_BULKHEAD_MAX`` 0 in a blocking service: two under the 8 threads per gunicorn worker
docs/deployment.md runs, so threads of each worker are always free for what never calls Decentro."""

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
        self._guard = threading.Condition()

    def in_flight(self, module: str | None = None) -> int:
        """Requests in flight now (to ``module``, or to any)."""
        with self._guard:
            return self._total if module is None else self._in_flight.get(module, 0)

    @contextmanager
    def slot(self, module: str, *, request_id: str | None = None, wait: float = 0.0) -> Iterator[None]:
        """Hold one slot for ``module`` while the block runs; none free within ``wait`` seconds,
        raise :class:`BulkheadFull`."""
        self._take(module, request_id, wait)
        try:
            yield
        finally:
            with self._guard:
                self._total -= 1
                self._in_flight[module] -= 1
                self._guard.notify_all()

    def _full(self, module: str) -> bool:
        cap = self.per_module.get(module, 0)
        return (0 < self.limit <= self._total) or (0 < cap <= self._in_flight.get(module, 0))

    def _take(self, module: str, request_id: str | None, wait: float) -> None:
        ends = time.monotonic() + wait
        with self._guard:
            while full := self._full(module):
                left = ends - time.monotonic()
                if left <= 0:
                    break
                self._guard.wait(left)
            if not full:
                self._total += 1
                self._in_flight[module] = self._in_flight.get(module, 0) + 1
        if full:
            raise BulkheadFull("Too many calls to Decentro are waiting in this process; retry in a moment",
                               request_id=request_id, retry_after=BULKHEAD_RETRY_AFTER)
