"""The Instruments port: what the core reports of its calls, cache, breaker and callbacks.

A recording fake stands in for Prometheus and OpenTelemetry; the adapters have their own
tests (tests/adapters/test_observability_*.py). Nothing reported names a person.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import pytest
from fakes import Harness, ScriptedGateway, answer, build, pan_found

from decentro_core.errors import CacheUnavailable, ConfigurationError, GatewayTimeout
from decentro_core.memory import MemoryCache
from decentro_core.observability import (
    LOG_FIELDS,
    LOG_INSTRUMENTS,
    NO_CALL,
    NO_INSTRUMENTS,
    FanOut,
    LogInstruments,
    NoInstruments,
    current_call,
)
from decentro_core.ports import GatewayRequest, GatewayResponse, Ports
from decentro_core.settings import Settings
from decentro_core.webhooks.processor import DEMO_WEBHOOK_SECRET

CONSENT = {"given": True, "text": "I agree that my PAN is verified.",
           "purpose": "Customer onboarding identity verification"}
PAN, NAME = "ABCDE1234F", "Asha Verma"


@dataclass
class RecordedCall:
    operation: str
    module: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    ended: dict[str, Any] | None = None

    def attempt(self, reference_id: str, **details: Any) -> None:
        assert current_call() is self  # current while the call runs
        self.attempts.append({"reference_id": reference_id, **details})

    def end(self, **details: Any) -> None:
        assert self.ended is None, "ended twice"
        self.ended = details


class RecordingInstruments(NoInstruments):
    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.events: list[tuple[Any, ...]] = []

    def call(self, operation: str, module: str) -> RecordedCall:  # type: ignore[override]
        self.calls.append(RecordedCall(operation, module))
        return self.calls[-1]

    def cache(self, operation: str, result: str) -> None:  # type: ignore[override]
        self.events.append(("cache", operation, result))

    def single_flight(self, operation: str, *, seconds: float, won: bool) -> None:
        self.events.append(("single_flight", operation, won))

    def breaker(self, module: str, change: str) -> None:  # type: ignore[override]
        self.events.append(("breaker", module, change))

    def webhook(self, outcome: str, *, reason: str | None = None) -> None:  # type: ignore[override]
        self.events.append(("webhook", outcome, reason))


def _time_out(request: GatewayRequest) -> GatewayResponse:
    raise GatewayTimeout("no answer", request_id=request.reference_id)


def _build(gateway: Any = None, **settings: Any) -> tuple[Harness, RecordingInstruments]:
    instruments = RecordingInstruments()
    return build(gateway, instruments=instruments, **settings), instruments


def test_a_call_reports_its_one_request_and_its_end_with_the_envelopes_reference() -> None:
    h, instruments = _build()
    envelope = h.service.verify_pan(PAN, NAME)
    [call] = instruments.calls
    assert (call.operation, call.module) == ("pan", "kyc")
    [attempt] = call.attempts
    assert attempt["status_code"] == 200 and attempt.get("error_code") is None and attempt["seconds"] >= 0
    assert call.ended is not None
    assert call.ended["status"] == "SUCCESS" and call.ended["error_code"] is None
    assert call.ended["reference_id"] == attempt["reference_id"] == envelope["data"]["reference_id"]
    assert current_call() is NO_CALL  # not current once over


def test_a_read_retried_after_a_503_reports_two_requests_with_fresh_reference_ids() -> None:
    gateway = ScriptedGateway([answer(503, {"status": "FAILURE"}), pan_found()])
    h, instruments = _build(gateway)
    h.service.verify_pan(PAN)
    [call] = instruments.calls
    assert [a.get("status_code") for a in call.attempts] == [503, 200]
    assert call.attempts[0]["error_code"] == "UPSTREAM_UNAVAILABLE"  # a 503 is raised as unavailable
    assert call.attempts[0]["reference_id"] != call.attempts[1]["reference_id"]
    assert call.ended is not None and call.ended["reference_id"] == call.attempts[1]["reference_id"]


def test_a_call_that_raises_ends_as_error_with_the_exceptions_code() -> None:
    gateway = ScriptedGateway([_time_out])
    h, instruments = _build(gateway, max_retries=0)
    with pytest.raises(GatewayTimeout):
        h.service.verify_pan(PAN)
    [call] = instruments.calls
    assert [a.get("error_code") for a in call.attempts] == ["UPSTREAM_TIMEOUT"]
    assert call.ended is not None and (call.ended["status"], call.ended["error_code"]) == ("ERROR", "UPSTREAM_TIMEOUT")
    assert call.ended["reference_id"] == call.attempts[0]["reference_id"]


def test_a_business_failure_ends_with_its_error_code() -> None:
    h, instruments = _build()
    h.service.verify_pan("ABCDE0000F")  # the emulator's invalid PAN
    assert instruments.calls[0].ended is not None
    assert (instruments.calls[0].ended["status"], instruments.calls[0].ended["error_code"]) == (
        "FAILURE", "INVALID_DOCUMENT")


def test_the_cache_reports_a_miss_its_single_flight_wait_and_then_a_hit() -> None:
    h, instruments = _build()
    h.service.verify_pan(PAN, user_id="u-1", consent=CONSENT)
    h.service.verify_pan(PAN, user_id="u-1", consent=CONSENT)
    assert instruments.events == [("cache", "pan", "miss"), ("single_flight", "pan", True), ("cache", "pan", "hit")]
    assert len(instruments.calls) == 1  # a hit is not a Decentro call


class BrokenCache(MemoryCache):
    def get(self, key: str) -> bytes | None:
        raise CacheUnavailable("down")


def test_a_failing_cache_is_reported_as_fail_open_or_refused() -> None:
    h, instruments = _build(cache=BrokenCache())  # type: ignore[arg-type]
    h.service.verify_pan(PAN, user_id="u-1", consent=CONSENT)
    assert ("cache", "pan", "fail_open") in instruments.events
    h, instruments = _build(cache=BrokenCache(), cache_fail_open=False)  # type: ignore[arg-type]
    with pytest.raises(CacheUnavailable):
        h.service.verify_pan(PAN, user_id="u-1", consent=CONSENT)
    assert instruments.events == [("cache", "pan", "refused")] and instruments.calls == []


def test_the_breaker_reports_opening_failing_fast_a_trial_and_closing() -> None:
    gateway = ScriptedGateway([GatewayTimeout("no answer", request_id="x")] * 2 + [pan_found()])
    h, instruments = _build(gateway, max_retries=0, breaker_threshold=2, breaker_cooldown=5)
    for _ in range(3):
        with pytest.raises(Exception):
            h.service.verify_pan(PAN)
    h.monotonic.advance(5)
    h.service.verify_pan(PAN)
    breaker = [e for e in instruments.events if e[0] == "breaker"]
    assert breaker == [("breaker", "kyc", "opened"), ("breaker", "kyc", "rejected"), ("breaker", "kyc", "trial"),
                       ("breaker", "kyc", "closed")]
    assert instruments.calls[2].ended == {"status": "ERROR", "reference_id": instruments.calls[2].ended["reference_id"],
                                          "error_code": "UPSTREAM_CIRCUIT_OPEN", "seconds": 0.0}
    assert instruments.calls[2].attempts == []  # nothing was sent


def _signed(body: dict[str, Any]) -> tuple[bytes, str]:
    raw = json.dumps(body).encode()
    return raw, hmac.new(DEMO_WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()


def test_callbacks_report_processed_duplicate_and_rejected_with_a_reason() -> None:
    h, instruments = _build()
    reference = h.service.initiate_payment({"amount": 30, "customer_details": {
        "name": NAME, "email": "asha@example.com", "phone": "9876500011"}})["data"]["reference_id"]
    raw, signature = _signed({"callbackTxnId": "CB-1", "transactionStatus": "SUCCESS", "referenceId": reference})
    h.service.webhooks.receive(raw, signature=signature)
    h.service.webhooks.receive(raw, signature=signature)
    h.service.webhooks.receive(raw, signature="0" * 64)
    webhooks = [e for e in instruments.events if e[0] == "webhook"]
    assert webhooks == [
        ("webhook", "received", None), ("webhook", "processed", "SUCCESS"),
        ("webhook", "received", None), ("webhook", "duplicate", None),
        ("webhook", "received", None), ("webhook", "rejected", "WEBHOOK_SIGNATURE_INVALID"),
    ]


def test_a_callback_for_an_unknown_payment_is_reported_failed() -> None:
    h, instruments = _build()
    raw, signature = _signed({"callbackTxnId": "CB-9", "transactionStatus": "SUCCESS", "referenceId": "nobody"})
    h.service.webhooks.receive(raw, signature=signature)
    assert ("webhook", "failed", "OperationNotFound") in instruments.events


def test_ports_default_to_the_log_lines_and_nothing_listens_when_info_is_off(caplog: pytest.LogCaptureFixture) -> None:
    assert Ports.__dataclass_fields__["instruments"].default is LOG_INSTRUMENTS
    caplog.set_level(logging.WARNING, logger="decentro")
    assert LOG_INSTRUMENTS.call("pan", "kyc") is NO_CALL
    assert NO_INSTRUMENTS.call("pan", "kyc") is NO_CALL
    assert FanOut([NO_INSTRUMENTS, LOG_INSTRUMENTS]).call("pan", "kyc") is NO_CALL


def test_a_fan_out_ends_its_calls_last_opened_first() -> None:
    order: list[str] = []

    class Named(NoInstruments):
        def __init__(self, name: str) -> None:
            self.name = name

        def call(self, operation: str, module: str) -> Any:
            name = self.name

            class Call:
                def attempt(self, *_: Any, **__: Any) -> None:
                    order.append(f"attempt {name}")

                def end(self, **_: Any) -> None:
                    order.append(f"end {name}")
            return Call()

    call = FanOut([Named("a"), Named("b")]).call("pan", "kyc")
    call.attempt("ref", seconds=0.1, status_code=200)
    call.end(status="SUCCESS", reference_id="ref", error_code=None, seconds=0.1)
    assert order == ["attempt a", "attempt b", "end b", "end a"]


def test_each_call_logs_one_line_with_the_structured_fields_and_nothing_personal(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    h = build(instruments=LogInstruments())
    envelope = h.service.verify_pan(PAN, NAME, user_id="u-1", consent=CONSENT)
    h.service.verify_bank("123456789011", "SBIN0001077", NAME)
    calls = [r for r in caplog.records if r.name == "decentro" and r.levelno == logging.INFO
             and getattr(r, "attempt", None) is not None]
    assert len(calls) == 2
    first = calls[0]
    assert {name: getattr(first, name, None) for name in LOG_FIELDS if name != "duration_ms"} == {
        "operation": "pan", "reference_id": envelope["data"]["reference_id"], "status": "SUCCESS", "attempt": 1,
        "error_code": None}
    assert isinstance(first.duration_ms, float)
    everything = "\n".join(r.getMessage() + repr(sorted(vars(r).items(), key=lambda kv: kv[0]))
                           for r in caplog.records)
    assert [s for s in (PAN, NAME, "Asha", "Verma", "123456789011") if s in everything] == []


@pytest.mark.parametrize(("value", "expected"), [("prometheus", "prometheus"), (" Prometheus ", "prometheus"),
                                                 ("", ""), ("off", ""), ("none", "")])
def test_metrics_setting_accepts_prometheus_or_nothing(value: str, expected: str) -> None:
    assert Settings.from_mapping({"DECENTRO_METRICS": value}).metrics == expected


def test_an_unknown_metrics_or_tracing_backend_is_refused_by_name() -> None:
    for env in ("DECENTRO_METRICS", "DECENTRO_TRACING"):
        with pytest.raises(ConfigurationError, match=env):
            Settings.from_mapping({env: "statsd"})
    assert Settings.from_mapping({"DECENTRO_TRACING": "OTEL"}).tracing == "otel"
