"""A collect request Decentro refused unprocessed (429, 503, no connection) is retried off the
caller's thread: the caller is answered PENDING at once (its answer would be PENDING anyway: a
collect request waits for the payer), the retries keep the reference id and the call's
deadline, and settle the record as the call would have, with an event when it fails."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fakes import Harness, RecordingSleep, ScriptedGateway, answer, build, payment_created

from decentro_core.errors import GatewayConnectionError, GatewayTimeout, UpstreamUnavailable
from decentro_core.ports import OutcomeEvent

WAIT = 30.0  # generous: a busy CI machine; nothing here sleeps for real


def _collect(amount: Any = 10.0) -> dict[str, Any]:
    return {"amount": amount, "currency": "INR", "payment_method": "upi",
            "customer_details": {"name": "Test Payer", "email": "payer@example.com", "phone": "9876543210",
                                 "upi_id": "test.payer@okaxis"}}


class ThreadSleep(RecordingSleep):
    """Records which threads were made to wait."""

    def __init__(self, inner: RecordingSleep) -> None:
        super().__init__(inner.monotonic)
        self.threads: set[int] = set()

    def __call__(self, seconds: float) -> None:
        self.threads.add(threading.get_ident())
        super().__call__(seconds)


def _harness(gateway: Any, **settings: Any) -> tuple[Harness, ThreadSleep]:
    h = build(gateway, **settings)
    sleep = ThreadSleep(h.sleep)
    h.service._runner.sleep = sleep
    return h, sleep


def test_a_503_answers_pending_at_once_and_the_retry_settles_the_record_with_the_same_reference() -> None:
    gateway = ScriptedGateway([answer(503, {"status": "FAILURE"}), payment_created("TXN-LATER")])
    h, sleep = _harness(gateway)
    result = h.service.initiate_payment(_collect())
    reference = result["data"]["reference_id"]
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "RETRY_SCHEDULED")
    assert result["data"]["reason"] == "UPSTREAM_UNAVAILABLE" and result["data"]["amount"] == "10.00"
    assert h.service.wait_for_retries(WAIT)
    assert threading.get_ident() not in sleep.threads and len(sleep.threads) == 1  # only a retry thread waited
    assert [r.body["reference_id"] for r in gateway.requests] == [reference, reference]
    record = h.record(reference)
    assert (record.status, record.operation_id) == ("PENDING", "TXN-LATER")
    assert h.opened(record.sealed_result)["data"]["transaction_id"] == "TXN-LATER"
    outcomes = [e.outcome for e in h.audit.events if e.reference_id == reference]
    assert outcomes == ["RETRY_SCHEDULED", "PENDING"]


def test_retries_that_all_fail_settle_the_payment_failed_and_tell_the_host_by_an_event() -> None:
    gateway = ScriptedGateway([answer(503, {})])
    h, _ = _harness(gateway)
    got: list[OutcomeEvent] = []
    h.service.on("payment.failed", got.append)
    reference = h.service.initiate_payment(_collect())["data"]["reference_id"]
    assert h.service.wait_for_retries(WAIT)
    assert len(gateway.requests) == 1 + h.service.settings.max_retries
    assert {r.reference_id for r in gateway.requests} == {reference}
    assert h.record(reference).status == "FAILURE"
    assert [(e.type, e.reference_id) for e in got] == [("payment.failed", reference)]
    assert h.opened(h.record(reference).sealed_result)["error"] == "UPSTREAM_UNAVAILABLE"


def test_a_connection_refused_before_sending_is_retried_in_the_background_too() -> None:
    gateway = ScriptedGateway([GatewayConnectionError("refused"), payment_created("TXN-2")])
    h, _ = _harness(gateway)
    result = h.service.initiate_payment(_collect())
    assert result["data"]["reconciliation"] == "RETRY_SCHEDULED"
    assert h.service.wait_for_retries(WAIT)
    assert h.record(result["data"]["reference_id"]).operation_id == "TXN-2"


def test_a_timeout_is_never_retried_and_answers_outcome_unknown_on_the_callers_thread() -> None:
    gateway = ScriptedGateway([GatewayTimeout("slow"), payment_created()])
    h, sleep = _harness(gateway)
    result = h.service.initiate_payment(_collect())
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "OUTCOME_UNKNOWN")
    assert h.service.wait_for_retries(WAIT)
    assert len(gateway.requests) == 1 and sleep.delays == []


def test_a_payment_link_still_waits_for_its_retry_the_caller_needs_the_link() -> None:
    gateway = ScriptedGateway([answer(503, {}), payment_created("TXN-LINK")])
    h, sleep = _harness(gateway)
    result = h.service.initiate_payment({"amount": 10.0})
    assert result["data"]["operation_id"] == "TXN-LINK" and "reconciliation" not in result["data"]
    assert sleep.threads == {threading.get_ident()}


def test_with_no_background_threads_a_collect_request_retries_on_the_callers_thread() -> None:
    gateway = ScriptedGateway([answer(503, {}), payment_created("TXN-3")])
    h, sleep = _harness(gateway, background_retries=0)
    result = h.service.initiate_payment(_collect())
    assert result["data"]["operation_id"] == "TXN-3" and "reconciliation" not in result["data"]
    assert sleep.threads == {threading.get_ident()}


def test_without_retries_left_the_failure_is_raised_to_the_caller() -> None:
    gateway = ScriptedGateway([answer(503, {})])
    h, _ = _harness(gateway, max_retries=0)
    with pytest.raises(UpstreamUnavailable):
        h.service.initiate_payment(_collect())
    assert len(gateway.requests) == 1


def test_a_deadline_too_short_for_a_retry_fails_the_call_now_instead_of_scheduling_one() -> None:
    gateway = ScriptedGateway([answer(503, {})])
    h, _ = _harness(gateway, deadline=1.2)  # 1 s is kept for an attempt; the 0.5 s backoff does not fit
    with pytest.raises(UpstreamUnavailable):
        h.service.initiate_payment(_collect())
    assert len(gateway.requests) == 1 and h.service.wait_for_retries(WAIT)


def test_a_repeat_with_the_same_key_while_the_retry_waits_answers_in_flight_without_calling() -> None:
    release = threading.Event()
    gateway = ScriptedGateway([answer(503, {}), payment_created("TXN-K")])
    h, sleep = _harness(gateway)
    real_sleep = h.service._runner.sleep

    def held(seconds: float) -> None:
        assert release.wait(WAIT)
        real_sleep(seconds)

    h.service._runner.sleep = held
    first = h.service.initiate_payment(_collect(), user_id="u1", idempotency_key="order-7")
    again = h.service.initiate_payment(_collect(), user_id="u1", idempotency_key="order-7")
    assert first["data"]["reconciliation"] == "RETRY_SCHEDULED"
    assert (again["status"], again["data"]["reconciliation"]) == ("PENDING", "IN_FLIGHT")
    assert again["data"]["reference_id"] == first["data"]["reference_id"] and len(gateway.requests) == 1
    release.set()
    assert h.service.wait_for_retries(WAIT)
    replay = h.service.initiate_payment(_collect(), user_id="u1", idempotency_key="order-7")
    assert replay["data"]["transaction_id"] == "TXN-K" and replay["data"]["idempotent_replay"] is True
    assert len(gateway.requests) == 2


def test_the_service_closes_only_after_its_background_retries_settled() -> None:
    gateway = ScriptedGateway([answer(429, {}), payment_created("TXN-C")])
    h, _ = _harness(gateway)
    reference = h.service.initiate_payment(_collect())["data"]["reference_id"]
    h.service.close()
    assert h.record(reference).operation_id == "TXN-C"
