"""Outcome events: what the application hears when an operation reaches a final state.

The record store writes an :class:`~decentro_core.ports.OutcomeEvent` into its outbox in the
same transaction as the status change (a transactional outbox), once per transition whoever
makes it: the creating call, a callback, a status check or reconciliation. The
:class:`EventDispatcher` then hands each event to the handlers the application registered::

    @decentro.on("payment.succeeded")
    def mark_paid(event):               # event.reference_id, event.operation_id, event.new_status
        loans.mark_disbursed(event.reference_id)

Delivery is **at least once per handler, exactly once when handlers return**: each handler
that returns is recorded (``delivered_to``) and never called again for that event; one that
raises is retried with backoff (``DECENTRO_EVENTS_*`` settings), and after the last attempt
the event is ``dead`` until an operator replays it. A handler can still see an event twice if
its process dies between the handler returning and the record of it, or when it runs longer
than the claim's lease: make handlers idempotent on ``event.key``.

Event types (``event.type``): ``payment.succeeded``, ``payment.failed``, ``payment.expired``,
``payment.outcome_unknown`` (the link expired and Decentro could not say whether it was paid;
a later callback still settles it), ``kyc.completed`` (PAN, bank account, CKYC, UPI id;
``new_status`` is ``SUCCESS`` or ``FAILURE``), ``aadhaar.verified`` and ``aadhaar.failed``.
Handlers may subscribe to a type, to a family (``"payment.*"``) or to everything (``"*"``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from .errors import DecentroError, StoreError, safe_reason
from .observability import Instruments
from .ports import UNRESOLVED_STATUS, Clock, EventOutbox, OperationRecord, OutcomeEvent, replaces_status
from .retry import doubling

__all__ = [
    "EVENT_TYPES",
    "DispatchMode",
    "DispatchReport",
    "EventDispatcher",
    "Handler",
    "event_type",
    "outcome_event",
    "transition",
]

log = logging.getLogger("decentro.events")

Handler = Callable[[OutcomeEvent], object]
H = TypeVar("H", bound=Handler)
DispatchMode = Literal["inline", "worker"]

_PAYMENT_EVENTS = {"SUCCESS": "payment.succeeded", "FAILURE": "payment.failed", "EXPIRED": "payment.expired",
                   UNRESOLVED_STATUS: "payment.outcome_unknown"}
_KYC_EVENTS = {"SUCCESS": "kyc.completed", "FAILURE": "kyc.completed"}
_AADHAAR_EVENTS = {"SUCCESS": "aadhaar.verified", "FAILURE": "aadhaar.failed"}
_BY_OPERATION: dict[str, dict[str, str]] = {
    "upi_payment": _PAYMENT_EVENTS,
    "pan": _KYC_EVENTS, "bank_account": _KYC_EVENTS, "ckyc": _KYC_EVENTS, "upi_vpa": _KYC_EVENTS,
    "aadhaar_otp_verify": _AADHAAR_EVENTS, "aadhaar_xml": _AADHAAR_EVENTS,
}
EVENT_TYPES = tuple(sorted({t for by_status in _BY_OPERATION.values() for t in by_status.values()}))
"""Every event type this library emits."""


def event_type(operation: str, status: str) -> str | None:
    """The event a record of ``operation`` reaching ``status`` emits (``None``: not an outcome)."""
    return _BY_OPERATION.get(operation, {}).get(status)


def outcome_event(record: OperationRecord, *, old_status: str | None, at: datetime) -> OutcomeEvent | None:
    """The event for ``record`` having reached its status, or ``None`` when that is no outcome.
    The store replaces ``old_status`` with the one it found under its lock."""
    kind = event_type(record.operation, record.status)
    if kind is None:
        return None
    return OutcomeEvent(
        key=f"{record.reference_id}:{kind}", type=kind, reference_id=record.reference_id,
        operation=record.operation, old_status=old_status, new_status=record.status, occurred_at=at,
        operation_id=record.operation_id, user_id=record.user_id, next_attempt_at=at,
    )


def transition(event: OutcomeEvent | None, old: str | None, new: str) -> OutcomeEvent | None:
    """``event`` as a store writes it when a record's stored status ``old`` (``None``: no record
    yet) is replaced by ``new``; ``None`` when nothing changed or the store keeps ``old``
    (:func:`~decentro_core.ports.replaces_status`). The stores call this under their lock."""
    if event is None or old == new or (old is not None and not replaces_status(old, new)):
        return None
    return replace(event, old_status=old)


@dataclass(frozen=True)
class DispatchReport:
    """What one dispatch pass did: keys delivered, keys to be retried, keys given up on."""

    delivered: tuple[str, ...] = ()
    retrying: tuple[str, ...] = ()
    dead: tuple[str, ...] = ()

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(self.delivered + other.delivered, self.retrying + other.retrying,
                              self.dead + other.dead)

    @property
    def outcome(self) -> str:
        """One event's replay in a word: ``delivered``, ``dead`` or ``retrying``."""
        return "delivered" if self.delivered else ("dead" if self.dead else "retrying")


@dataclass
class _Registration:
    pattern: str
    name: str
    handler: Handler

    def matches(self, kind: str) -> bool:
        if self.pattern in ("*", kind):
            return True
        return self.pattern.endswith(".*") and kind.startswith(self.pattern[:-1])


HandlerSource = Callable[[OutcomeEvent], Iterator[tuple[str, Handler]]]
_RETRY_POLL = 0.5  # seconds: the retry thread's shortest sleep


@dataclass
class EventDispatcher:
    """Delivers the outbox's events to registered handlers (see the module docstring).

    ``mode="inline"`` (the default) delivers an event in the thread that committed it, right
    after the commit, and retries failures on one daemon thread; ``mode="worker"`` leaves all
    delivery to :meth:`run_worker` in another process (``flask decentro worker``). ``context``
    wraps each delivery (the Flask extension passes an application context).
    """

    outbox: EventOutbox
    clock: Clock
    mode: DispatchMode = "inline"
    max_attempts: int = 10
    backoff_base: float = 5.0
    backoff_max: float = 3600.0
    lease: float = 60.0
    batch: int = 100
    context: Callable[[], AbstractContextManager[object]] = nullcontext
    instruments: Instruments | None = None
    """Told each delivery's outcome (``delivered``, ``retrying``, ``dead``) by event type."""
    _registrations: list[_Registration] = field(default_factory=list, repr=False)
    _sources: list[tuple[HandlerSource, Callable[[], Iterable[str]]]] = field(default_factory=list, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _wake: threading.Event = field(default_factory=threading.Event, repr=False)
    _retrier: threading.Thread | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)
    _swept_at: datetime | None = field(default=None, repr=False)

    # -- registering ----------------------------------------------------------------------

    def on(self, pattern: str, handler: H | None = None, *, name: str | None = None) -> Any:
        """Call ``handler(event)`` for events of ``pattern`` (a type, ``"payment.*"`` or ``"*"``).

        Usable as ``dispatcher.on("payment.succeeded", fn)`` or as a decorator. ``name``
        (default: the function's module and qualified name) is what delivery records: keep it
        stable across deploys, and unique.
        """
        if not isinstance(pattern, str) or not (pattern == "*" or pattern in EVENT_TYPES or (
                pattern.endswith(".*") and any(t.startswith(pattern[:-1]) for t in EVENT_TYPES))):
            raise ValueError(f"unknown event type {pattern!r}; one of {', '.join(EVENT_TYPES)}, 'payment.*' or '*'")

        def register(fn: H) -> H:
            label = name or f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
            with self._guard:
                for known in self._registrations:
                    if known.name == label and known.handler is not fn:
                        raise ValueError(f"another handler is registered as {label!r}: pass name=")
                self._registrations.append(_Registration(pattern, label, fn))
            return fn

        return register if handler is None else register(handler)

    def add_source(self, source: HandlerSource, types: Callable[[], Iterable[str]]) -> None:
        """Handlers found per event (the Flask extension's blinker signals), each with its
        name; ``types()`` says which event types the source has handlers for right now."""
        self._sources.append((source, types))

    def handled_types(self) -> tuple[str, ...]:
        """The event types some handler in this process takes: only those are claimed, so an
        event nobody here listens to waits in the outbox for a process that does."""
        with self._guard:
            patterns = list(self._registrations)
        handled = {t for t in EVENT_TYPES if any(r.matches(t) for r in patterns)}
        for _, types in self._sources:
            handled.update(types())
        return tuple(t for t in EVENT_TYPES if t in handled)

    def handlers_for(self, event: OutcomeEvent) -> list[tuple[str, Handler]]:
        with self._guard:
            found = [(r.name, r.handler) for r in self._registrations if r.matches(event.type)]
        for source, _ in self._sources:
            found.extend(source(event))
        return found

    # -- delivering -----------------------------------------------------------------------

    def prepare(self, event: OutcomeEvent | None) -> OutcomeEvent | None:
        """The event as its writer inserts it: claimed already (leased to this process) when it
        will be delivered inline right after the commit, so no second transaction claims it."""
        if event is None or self.mode != "inline" or event.type not in self.handled_types():
            return event
        return replace(event, leased_until=event.occurred_at + timedelta(seconds=self.lease))

    def committed(self, events: Sequence[OutcomeEvent | None]) -> None:
        """The caller's transaction wrote ``events``: deliver them now (inline mode).

        Never raises: the status change is committed whatever a handler does."""
        if self.mode != "inline":
            return
        for event in events:
            if event is None:
                continue
            try:
                if event.leased_until is not None:  # inserted claimed by this process (prepare)
                    self._deliver([event])
                elif event.type in self.handled_types():
                    self._deliver(self.outbox.claim(self.clock(), limit=1, lease=self.lease, key=event.key))
            except DecentroError as exc:  # the outbox is unreachable: the worker or a retry finds it
                log.error("decentro event %s not delivered now (%s); it stays in the outbox", event.key,
                          type(exc).__name__)
                self._schedule_retry()
        self._sweep_if_due()

    def _sweep_if_due(self) -> None:
        """Inline mode: at most once per lease, look for due events no live process holds, such
        as one inserted leased to a process that died before delivering it (a worker killed
        right after the commit): nobody else would ever claim it without ``flask decentro worker``."""
        now = self.clock()
        with self._guard:
            if self._swept_at is not None and now - self._swept_at < timedelta(seconds=self.lease):
                return
            self._swept_at = now
        if self.handled_types():
            self._schedule_retry()

    def dispatch_due(self, *, limit: int | None = None) -> DispatchReport:
        """Deliver every due event (up to ``limit``), oldest first: the worker's step."""
        report = DispatchReport()
        types = self.handled_types()
        left = limit
        while types and (left is None or left > 0):
            size = self.batch if left is None else min(self.batch, left)
            claimed = self.outbox.claim(self.clock(), limit=size, lease=self.lease, types=types)
            if not claimed:
                break
            report = report + self._deliver(claimed)
            if left is not None:
                left -= len(claimed)
        return report

    def replay(self, key: str, *, all_handlers: bool = False) -> DispatchReport:
        """Make one event due again and deliver it now (``flask decentro events replay``).

        ``KeyError`` when there is no such event; ``LookupError`` when no handler in this
        process takes its type (delivering it here would mark it delivered unheard)."""
        found = self.outbox.get(key)
        if found is None:
            raise KeyError(key)
        if found.type not in self.handled_types():
            raise LookupError(f"no handler here takes {found.type}: replay it from the app that registers one")
        if not self.outbox.requeue(key, now=self.clock(), all_handlers=all_handlers):
            raise KeyError(key)
        return self._deliver(self.outbox.claim(self.clock(), limit=1, lease=self.lease, key=key))

    def _deliver(self, events: list[OutcomeEvent]) -> DispatchReport:
        report = DispatchReport()
        for event in events:
            report = report + self._deliver_one(event)
        return report

    def _deliver_one(self, event: OutcomeEvent) -> DispatchReport:
        done = list(event.delivered_to)
        error: str | None = None
        with self.context():
            for name, handler in self.handlers_for(event):
                if name in done:
                    continue
                try:
                    handler(event)
                except Exception as exc:  # noqa: BLE001 - a handler's failure is retried, not raised
                    error = safe_reason(exc)[:500]
                    log.warning("decentro event %s: handler %s raised %s; it will be retried", event.key, name,
                                error)
                    continue
                done.append(name)
        now = self.clock()
        attempts = event.attempts + 1
        retry_at = None
        if error is not None and attempts < self.max_attempts:
            retry_at = now + timedelta(seconds=doubling(self.backoff_base, attempts, cap=self.backoff_max))
        try:
            self.outbox.finish(event.key, now=now, delivered_to=tuple(done), error=error, retry_at=retry_at)
        except StoreError:
            # Its lease runs out and it is claimed again: handlers that returned may see it twice.
            log.error("decentro event %s: delivery could not be recorded; it will be delivered again", event.key)
            self._schedule_retry()
            return DispatchReport(retrying=(event.key,))
        outcome = "delivered" if error is None else ("retrying" if retry_at is not None else "dead")
        if self.instruments is not None:
            self.instruments.event_dispatch(event.type, outcome)
        if error is None:
            return DispatchReport(delivered=(event.key,))
        if retry_at is None:
            log.error("decentro event %s: given up after %d attempts; `flask decentro events replay %s`",
                      event.key, attempts, event.key)
            return DispatchReport(dead=(event.key,))
        self._schedule_retry()
        return DispatchReport(retrying=(event.key,))

    # -- retries in this process (inline mode) -----------------------------------------------

    def _schedule_retry(self) -> None:
        if self.mode != "inline" or self._closed:
            return
        with self._guard:
            if self._retrier is None or not self._retrier.is_alive():
                self._retrier = threading.Thread(target=self._retry_loop, name="decentro-events", daemon=True)
                self._retrier.start()
        self._wake.set()

    def _retry_loop(self) -> None:
        """Sleep until the next retry could be due, deliver what is, stop when nothing waits."""
        while not self._closed:
            self._wake.clear()
            try:
                self.dispatch_due()
                handled = self.handled_types()
                waiting = [e for e in self.outbox.events(state="retrying", limit=self.batch) if e.type in handled]
            except DecentroError as exc:
                log.error("decentro events: retry pass failed (%s)", type(exc).__name__)
                self._wake.wait(self.backoff_base)
                continue
            if not waiting:
                return
            now = self.clock()
            nearest = min((e.next_attempt_at or now) for e in waiting)
            # At least a moment: a due event another process holds is retried when its lease ends.
            self._wake.wait(max(_RETRY_POLL, min((nearest - now).total_seconds(), self.backoff_max)))

    def run_worker(self, *, interval: float = 1.0, stop: threading.Event | None = None,
                   every: Sequence[tuple[float, Callable[[], object]]] = ()) -> None:
        """Deliver due events until ``stop`` is set, polling every ``interval`` seconds; also
        run each ``(period, job)`` of ``every`` (reconciliation) once per period."""
        stop = stop or threading.Event()
        last_run = [float("-inf")] * len(every)
        clock = time.monotonic
        while not stop.is_set():
            try:
                report = self.dispatch_due()
                if report.delivered or report.retrying or report.dead:
                    log.info("decentro events: %d delivered, %d to retry, %d dead", len(report.delivered),
                             len(report.retrying), len(report.dead))
            except DecentroError as exc:
                log.error("decentro events: dispatch failed (%s); trying again", type(exc).__name__)
            for i, (period, job) in enumerate(every):
                if clock() - last_run[i] >= period:
                    last_run[i] = clock()
                    try:
                        job()
                    except DecentroError as exc:
                        log.error("decentro worker job failed (%s)", type(exc).__name__)
            stop.wait(interval)

    def close(self) -> None:
        """Stop the retry thread (events it had not retried stay due in the outbox)."""
        self._closed = True
        self._wake.set()
        retrier = self._retrier
        if retrier is not None and retrier is not threading.current_thread():
            retrier.join(timeout=5)
