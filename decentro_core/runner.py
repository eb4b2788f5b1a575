"""How any declared operation runs: write-ahead record, retries, sealing, audit, the KYC cache.

:class:`OperationRunner` holds the ports and does what every operation shares; it knows no
operation by name (the declarations in :mod:`decentro_core.operations` say what differs).
Order of events for one call:

0. the call's :class:`~decentro_core.retry.Deadline` starts (``DECENTRO_DEADLINE``): every
   wait below (single-flight lock, attempts, backoff) fits inside it;
1. the consent is recorded, and a ``PENDING`` record written for the reference id, before
   anything is sent (nothing is lost if the process dies mid-call);
2. the request is sent under the retry policy (:mod:`decentro_core.retry`); a ``READ``
   retry writes a fresh record for its fresh reference id and marks the previous ``RETRIED``;
3. the answer is normalised, the record updated with the sealed result, an audit event appended.

Each call, each request sent, the cache and the breaker are reported to ``ports.instruments``
(:mod:`decentro_core.observability`: log lines, metrics, traces).
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from .envelope import Outcome, to_envelope
from .events import EventDispatcher, outcome_event
from .breaker import CircuitBreaker
from .bulkhead import Bulkhead, bulkhead_limit
from .errors import (
    BulkheadFull,
    CacheUnavailable,
    CircuitOpen,
    DeadlineExceeded,
    DecentroError,
    DuplicateReference,
    FailureReplayed,
    GatewayConnectionError,
    GatewayTimeout,
    StoreError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamUnavailable,
)
from .observability import Instruments, current_call, log_fields, observed_call
from .operations.base import Operation, Request
from .ports import AuditEvent, Clock, ConsentRecord, GatewayRequest, GatewayResponse, IdFactory, OperationRecord, Ports
from .scheduling import DelayedTasks
from .retry import MIN_ATTEMPT_SECONDS, Deadline, RetryMode, RetryPolicy, raise_for_transient_status, run_with_retry
from .settings import Settings

__all__ = ["OperationRunner"]

log = logging.getLogger("decentro")


@dataclass
class OperationRunner:
    """Runs :class:`~decentro_core.operations.Operation` declarations over the ports."""

    settings: Settings
    ports: Ports
    clock: Clock
    new_reference_id: IdFactory
    sleep: Callable[[float], None]
    rng: random.Random
    monotonic: Callable[[], float] = time.monotonic
    cache_fallbacks: int = 0  # calls made without the cache because it failed (fail-open)
    breaker: CircuitBreaker | None = None
    bulkhead: Bulkhead | None = None
    events: EventDispatcher | None = None
    _retries: DelayedTasks | None = field(default=None, init=False, repr=False)
    _retry_guard: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        if self.breaker is None:
            self.breaker = CircuitBreaker(threshold=s.breaker_threshold, cooldown=s.breaker_cooldown,
                                          monotonic=self.monotonic, listener=self.instruments.breaker,
                                          slow_call_seconds=s.breaker_slow_call_seconds,
                                          slow_call_rate=s.breaker_slow_call_rate, window=s.breaker_window,
                                          min_calls=s.breaker_min_calls)
        if self.bulkhead is None:
            self.bulkhead = Bulkhead(limit=bulkhead_limit(s.bulkhead_max), per_module=dict(s.bulkhead_modules))

    @property
    def instruments(self) -> Instruments:
        return self.ports.instruments

    def start_deadline(self, operation: Operation | None = None) -> Deadline:
        """The call's deadline: ``DECENTRO_DEADLINE``, or the operation's own budget."""
        return Deadline.after(self.budget(operation) or self.settings.deadline, self.monotonic)

    def budget(self, operation: Operation | None) -> float | None:
        """An operation's own time budget (deadline and read timeout), if it has one."""
        if operation is None or operation.budget is None:
            return None
        return float(getattr(self.settings, operation.budget))

    def read_timeout(self, operation: Operation) -> float:
        """How long one attempt of ``operation`` waits for its answer (before the deadline cuts it)."""
        return self.budget(operation) or self.settings.timeout

    @property
    def policy(self) -> RetryPolicy:
        s = self.settings
        return RetryPolicy(max_retries=s.max_retries, backoff_base=s.backoff_base, backoff_max=s.backoff_max)

    # -- sealing -------------------------------------------------------------------------

    def seal_json(self, value: Any) -> str:
        return self.ports.vault.seal(json.dumps(value, sort_keys=True, default=str).encode())

    def open_json(self, token: str) -> Any:
        return json.loads(self.ports.vault.open(token))

    # -- records and audit ---------------------------------------------------------------

    def open_record(self, reference_id: str, operation: str, *, user_id: str | None,
                    sealed_input: Mapping[str, Any], consent: ConsentRecord | None = None) -> OperationRecord:
        """Write the PENDING record for a reference id (and the consent, if any) before
        anything is sent."""
        now = self.clock()
        record = OperationRecord(
            reference_id=reference_id, operation=operation, status="PENDING", created_at=now, updated_at=now,
            user_id=user_id, sealed_request=self.seal_json(sealed_input),
        )
        self.ports.records.write_ahead(record, consent=consent, consents=self.ports.consents)
        return record

    def settle_record(self, record: OperationRecord, status: str, *, operation_id: str | None = None,
                      result: Any = None) -> OperationRecord:
        """Save the record's new status (the caller holds the record: no read before the write).

        The store keeps a settled status a callback wrote meanwhile (``RecordStore.save_operation``).
        """
        updated = self._settled(record, status, operation_id=operation_id, result=result)
        self.ports.records.save_operation(updated)
        return updated

    def _settled(self, record: OperationRecord, status: str, *, operation_id: str | None,
                 result: Any) -> OperationRecord:
        """``record`` with its new status, now, and the sealed result (kept when none is given)."""
        return replace(
            record, status=status, updated_at=self.clock(), operation_id=operation_id or record.operation_id,
            sealed_result=self.seal_json(result) if result is not None else record.sealed_result,
        )

    def settle_outcome(self, record: OperationRecord, status: str, *, actor: str, action: str, subject: str,
                       outcome: str, operation_id: str | None = None, result: Any = None,
                       emit: bool = True) -> OperationRecord:
        """Save the record's new status with its audit event and, when the status is an outcome
        (:func:`~decentro_core.events.event_type`) and ``emit``, its outcome event: one store
        transaction. The event is handed to the dispatcher once that has committed."""
        updated = self._settled(record, status, operation_id=operation_id, result=result)
        audit_event = AuditEvent(actor=actor, action=action, subject=subject, outcome=outcome,
                                 occurred_at=updated.updated_at, operation_id=updated.operation_id,
                                 reference_id=updated.reference_id)
        event = outcome_event(updated, old_status=record.status, at=updated.updated_at) if emit else None
        if self.events is not None:
            event = self.events.prepare(event)
        emitted = self.ports.records.save_outcome(updated, audit=self.ports.audit, audit_event=audit_event,
                                                  event=event)
        _log_audited(action, subject, outcome, updated.reference_id)
        if emitted is not None and self.events is not None:
            self.events.committed([emitted])
        return updated

    def record_audit(self, *, actor: str, action: str, subject: str, outcome: str, reference_id: str | None,
                     operation_id: str | None, consent: ConsentRecord | None = None) -> None:
        """Append one audit event (``subject`` is already masked), and record ``consent`` in the
        same transaction (``RecordStore.record_access``: one commit on PostgreSQL)."""
        event = AuditEvent(actor=actor, action=action, subject=subject, outcome=outcome, occurred_at=self.clock(),
                           operation_id=operation_id, reference_id=reference_id)
        self.ports.records.record_access(event, audit=self.ports.audit, consent=consent, consents=self.ports.consents)
        _log_audited(action, subject, outcome, reference_id)

    # -- running a call ------------------------------------------------------------------

    @observed_call
    def run(self, operation: Operation, request: Request, *, user_id: str | None, actor: str,
            consent: ConsentRecord | None = None, deadline: Deadline | None = None,
            reference_id: str | None = None) -> dict[str, Any]:
        """Send ``operation`` under the retry policy and return the envelope (or raise typed).

        ``consent`` is recorded here, once the call is certain to be made; ``deadline`` bounds
        the whole call (a new one starts when none is given); ``reference_id`` is the first
        attempt's (an idempotency key's derived id), else a fresh one. An operation that
        retries in the background (``Operation.retry_in_background``) answers ``PENDING``
        (``reconciliation: RETRY_SCHEDULED``) when its first attempt must be retried, and the
        retries wait and run off the caller's thread (:mod:`decentro_core.scheduling`).
        """
        deadline = deadline or self.start_deadline(operation)
        call = _Call(operation, request, user_id, actor, operation.subject(request), keyed=reference_id is not None)
        record = self._open(call, reference_id, consent=consent)
        if not (operation.retry_in_background and self.settings.background_retries > 0):
            return self._attempts(call, record, deadline)
        try:
            return self._attempts(call, record, deadline, last=1)
        except _RetryLater as later:
            try:
                return self._schedule_retry(call, record, deadline, later)
            except _NotScheduled:
                # No thread for the retry: the caller learns the refusal, as without retries.
                self._settle_failure(call, record, later.error, emit=False)
                raise later.error from None

    def _attempts(self, call: _Call, record: OperationRecord, deadline: Deadline, *, first: int = 1,
                  last: int | None = None, announced: bool = False) -> dict[str, Any]:
        """Attempts ``first`` .. ``last`` (default: as many as the policy allows) of one call, and
        the record settled with their outcome. ``last`` given, a retryable failure that would
        still fit the deadline raises :class:`_RetryLater` instead of settling; ``announced``: the
        caller already has a ``PENDING`` answer, so a failure emits its outcome event."""
        operation = call.operation
        current, attempts = [record], [0]

        def attempt(number: int) -> tuple[Outcome, str]:
            attempts[0] = number
            if number > 1 and operation.mode is RetryMode.READ:
                self._settle(call, current[0], "RETRIED")
                current[0] = self._open(call)
            reference = current[0].reference_id
            left = deadline.remaining()
            if left < MIN_ATTEMPT_SECONDS:
                raise DeadlineExceeded("The call's deadline ran out before Decentro could be asked",
                                       request_id=reference)
            response = self._send(call, reference, timeout=left)
            outcome = operation.parse(response, reference, call.request)
            if operation.complete is not None and outcome.status == "SUCCESS":
                outcome = operation.complete(self, outcome, call.request)
            return outcome, reference

        policy = self.policy if last is None else replace(self.policy, max_retries=min(self.policy.max_retries,
                                                                                       last - 1))
        try:
            outcome, reference = run_with_retry(attempt, mode=operation.mode, policy=policy, sleep=self.sleep,
                                                rng=self.rng, deadline=deadline, first=first)
        except DecentroError as exc:
            reference = current[0].reference_id
            if call.keyed and isinstance(exc, DuplicateReference) and attempts[0] <= 1:
                # Decentro already has this key's derived id: another call with the same key
                # (a concurrent repeat in a process that does not share our lock) was accepted,
                # and the record is that call's to settle. Settling it FAILURE here would make
                # its success unrecordable (a settled status is final): write nothing.
                raise
            unknown = _outcome_unknown(operation, exc, attempts=attempts[0])
            if unknown is None:
                # A collect request meeting an open circuit or a full bulkhead (nothing was sent)
                # waits it out in the background, its first attempt included: its answer is
                # PENDING anyway, and a later retry may be the circuit's trial.
                paused = isinstance(exc, (CircuitOpen, BulkheadFull))
                if last is not None and attempts[0] == last < self.policy.max_retries + 1 \
                        and (paused or self.policy.is_retryable(operation.mode, exc)):
                    delay = self.policy.delay(last, exc, self.rng)
                    if paused:
                        delay = max(delay, self.settings.breaker_cooldown)
                    if self.policy.fits(delay, deadline):
                        raise _RetryLater(exc, delay, attempts[0]) from exc
                # Not an outcome of the check (Decentro was not reached or refused the call): no
                # event, unless the caller was told PENDING and learns the failure from it.
                self._settle_failure(call, current[0], exc, emit=announced)
                raise
            outcome = unknown
        envelope = to_envelope(outcome, reference_id=reference, extra=call.envelope_fields())
        try:
            self._settle(call, current[0], outcome.status, operation_id=outcome.operation_id, result=envelope,
                         audited=outcome.error_code or outcome.status)
        except StoreError:
            if operation.mode is not RetryMode.WRITE:
                raise
            # Decentro acted on it: raising now would invite the caller to pay or send again.
            # The PENDING record written before sending stays for reconciliation.
            log.error("decentro %s: the outcome could not be recorded (ref %s); the PENDING record remains",
                      operation.name, reference)
        return envelope

    # -- retries off the caller's thread ---------------------------------------------------

    def _schedule_retry(self, call: _Call, record: OperationRecord, deadline: Deadline,
                        later: _RetryLater) -> dict[str, Any]:
        """Answer ``PENDING`` now and hand the rest of the call to the background retries.

        The record stays ``PENDING`` without a stored answer, so a repeat with the same
        idempotency key answers ``IN_FLIGHT``; the retries keep its reference id (a WRITE), keep
        the call's deadline, and settle it as the call would have. A process that dies first
        leaves the ``PENDING`` record to reconciliation (``flask decentro reconcile``).
        """
        operation, exc = call.operation, later.error
        # Scheduled first: a store failing now must not strand the PENDING record without its
        # retry (a repeat would answer IN_FLIGHT until reconciliation) nor fail the caller.
        self._retry_later(call, record, deadline, later)
        try:
            self.record_audit(actor=call.actor, action=operation.name, subject=call.subject,
                              outcome="RETRY_SCHEDULED", reference_id=record.reference_id, operation_id=None)
        except StoreError:
            log.error("decentro %s: the scheduled retry could not be audited (ref %s); it runs all the same",
                      operation.name, record.reference_id)
        pending = Outcome("PENDING", None, {"reconciliation": "RETRY_SCHEDULED", "reason": exc.code,
                                            "retry_in_seconds": round(later.delay, 3)})
        return to_envelope(pending, reference_id=record.reference_id, extra=call.envelope_fields())

    def _retry_later(self, call: _Call, record: OperationRecord, deadline: Deadline, later: _RetryLater) -> None:
        context = contextvars.copy_context()  # the call's observer sees the later attempts
        with self._retry_guard:
            if self._retries is None:
                # Real time, whatever clock the deadlines use: the workers wait on it.
                self._retries = DelayedTasks(self.settings.background_retries)
        try:
            self._retries.schedule(later.delay, lambda: context.run(self._retry, call, record, deadline, later))
        except RuntimeError as exc:
            log.error("decentro %s: no thread to retry in the background (ref %s)", call.operation.name,
                      record.reference_id)
            raise _NotScheduled() from exc

    def _retry(self, call: _Call, record: OperationRecord, deadline: Deadline, later: _RetryLater) -> None:
        """One more attempt; a retryable failure waits again off any thread, until the attempts or
        the deadline run out."""
        attempt = later.attempts + 1
        try:
            self._attempts(call, record, deadline, first=attempt, last=attempt, announced=True)
        except _RetryLater as again:
            self._retry_later(call, record, deadline, again)
        except DecentroError as exc:  # settled (and audited) by _attempts, or left PENDING
            log.warning("decentro %s: retried in the background, failed (%s, ref %s)", call.operation.name,
                        exc.code, record.reference_id)
        except Exception:  # never lost silently: the PENDING record stays for reconciliation
            log.exception("decentro %s: a background retry failed unexpectedly (ref %s)", call.operation.name,
                          record.reference_id)

    def drain_retries(self, timeout: float | None = None) -> bool:
        """Wait until no background retry is waiting or running (``False``: some still were at
        ``timeout``). For tests, and for a stop that should settle what it started."""
        with self._retry_guard:
            retries = self._retries
        return retries is None or retries.drain(timeout)

    def run_once(self, operation: Operation, request: Request, reference: str, *, user_id: str | None,
                 actor: str, consent: ConsentRecord | None = None,
                 check: Callable[[OperationRecord], None] | None = None,
                 in_flight: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run ``operation`` at most once for ``reference`` (an id derived from a caller's key).

        A repeat answers the first call's stored envelope (``data.idempotent_replay``) without
        calling Decentro, also after the first answer was lost on its way to the caller; while
        the first call still runs it answers ``PENDING`` (``reconciliation: IN_FLIGHT`` plus
        ``in_flight``). ``check`` may refuse a repeat (raise) before that. Concurrent repeats
        wait on one lock (across processes with a shared cache).
        """
        deadline = self.start_deadline(operation)
        read = self.read_timeout(operation)
        # Wait for a first call holding the key while leaving this one an attempt's time; when
        # the budget is all one attempt (OTP validation), still long enough for the holder to
        # write its record, which the repeat then answers IN_FLIGHT from.
        wait = max(deadline.remaining() - read, min(deadline.remaining() / 2, 5.0))
        try:
            with self.ports.cache.lock("once:" + reference, timeout=wait):
                return self._once(operation, request, reference, user_id=user_id, actor=actor, consent=consent,
                                  check=check, in_flight=in_flight, deadline=deadline)
        except CacheUnavailable:
            # The record check below still stops a sequential repeat; only a concurrent one could slip.
            log.error("decentro %s: the cache is unavailable; at-most-once holds for sequential repeats only",
                      operation.name)
            return self._once(operation, request, reference, user_id=user_id, actor=actor, consent=consent,
                              check=check, in_flight=in_flight, deadline=deadline)

    def _once(self, operation: Operation, request: Request, reference: str, *, user_id: str | None, actor: str,
              consent: ConsentRecord | None, check: Callable[[OperationRecord], None] | None,
              in_flight: Mapping[str, Any] | None, deadline: Deadline) -> dict[str, Any]:
        first = self.ports.records.get_operation(reference)
        if first is None:
            try:
                return self.run(operation, request, user_id=user_id, actor=actor, consent=consent,
                                deadline=deadline, reference_id=reference)
            except DuplicateReference:
                # A concurrent first call with this key got there first (see ``run``): answer
                # as its repeat.
                first = self.ports.records.get_operation(reference)
                if first is None:
                    raise
                log.warning("decentro %s: a concurrent call with the same key was accepted first (ref %s)",
                            operation.name, reference)
        if check is not None:
            check(first)
        if first.sealed_result is None:  # the first call is still running, or died after writing ahead
            pending = Outcome("PENDING", first.operation_id, {"reconciliation": "IN_FLIGHT", **(in_flight or {})})
            envelope = to_envelope(pending, reference_id=reference)
        else:
            envelope = self.open_json(first.sealed_result)
        if "data" not in envelope:  # the first call raised: so does its repeat, without calling again
            code = str(envelope.get("error") or "DECENTRO_ERROR")
            raise FailureReplayed(f"The first call with this key failed ({code}); retry with a new key",
                                  code=code, http_status=int(envelope.get("http_status") or 502),
                                  request_id=reference)
        return {**envelope, "data": {**envelope["data"], "idempotent_replay": True}}

    def _send(self, call: _Call, reference: str, *, timeout: float) -> GatewayResponse:
        """One request, in a slot of the bulkhead (:mod:`decentro_core.bulkhead`: refused, nothing
        sent, when too many already wait on Decentro and none frees in ``DECENTRO_BULKHEAD_WAIT``)
        and through the module's circuit breaker (see :mod:`decentro_core.breaker`)."""
        assert self.bulkhead is not None and self.breaker is not None
        module, asked = call.operation.module, self.monotonic()
        wait = 0.0 if self.breaker.is_open(module) else self.settings.bulkhead_wait  # open: no waiting
        with self.bulkhead.slot(module, request_id=reference, wait=min(wait, timeout)):
            return self._send_admitted(call, reference, timeout=timeout - (self.monotonic() - asked))

    def _send_admitted(self, call: _Call, reference: str, *, timeout: float) -> GatewayResponse:
        """A read that is the open circuit's trial gets the trial's short time to answer; a write
        keeps its own (a cut one could leave its outcome unknown). An operation with a budget of its
        own (slow by nature) is not judged for slow answers."""
        breaker, module = self.breaker, call.operation.module
        assert breaker is not None
        judged = call.operation.budget is None
        read = call.operation.mode is RetryMode.READ
        trial = breaker.admit(module, read=read, request_id=reference)
        if trial is not None and read:
            timeout = min(timeout, trial)
        observer, started = current_call(), self.monotonic()
        try:
            response = self.ports.gateway.send(self._request(call, reference, timeout=timeout))
            raise_for_transient_status(response, request_id=reference)
        except (GatewayTimeout, GatewayConnectionError, UpstreamUnavailable) as exc:
            seconds = self.monotonic() - started
            breaker.failed(module, seconds=seconds if judged else None)
            observer.attempt(reference, seconds=seconds, status_code=exc.upstream_status, error_code=exc.code)
            raise
        except BaseException as exc:  # an answer came (429, a garbled body): Decentro is there
            seconds = self.monotonic() - started
            breaker.succeeded(module, seconds=seconds if judged else None)
            observer.attempt(reference, seconds=seconds, status_code=getattr(exc, "upstream_status", None),
                             error_code=_code_of(exc))
            raise
        seconds = self.monotonic() - started
        breaker.succeeded(module, seconds=seconds if judged else None)
        observer.attempt(reference, seconds=seconds, status_code=response.status_code)
        return response

    def _open(self, call: _Call, reference_id: str | None = None, *,
              consent: ConsentRecord | None = None) -> OperationRecord:
        reference, operation = reference_id or self.new_reference_id(), call.operation
        if not operation.recorded:
            if consent is not None:
                self.ports.consents.record(consent)
            now = self.clock()
            return OperationRecord(reference, operation.name, "PENDING", now, now, user_id=call.user_id)
        return self.open_record(reference, operation.name, user_id=call.user_id,
                                sealed_input=operation.sealed_input(operation, call.request), consent=consent)

    def _settle(self, call: _Call, record: OperationRecord, status: str, *, audited: str | None = None,
                emit: bool = True, **changes: Any) -> None:
        """Save a recorded operation's status; with ``audited`` (the audit outcome), audit it
        and emit its outcome event in the same transaction."""
        if not call.operation.recorded:
            return
        if audited is None:
            self.settle_record(record, status, **changes)
            return
        self.settle_outcome(record, status, actor=call.actor, action=call.operation.name, subject=call.subject,
                            outcome=audited, emit=emit, **changes)

    def _settle_failure(self, call: _Call, record: OperationRecord, exc: DecentroError, *, emit: bool) -> None:
        """Settle a call that raised ``exc``: FAILURE, the error stored for a replay, audited."""
        self._settle(call, record, "FAILURE", result={"error": exc.code, "http_status": exc.http_status},
                     audited=exc.code, emit=emit)

    def _request(self, call: _Call, reference: str, *, timeout: float) -> GatewayRequest:
        operation = call.operation
        path = operation.path.format(settings=self.settings, **call.request)
        read = self.read_timeout(operation)
        return GatewayRequest(operation.method, path, operation.module, reference,
                              operation.body(call.request, reference), timeout=min(timeout, read))

    # -- KYC cache -----------------------------------------------------------------------

    def cache_key(self, user_id: str, kind: str, document: str | None = None) -> str:
        vault = self.ports.vault
        parts = ["kyc", vault.fingerprint(user_id), kind]
        if document is not None:
            parts.append(vault.fingerprint(f"{kind}:{document}"))
        return ":".join(parts)

    def cache_get(self, key: str) -> Any:
        sealed = self.ports.cache.get(key)
        if sealed is None:
            return None
        try:
            return self.open_json(sealed.decode())
        except DecentroError:
            log.warning("decentro cache entry could not be opened (key rotated?); ignoring it")
            self.ports.cache.delete(key)
            return None

    def cache_set(self, key: str, value: Any, *, ttl: int) -> None:
        self.ports.cache.set(key, self.seal_json(value).encode(), ttl=ttl)

    def run_cached(self, operation: Operation, request: Request, *, user_id: str, actor: str,
                   consent: ConsentRecord | None = None) -> dict[str, Any]:
        """Serve a fresh cached result for the same user and document, or run once.

        Concurrent identical misses wait on one lock (across processes with a shared cache),
        so a document is verified, and billed, once. The wait leaves one attempt's time of the
        deadline. A failing cache is bypassed (logged, counted) unless ``DECENTRO_CACHE_FAIL_OPEN``
        is false, in which case the call is refused before anything is recorded.
        """
        deadline = self.start_deadline()
        key = self.cache_key(user_id, operation.name, operation.cache_document(request))
        try:
            hit = self.cache_get(key)
            self.instruments.cache(operation.name, "miss" if hit is None else "hit")
            if hit is None:
                # Wait nearly the whole deadline: a waiter that gives up early calls (and bills)
                # a second time; one that waits too long answers DEADLINE_EXCEEDED, and its retry
                # finds the holder's result in the cache.
                wait = max(0.0, deadline.remaining() - MIN_ATTEMPT_SECONDS)
                waiting = self.monotonic()
                with self.ports.cache.lock(key + ":lock", timeout=wait) as won:
                    self.instruments.single_flight(operation.name, seconds=self.monotonic() - waiting, won=won)
                    if not won:
                        # Availability over exactness: the holder is slower than a whole call may
                        # take (or died), so this caller goes ahead (and may be billed once more).
                        log.warning("decentro %s: single-flight lock not won in time; calling anyway",
                                    operation.name)
                    hit = self.cache_get(key)
                    if hit is None:
                        envelope = self.run(operation, request, user_id=user_id, actor=actor, consent=consent,
                                            deadline=deadline)
                        if deadline.remaining() > 0:  # past it, the answer goes out uncached
                            self._cache_success(operation, user_id, key, envelope)
                        return envelope
                    self.instruments.cache(operation.name, "shared")
        except CacheUnavailable as exc:
            if not self.settings.cache_fail_open:
                self.instruments.cache(operation.name, "refused")
                raise
            self.cache_fallbacks += 1
            self.instruments.cache(operation.name, "fail_open")
            log.error("decentro %s: the cache is unavailable (%s); calling Decentro without it",
                      operation.name, type(exc.__cause__ or exc).__name__)
            return self.run(operation, request, user_id=user_id, actor=actor, consent=consent, deadline=deadline)
        self.record_audit(actor=actor, action=operation.name, subject=operation.subject(request), outcome="CACHE_HIT",
                          reference_id=hit["data"].get("reference_id"), operation_id=hit["data"].get("operation_id"),
                          consent=consent)
        return {**hit, "data": {**hit["data"], "cached": True}}

    def _cache_success(self, operation: Operation, user_id: str, key: str, envelope: dict[str, Any]) -> None:
        if envelope["status"] != "SUCCESS":
            return
        sealed = self.seal_json(envelope).encode()  # one seal serves both keys
        try:
            for cache_key in (key, self.cache_key(user_id, operation.name)):
                self.ports.cache.set(cache_key, sealed, ttl=self.settings.cache_ttl)
        except StoreError:
            log.error("decentro %s: the result could not be cached; it is returned all the same", operation.name)


@dataclass(frozen=True)
class _Call:
    operation: Operation
    request: Request
    user_id: str | None
    actor: str
    subject: str
    keyed: bool = False  # the first reference id is derived from the caller's idempotency key

    def envelope_fields(self) -> Mapping[str, Any] | None:
        """What the operation adds to its envelope's ``data`` for this request (the amount...)."""
        fields = self.operation.envelope_fields
        return fields(self.request) if fields is not None else None


class _NotScheduled(Exception):
    """A background retry could not be scheduled (no thread could be started)."""


class _RetryLater(Exception):
    """A retryable failure of an attempt whose retries run in the background."""

    def __init__(self, error: DecentroError, delay: float, attempts: int) -> None:
        super().__init__(error.code)
        self.error, self.delay, self.attempts = error, delay, attempts


def _log_audited(action: str, subject: str, outcome: str, reference_id: str | None) -> None:
    """The log line of an audited step (``subject`` is already masked), with its structured fields."""
    log.info("decentro %s %s -> %s (ref %s)", action, subject, outcome, reference_id,
             extra=log_fields(action, reference_id, status=outcome))


def _code_of(exc: BaseException) -> str:
    return exc.code if isinstance(exc, DecentroError) else type(exc).__name__


def _outcome_unknown(operation: Operation, exc: DecentroError, *, attempts: int) -> Outcome | None:
    """For a WRITE whose request may have been acted on, the honest answer is PENDING."""
    if operation.mode is not RetryMode.WRITE or not isinstance(exc, UpstreamError):
        return None
    maybe_accepted = isinstance(exc, (GatewayTimeout, UpstreamProtocolError)) or (
        isinstance(exc, UpstreamUnavailable) and exc.upstream_status != 503
    )
    # A duplicate on a retry means an earlier attempt with this same reference was accepted.
    duplicate_after_retry = isinstance(exc, DuplicateReference) and attempts > 1
    if not (maybe_accepted or duplicate_after_retry):
        return None
    return Outcome("PENDING", None, {"reconciliation": "OUTCOME_UNKNOWN", "reason": exc.code})
