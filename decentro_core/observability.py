"""What the core reports about its work, for logs, metrics and traces: the ``Instruments`` port.

The core reports through one port, ``Ports.instruments``, at a few fixed points:

- every Decentro call (``OperationRunner.run``): :meth:`Instruments.call` opens a
  :class:`CallObserver`, current while the call runs, which hears of every request sent
  (``attempt``: answered with an HTTP status, or failed with an error code) and of the end
  (``end``: the envelope's status, or ``ERROR`` and the exception's code);
- the KYC cache (``cache``: hit, miss, shared after waiting, fail-open, refused) and its
  single-flight lock (``single_flight``: how long the wait was, whether the lock was won);
- the circuit breaker (``breaker``: opened, closed, rejected a call, let a trial through);
- the webhook processor (``webhook``: received, processed, duplicate, failed, rejected,
  unavailable, with a bounded reason);
- outcome-event delivery (``event_dispatch``: delivered, retrying, dead, by event type;
  :class:`~decentro_core.events.EventDispatcher`).

Everything passed is bounded and free of personal data: operation and module names, our own
reference ids (random, or a keyed hash), error codes, statuses, HTTP status codes and
durations; never a document, a name, a user id or a body. A metrics adapter must still keep
reference ids out of its labels (one series per call would be unbounded): they are for spans
and log lines only.

:data:`LOG_INSTRUMENTS`, the default, writes one structured INFO line per call on the
``decentro`` logger (and one DEBUG line per attempt); :data:`NO_INSTRUMENTS` does nothing.
When nothing listens, :meth:`Instruments.call` returns :data:`NO_CALL` and the runner skips
all timing and bookkeeping for that call. The Prometheus and OpenTelemetry implementations
live in ``decentro_adapters.observability``; the composition root picks them from
``DECENTRO_METRICS`` and ``DECENTRO_TRACING`` and joins them with :class:`FanOut`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Concatenate, Literal, ParamSpec, Protocol, TypeVar

__all__ = [
    "LOG_FIELDS",
    "LOG_INSTRUMENTS",
    "NO_CALL",
    "NO_INSTRUMENTS",
    "BreakerChange",
    "CacheResult",
    "CallObserver",
    "FanOut",
    "Instruments",
    "LogInstruments",
    "NoInstruments",
    "WebhookOutcome",
    "current_call",
    "observed_call",
]

CacheResult = Literal["hit", "miss", "shared", "fail_open", "refused"]
"""``shared``: found after waiting on another caller's single-flight lock (one upstream call
served both); ``fail_open``: the cache failed and Decentro was called without it;
``refused``: the cache failed and ``DECENTRO_CACHE_FAIL_OPEN=false`` refused the call."""
BreakerChange = Literal["opened", "closed", "rejected", "trial"]
WebhookOutcome = Literal["received", "processed", "duplicate", "failed", "rejected", "unavailable"]

LOG_FIELDS = ("operation", "reference_id", "status", "attempt", "duration_ms", "error_code")
"""The structured fields (``extra=``) the library's log lines carry, when they apply."""

log = logging.getLogger("decentro")


class CallObserver(Protocol):
    """One Decentro call, from :meth:`Instruments.call` to :meth:`end` (always called once)."""

    def attempt(self, reference_id: str, *, seconds: float, status_code: int | None = None,
                error_code: str | None = None) -> None:
        """One request sent: answered (``status_code``), or failed (``error_code``, with the
        ``status_code`` of a 429 or 5xx answer)."""
        ...

    def end(self, *, status: str, reference_id: str | None, error_code: str | None, seconds: float) -> None:
        """The call's end: ``SUCCESS``, ``FAILURE``, ``PENDING``, or ``ERROR`` when it raised."""
        ...


class Instruments(Protocol):
    """Where the core reports (see the module docstring); every method is cheap and never raises."""

    def call(self, operation: str, module: str) -> CallObserver: ...

    def cache(self, operation: str, result: CacheResult) -> None: ...

    def single_flight(self, operation: str, *, seconds: float, won: bool) -> None: ...

    def breaker(self, module: str, change: BreakerChange) -> None: ...

    def webhook(self, outcome: WebhookOutcome, *, reason: str | None = None) -> None: ...

    def event_dispatch(self, event_type: str, outcome: str) -> None:
        """An event delivered (``outcome`` e.g. ``delivered``, ``failed``, ``dead``) by a relay."""
        ...


class _NoCall:
    """Hears nothing; the one instance :data:`NO_CALL` tells the runner to skip the bookkeeping."""

    __slots__ = ()

    def attempt(self, reference_id: str, *, seconds: float, status_code: int | None = None,
                error_code: str | None = None) -> None:
        pass

    def end(self, *, status: str, reference_id: str | None, error_code: str | None, seconds: float) -> None:
        pass


NO_CALL: CallObserver = _NoCall()


class NoInstruments:
    """Reports nothing (the base of the others: a subclass overrides what it listens to)."""

    def call(self, operation: str, module: str) -> CallObserver:
        return NO_CALL

    def cache(self, operation: str, result: CacheResult) -> None:
        pass

    def single_flight(self, operation: str, *, seconds: float, won: bool) -> None:
        pass

    def breaker(self, module: str, change: BreakerChange) -> None:
        pass

    def webhook(self, outcome: WebhookOutcome, *, reason: str | None = None) -> None:
        pass

    def event_dispatch(self, event_type: str, outcome: str) -> None:
        pass


NO_INSTRUMENTS = NoInstruments()


class LogInstruments(NoInstruments):
    """One INFO line per call with :data:`LOG_FIELDS` as ``extra`` (and a DEBUG line per attempt)."""

    def __init__(self, logger: logging.Logger = log) -> None:
        self.logger = logger

    def call(self, operation: str, module: str) -> CallObserver:
        if not self.logger.isEnabledFor(logging.INFO):
            return NO_CALL
        return _LoggedCall(self.logger, operation)


class _LoggedCall:
    __slots__ = ("attempts", "logger", "operation")

    def __init__(self, logger: logging.Logger, operation: str) -> None:
        self.logger, self.operation, self.attempts = logger, operation, 0

    def attempt(self, reference_id: str, *, seconds: float, status_code: int | None = None,
                error_code: str | None = None) -> None:
        self.attempts += 1
        if self.logger.isEnabledFor(logging.DEBUG):
            answer = " ".join(str(part) for part in (status_code and f"HTTP {status_code}", error_code) if part)
            self.logger.debug("decentro %s attempt %d: %s in %.0f ms (ref %s)", self.operation, self.attempts,
                              answer, seconds * 1000, reference_id,
                              extra=log_fields(self.operation, reference_id,
                                               status=None if status_code is None else str(status_code),
                                               attempt=self.attempts, seconds=seconds, error_code=error_code))

    def end(self, *, status: str, reference_id: str | None, error_code: str | None, seconds: float) -> None:
        outcome = f"{status} {error_code}" if error_code else status
        self.logger.info("decentro %s %s in %.0f ms, %d attempt(s) (ref %s)", self.operation, outcome,
                         seconds * 1000, self.attempts, reference_id,
                         extra=log_fields(self.operation, reference_id, status=status, attempt=self.attempts,
                                          seconds=seconds, error_code=error_code))


LOG_INSTRUMENTS = LogInstruments()


def log_fields(operation: str, reference_id: str | None, *, status: str | None = None, attempt: int | None = None,
               seconds: float | None = None, error_code: str | None = None) -> dict[str, Any]:
    """The ``extra=`` mapping of one log line: the :data:`LOG_FIELDS` that are known."""
    fields: dict[str, Any] = {"operation": operation, "reference_id": reference_id}
    if status is not None:
        fields["status"] = status
    if attempt is not None:
        fields["attempt"] = attempt
    if seconds is not None:
        fields["duration_ms"] = round(seconds * 1000, 3)
    if error_code is not None:
        fields["error_code"] = error_code
    return fields


class FanOut(NoInstruments):
    """Several instruments as one (logs, metrics and traces together)."""

    def __init__(self, members: Sequence[Instruments]) -> None:
        self.members = tuple(members)

    def call(self, operation: str, module: str) -> CallObserver:
        calls = [c for c in (m.call(operation, module) for m in self.members) if c is not NO_CALL]
        if not calls:
            return NO_CALL
        return calls[0] if len(calls) == 1 else _FanOutCall(calls)

    def cache(self, operation: str, result: CacheResult) -> None:
        for member in self.members:
            member.cache(operation, result)

    def single_flight(self, operation: str, *, seconds: float, won: bool) -> None:
        for member in self.members:
            member.single_flight(operation, seconds=seconds, won=won)

    def breaker(self, module: str, change: BreakerChange) -> None:
        for member in self.members:
            member.breaker(module, change)

    def webhook(self, outcome: WebhookOutcome, *, reason: str | None = None) -> None:
        for member in self.members:
            member.webhook(outcome, reason=reason)

    def event_dispatch(self, event_type: str, outcome: str) -> None:
        for member in self.members:
            member.event_dispatch(event_type, outcome)


class _FanOutCall:
    __slots__ = ("calls",)

    def __init__(self, calls: Sequence[CallObserver]) -> None:
        self.calls = calls

    def attempt(self, reference_id: str, *, seconds: float, status_code: int | None = None,
                error_code: str | None = None) -> None:
        for call in self.calls:
            call.attempt(reference_id, seconds=seconds, status_code=status_code, error_code=error_code)

    def end(self, *, status: str, reference_id: str | None, error_code: str | None, seconds: float) -> None:
        # Last opened, first ended: a tracer's span context is detached in the order it was attached.
        for call in reversed(self.calls):
            call.end(status=status, reference_id=reference_id, error_code=error_code, seconds=seconds)


# -- the runner's side ----------------------------------------------------------------------

_current: ContextVar[CallObserver] = ContextVar("decentro_call", default=NO_CALL)


def current_call() -> CallObserver:
    """The observer of the call running in this context (:data:`NO_CALL` outside one)."""
    return _current.get()


class _Runner(Protocol):
    @property
    def instruments(self) -> Instruments: ...

    @property
    def monotonic(self) -> Callable[[], float]: ...


class _Declared(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def module(self) -> str: ...


R = TypeVar("R", bound=_Runner)
O = TypeVar("O", bound=_Declared)
P = ParamSpec("P")
Envelope = Mapping[str, Any]
E = TypeVar("E", bound=Envelope)


def observed_call(run: Callable[Concatenate[R, O, P], E]) -> Callable[Concatenate[R, O, P], E]:
    """Report a runner's call to its instruments: opened before, current during, ended after.

    The end is the envelope's status, reference id and error code, or ``ERROR`` with the
    exception's code (its type's name when it is not one of ours) and its request id.
    """

    @functools.wraps(run)
    def observed(runner: R, operation: O, /, *args: P.args, **kwargs: P.kwargs) -> E:
        observer = runner.instruments.call(operation.name, operation.module)
        if observer is NO_CALL:
            return run(runner, operation, *args, **kwargs)
        started, token = runner.monotonic(), _current.set(observer)
        try:
            envelope = run(runner, operation, *args, **kwargs)
        except BaseException as exc:
            code = getattr(exc, "code", None)
            observer.end(status="ERROR", reference_id=getattr(exc, "request_id", None),
                         error_code=code if isinstance(code, str) else type(exc).__name__,
                         seconds=runner.monotonic() - started)
            raise
        finally:
            _current.reset(token)
        data, error = envelope.get("data") or {}, envelope.get("error") or {}
        observer.end(status=str(envelope.get("status")), reference_id=data.get("reference_id"),
                     error_code=error.get("code"), seconds=runner.monotonic() - started)
        return envelope

    return observed
