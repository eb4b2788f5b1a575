"""OpenTelemetry spans for Decentro calls (``opentelemetry-api``; the ``otel`` extra).

:class:`OpenTelemetryInstruments` opens one ``CLIENT`` span per Decentro call, named
``decentro <operation>`` and current while the call runs (an instrumented HTTP client's span
nests under it). Its attributes (:data:`SPAN_ATTRIBUTES`) are the operation, the module, our
reference id, the number of requests sent, the outcome, the error code and the duration; each
request sent is an event ``decentro.attempt`` with its number, reference id, HTTP status or
error code and duration. Nothing personal is ever set: no document, name, user id or body.
A call that raised sets the span's status to ERROR. Without an SDK configured, spans do not
record and the call is not observed at all.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider

from decentro_core.observability import NO_CALL, CallObserver, NoInstruments

__all__ = ["SPAN_ATTRIBUTES", "OpenTelemetryInstruments"]

SPAN_ATTRIBUTES = (
    "decentro.operation", "decentro.module", "decentro.reference_id", "decentro.attempt",
    "decentro.status", "decentro.error_code", "decentro.duration_ms",
)


class OpenTelemetryInstruments(NoInstruments):
    """A span per Decentro call, on ``tracer_provider`` (default: the global one)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.tracer = trace.get_tracer("flask-decentro", tracer_provider=tracer_provider)

    def call(self, operation: str, module: str) -> CallObserver:
        span = self.tracer.start_span(f"decentro {operation}", kind=SpanKind.CLIENT,
                                      attributes={"decentro.operation": operation, "decentro.module": module})
        if not span.is_recording():
            return NO_CALL
        return _TracedCall(span, context.attach(trace.set_span_in_context(span)))


class _TracedCall:
    __slots__ = ("attempts", "span", "token")

    def __init__(self, span: trace.Span, token: Any) -> None:
        self.span, self.token, self.attempts = span, token, 0

    def attempt(self, reference_id: str, *, seconds: float, status_code: int | None = None,
                error_code: str | None = None) -> None:
        self.attempts += 1
        attributes: dict[str, str | int | float] = {
            "decentro.attempt": self.attempts, "decentro.reference_id": reference_id,
            "decentro.duration_ms": round(seconds * 1000, 3),
        }
        if status_code is not None:
            attributes["http.response.status_code"] = status_code
        if error_code is not None:
            attributes["decentro.error_code"] = error_code
        self.span.add_event("decentro.attempt", attributes)

    def end(self, *, status: str, reference_id: str | None, error_code: str | None, seconds: float) -> None:
        span = self.span
        span.set_attribute("decentro.status", status)
        span.set_attribute("decentro.attempt", self.attempts)
        span.set_attribute("decentro.duration_ms", round(seconds * 1000, 3))
        if reference_id:
            span.set_attribute("decentro.reference_id", reference_id)
        if error_code:
            span.set_attribute("decentro.error_code", error_code)
        if status == "ERROR":
            span.set_status(Status(StatusCode.ERROR, error_code))
        context.detach(self.token)
        span.end()
