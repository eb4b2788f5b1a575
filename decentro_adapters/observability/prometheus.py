"""Prometheus metrics for the library, with ``prometheus_client`` (the ``metrics`` extra).

:class:`PrometheusInstruments` implements the core's ``Instruments`` port. Its metric
families are made once per registry (the default registry unless one is given), so several
services or Flask apps in one process share them. Every label is bounded: operation and
module names come from the operation declarations, codes and reasons from the library's own
error codes, and :class:`_Bounded` folds anything unexpected (or past a cap of distinct
values) into ``other``. Reference ids, user ids and documents are never labels.

Under gunicorn (several processes) set ``PROMETHEUS_MULTIPROC_DIR`` before the workers start:
``prometheus_client`` then writes each process's values to that directory, and
:func:`collect` reads them all (the circuit gauge is the maximum over live processes).
"""

from __future__ import annotations

import os
import re
import threading
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import generate_latest, multiprocess

from decentro_core.observability import (
    BreakerChange,
    CacheResult,
    CallObserver,
    NoInstruments,
    WebhookOutcome,
)

__all__ = ["CALL_BUCKETS", "METRIC_NAMES", "PrometheusInstruments", "collect", "multiprocess_dir"]

CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)
"""Seconds: from a cached answer to a whole call's deadline (``DECENTRO_DEADLINE``, 20 s)."""

METRIC_NAMES = (
    "decentro_calls_total", "decentro_call_duration_seconds", "decentro_call_errors_total",
    "decentro_requests_total", "decentro_request_duration_seconds", "decentro_retries_total",
    "decentro_circuit_open", "decentro_circuit_events_total", "decentro_cache_lookups_total",
    "decentro_single_flight_wait_seconds", "decentro_webhooks_total", "decentro_events_dispatched_total",
)


class _Families:
    """The metric families on one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        call, ops = ("operation", "module"), ("operation",)
        self.calls = Counter("decentro_calls_total", "Decentro calls by outcome (SUCCESS, FAILURE, PENDING, ERROR)",
                             [*call, "outcome"], registry=registry)
        self.call_seconds = Histogram("decentro_call_duration_seconds",
                                      "Whole Decentro calls: attempts, backoff and records", [*call, "outcome"],
                                      buckets=CALL_BUCKETS, registry=registry)
        self.call_errors = Counter("decentro_call_errors_total",
                                   "Failed or raised Decentro calls by error code", [*call, "code"], registry=registry)
        self.requests = Counter("decentro_requests_total",
                                "Requests sent to Decentro by result (HTTP status class or error code)",
                                [*call, "result"], registry=registry)
        self.request_seconds = Histogram("decentro_request_duration_seconds",
                                         "One request to Decentro, sent to answered", list(call),
                                         buckets=CALL_BUCKETS, registry=registry)
        self.retries = Counter("decentro_retries_total", "Requests that were retries of a failed one", list(call),
                               registry=registry)
        self.circuit_open = Gauge("decentro_circuit_open", "1 while the module's circuit is open", ["module"],
                                  multiprocess_mode="livemax", registry=registry)
        self.circuit_events = Counter("decentro_circuit_events_total",
                                      "Circuit breaker: opened, closed, rejected (failed fast), trial",
                                      ["module", "event"], registry=registry)
        self.cache = Counter("decentro_cache_lookups_total",
                             "KYC cache: hit, miss, shared (after a single-flight wait), fail_open, refused",
                             [*ops, "result"], registry=registry)
        self.single_flight = Histogram("decentro_single_flight_wait_seconds",
                                       "Wait for the single-flight lock of a cache miss", [*ops, "won"],
                                       buckets=CALL_BUCKETS, registry=registry)
        self.webhooks = Counter("decentro_webhooks_total",
                                "Callback deliveries: received, processed, duplicate, failed, rejected, unavailable",
                                ["outcome", "reason"], registry=registry)
        self.events = Counter("decentro_events_dispatched_total", "Stored events handed to their subscribers",
                              ["event_type", "outcome"], registry=registry)


_families: dict[int, tuple[CollectorRegistry, _Families]] = {}
_families_guard = threading.Lock()


def _families_on(registry: CollectorRegistry) -> _Families:
    with _families_guard:
        known = _families.get(id(registry))
        if known is None or known[0] is not registry:
            known = (registry, _Families(registry))
            _families[id(registry)] = known
        return known[1]


class _Bounded:
    """A label value from a small vocabulary: unexpected shapes and values past ``cap`` are ``other``."""

    SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9_.:-]{0,63}")

    def __init__(self, cap: int = 64) -> None:
        self.cap = cap
        self._seen: set[str] = set()

    def __call__(self, value: str | None) -> str:
        if not value:
            return ""
        if value in self._seen:
            return value
        if len(self._seen) >= self.cap or not self.SHAPE.fullmatch(value):
            return "other"
        self._seen.add(value)
        return value


class PrometheusInstruments(NoInstruments):
    """The core's ``Instruments`` as Prometheus metrics (see :data:`METRIC_NAMES`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else REGISTRY
        self.metrics = _families_on(self.registry)
        self.code = _Bounded()
        self.reason = _Bounded()
        self.event_type = _Bounded()
        self._children: dict[tuple[object, ...], Any] = {}

    def child(self, family: Any, *labels: str) -> Any:
        """``family.labels(*labels)``, remembered: a dict look-up instead of the client's locked one."""
        key = (family, *labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = family.labels(*labels)
        return found

    def call(self, operation: str, module: str) -> CallObserver:
        return _MeteredCall(self, operation, module)

    def cache(self, operation: str, result: CacheResult) -> None:
        self.child(self.metrics.cache, operation, result).inc()

    def single_flight(self, operation: str, *, seconds: float, won: bool) -> None:
        self.child(self.metrics.single_flight, operation, "true" if won else "false").observe(seconds)

    def breaker(self, module: str, change: BreakerChange) -> None:
        self.metrics.circuit_events.labels(module, change).inc()
        if change in ("opened", "closed"):
            self.metrics.circuit_open.labels(module).set(1 if change == "opened" else 0)

    def webhook(self, outcome: WebhookOutcome, *, reason: str | None = None) -> None:
        self.child(self.metrics.webhooks, outcome, self.reason(reason)).inc()

    def event_dispatch(self, event_type: str, outcome: str) -> None:
        self.child(self.metrics.events, self.event_type(event_type), self.reason(outcome)).inc()


class _MeteredCall:
    __slots__ = ("attempts", "instruments", "module", "operation")

    def __init__(self, instruments: PrometheusInstruments, operation: str, module: str) -> None:
        self.instruments, self.operation, self.module, self.attempts = instruments, operation, module, 0

    def attempt(self, reference_id: str, *, seconds: float, status_code: int | None = None,
                error_code: str | None = None) -> None:
        instruments, metrics, labels = self.instruments, self.instruments.metrics, (self.operation, self.module)
        self.attempts += 1
        if self.attempts > 1:
            instruments.child(metrics.retries, *labels).inc()
        result = instruments.code(error_code) if error_code else f"{status_code or 0}"[:1] + "xx"
        instruments.child(metrics.requests, *labels, result).inc()
        instruments.child(metrics.request_seconds, *labels).observe(seconds)

    def end(self, *, status: str, reference_id: str | None, error_code: str | None, seconds: float) -> None:
        instruments, metrics, labels = self.instruments, self.instruments.metrics, (self.operation, self.module)
        outcome = status if status in ("SUCCESS", "FAILURE", "PENDING", "ERROR") else "other"
        instruments.child(metrics.calls, *labels, outcome).inc()
        instruments.child(metrics.call_seconds, *labels, outcome).observe(seconds)
        if error_code:
            instruments.child(metrics.call_errors, *labels, instruments.code(error_code)).inc()


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when set (gunicorn with several workers), else ``None``."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir") or None


def collect(registry: CollectorRegistry | None = None) -> tuple[bytes, str]:
    """The exposition text and its content type: every process's values in multiprocess mode,
    else ``registry``'s (the default registry unless given)."""
    if multiprocess_dir() is not None:
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged), CONTENT_TYPE_LATEST
    return generate_latest(registry if registry is not None else REGISTRY), CONTENT_TYPE_LATEST
