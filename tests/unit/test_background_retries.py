"""A collect request Decentro refused unprocessed (429, 503, no connection) is retried off the
caller's thread: the caller is answered PENDING at once (its answer would be PENDING anyway: a
collect request waits for the payer), the retries keep the reference id and the call's
deadline, and settle the record as the call would have, with an event when it fails."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fakes import Harness, ScriptedGateway, answer, build, payment_created

from decentro_core.errors import GatewayConnectionError, GatewayTimeout, UpstreamUnavailable
from decentro_core.ports import OutcomeEvent

WAIT = 60.0  # generous, for a busy CI machine: waits end as soon as the retries have settled


def _collect(amount: Any = 10.0) -> dict[str, Any]:
    return {"amount": amount, "currency": "INR", "payment_method": "upi",
            "customer_details": {"name": "Test Payer", "email": "payer@example.com", "phone": "9876543210",
                                 "upi_id": "test.payer@okaxis"}}


class Threads:
    """A scripted answer that also notes which thread sent the request."""

    def __init__(self, answer: Any) -> None:
        self.answer, self.seen = answer, []  # type: ignore[var-annotated]

    def __call__(self, request: Any) -> Any:
        self.seen.append(threading.get_ident())
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def _harness(gateway: Any, **settings: Any) -> Harness:
    """Backoffs of 10-20 ms: the background retries wait in real time (on no thread)."""
    return build(gateway, **{"backoff_base": 0.01, "backoff_max": 0.02, **settings})


def test_a_503_answers_pending_at_once_and_the_retry_settles_the_record_with_the_same_reference() -> None:
    first, second = Threads(answer(503, {"status": "FAILURE"})), Threads(payment_created("TXN-LATER"))
    gateway = ScriptedGateway([first, second])
    h = _harness(gateway)
    result = h.service.initiate_payment(_collect())
    reference = result["data"]["reference_id"]
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "RETRY_SCHEDULED")
    assert result["data"]["reason"] == "UPSTREAM_UNAVAILABLE" and result["data"]["amount"] == "10.00"
    assert h.service.wait_for_retries(WAIT)
    assert h.sleep.delays == []  # the caller never slept, nor did any thread: the retry waited unheld
    assert first.seen == [threading.get_ident()] and second.seen and second.seen != first.seen
    assert [r.body["reference_id"] for r in gateway.requests] == [reference, reference]
    record = h.record(reference)
    assert (record.status, record.operation_id) == ("PENDING", "TXN-LATER")
    assert h.opened(record.sealed_result)["data"]["transaction_id"] == "TXN-LATER"
    outcomes = [e.outcome for e in h.audit.events if e.reference_id == reference]
    assert outcomes == ["RETRY_SCHEDULED", "PENDING"]


def test_retries_that_all_fail_settle_the_payment_failed_and_tell_the_host_by_an_event() -> None:
    gateway = ScriptedGateway([answer(503, {})])
    h = _harness(gateway)
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
    h = _harness(gateway)
    result = h.service.initiate_payment(_collect())
    assert result["data"]["reconciliation"] == "RETRY_SCHEDULED"
    assert h.service.wait_for_retries(WAIT)
    assert h.record(result["data"]["reference_id"]).operation_id == "TXN-2"


def test_a_timeout_is_never_retried_and_answers_outcome_unknown_on_the_callers_thread() -> None:
    gateway = ScriptedGateway([GatewayTimeout("slow"), payment_created()])
    h = _harness(gateway)
    result = h.service.initiate_payment(_collect())
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "OUTCOME_UNKNOWN")
    assert h.service.wait_for_retries(WAIT)
    assert len(gateway.requests) == 1 and h.sleep.delays == []


def test_a_payment_link_still_waits_for_its_retry_the_caller_needs_the_link() -> None:
    gateway = ScriptedGateway([answer(503, {}), payment_created("TXN-LINK")])
    h = _harness(gateway)
    result = h.service.initiate_payment({"amount": 10.0})
    assert result["data"]["operation_id"] == "TXN-LINK" and "reconciliation" not in result["data"]
    assert len(h.sleep.delays) == 1  # the caller's thread waited out the backoff


def test_with_no_background_threads_a_collect_request_retries_on_the_callers_thread() -> None:
    gateway = ScriptedGateway([answer(503, {}), payment_created("TXN-3")])
    h = _harness(gateway, background_retries=0)
    result = h.service.initiate_payment(_collect())
    assert result["data"]["operation_id"] == "TXN-3" and "reconciliation" not in result["data"]
    assert len(h.sleep.delays) == 1


def test_without_retries_left_the_failure_is_raised_to_the_caller() -> None:
    gateway = ScriptedGateway([answer(503, {})])
    h = _harness(gateway, max_retries=0)
    with pytest.raises(UpstreamUnavailable):
        h.service.initiate_payment(_collect())
    assert len(gateway.requests) == 1


def test_a_deadline_too_short_for_a_retry_fails_the_call_now_instead_of_scheduling_one() -> None:
    gateway = ScriptedGateway([answer(503, {})])
    h = _harness(gateway, deadline=1.2, backoff_base=0.5, backoff_max=0.5)  # 1 s kept for an attempt: 0.5 s more does not fit
    with pytest.raises(UpstreamUnavailable):
        h.service.initiate_payment(_collect())
    assert len(gateway.requests) == 1 and h.service.wait_for_retries(WAIT)


def test_a_repeat_with_the_same_key_while_the_retry_waits_answers_in_flight_without_calling() -> None:
    gateway = ScriptedGateway([answer(503, {}), payment_created("TXN-K")])
    h = _harness(gateway, backoff_base=5.0, backoff_max=5.0, deadline=60.0)  # waits while we look
    first = h.service.initiate_payment(_collect(), user_id="u1", idempotency_key="order-7")
    again = h.service.initiate_payment(_collect(), user_id="u1", idempotency_key="order-7")
    assert first["data"]["reconciliation"] == "RETRY_SCHEDULED"
    assert (again["status"], again["data"]["reconciliation"]) == ("PENDING", "IN_FLIGHT")
    assert again["data"]["reference_id"] == first["data"]["reference_id"] and len(gateway.requests) == 1
    assert h.service._runner._retries is not None and h.service._runner._retries.pending() == 1
    assert not h.service.wait_for_retries(0.05)  # still waiting: says so rather than blocking
    assert h.service.wait_for_retries(WAIT)
    replay = h.service.initiate_payment(_collect(), user_id="u1", idempotency_key="order-7")
    assert replay["data"]["transaction_id"] == "TXN-K" and replay["data"]["idempotent_replay"] is True
    assert len(gateway.requests) == 2


def test_the_service_closes_only_after_its_background_retries_settled() -> None:
    gateway = ScriptedGateway([answer(429, {}), payment_created("TXN-C")])
    h = _harness(gateway)
    reference = h.service.initiate_payment(_collect())["data"]["reference_id"]
    h.service.close()
    assert h.record(reference).operation_id == "TXN-C"


def test_many_waiting_retries_hold_no_thread_each_and_all_settle() -> None:
    """200 collect requests refused at once: a waiting retry holds no thread, so two workers
    settle them all within the backoff, not one backoff after another."""
    refused: set[str] = set()

    def once_refused(request: Any) -> Any:  # each reference refused once, then accepted
        if request.reference_id not in refused:
            refused.add(request.reference_id)
            return answer(503, {})
        return payment_created("TXN-" + request.reference_id)

    h = _harness(ScriptedGateway([once_refused]), background_retries=2, backoff_base=0.2, backoff_max=0.2,
                 breaker_threshold=0)
    references = [h.service.initiate_payment(_collect())["data"]["reference_id"] for _ in range(200)]
    assert h.service.wait_for_retries(WAIT)
    assert [h.record(r).operation_id for r in references] == ["TXN-" + r for r in references]
    assert threading.active_count() < 10  # the workers ended with the work


def test_delayed_tasks_run_in_due_order_and_their_workers_end_when_idle() -> None:
    from decentro_core.scheduling import DelayedTasks

    tasks, ran = DelayedTasks(3, name="test-delayed"), []
    for delay, label in [(0.15, "c"), (0.0, "a"), (0.05, "b")]:
        tasks.schedule(delay, lambda label=label: ran.append(label))
    tasks.schedule(0.0, lambda: 1 / 0)  # a failing task is logged; the worker goes on
    assert tasks.drain(WAIT) and ran == ["a", "b", "c"] and tasks.pending() == 0
    assert wait_until(lambda: not any(t.name.startswith("test-delayed") for t in threading.enumerate()))


def wait_until(condition: Any, limit: float = WAIT) -> bool:
    import time

    ends = time.monotonic() + limit
    while not condition():
        if time.monotonic() > ends:
            return False
        time.sleep(0.01)
    return True


def _circuit_opening(txn: str) -> tuple[Harness, ScriptedGateway, Any, list[str]]:
    """Two 503s open the payments circuit (threshold 2, 0.2 s cooldown), then ``txn`` is created;
    the breaker's changes are noted."""
    gateway = ScriptedGateway([answer(503, {}), answer(503, {}), payment_created(txn)])
    h = _harness(gateway, breaker_threshold=2, breaker_cooldown=0.2, max_retries=8, deadline=60.0)
    breaker = h.service._runner.breaker
    assert breaker is not None
    changes: list[str] = []
    breaker._listener = lambda key, change: changes.append(change)
    return h, gateway, breaker, changes


def test_a_background_retry_waits_out_an_open_circuit_instead_of_failing_the_payment() -> None:
    h, gateway, breaker, changes = _circuit_opening("TXN-B")
    reference = h.service.initiate_payment(_collect())["data"]["reference_id"]
    # 503, 503: the circuit opens; the retry is refused by it (nothing sent) and waits again
    assert wait_until(lambda: "rejected" in changes)
    assert len(gateway.requests) == 2 and h.record(reference).status == "PENDING"
    breaker.succeeded("payments")  # what a status read's successful trial does
    assert h.service.wait_for_retries(WAIT)
    assert len(gateway.requests) == 3 and h.record(reference).operation_id == "TXN-B"


def test_a_background_retry_is_the_open_circuits_trial_when_no_read_comes_to_close_it() -> None:
    """Collect requests only (writes, never a caller's trial): the retry itself tries again once
    the cooldown is over, with its whole timeout, and its answer closes the circuit."""
    h, gateway, _, changes = _circuit_opening("TXN-T")
    first = h.service.initiate_payment(_collect())["data"]["reference_id"]
    assert wait_until(lambda: "opened" in changes)
    assert wait_until(lambda: "rejected" in changes)  # within the cooldown: refused, nothing sent
    h.monotonic.advance(0.2)  # the breaker's cooldown is over (no read has come)
    assert h.service.wait_for_retries(WAIT)
    assert h.record(first).operation_id == "TXN-T" and changes[-1] == "closed"
    assert [r.body["reference_id"] for r in gateway.requests] == [first] * 3
    assert gateway.requests[-1].timeout == h.service.settings.timeout  # not cut to the cooldown


def test_a_store_failing_as_the_retry_is_scheduled_neither_fails_the_caller_nor_strands_the_record() -> None:
    from fakes import MemoryRecordStore

    from decentro_core.errors import StoreError

    class AuditDown(MemoryRecordStore):
        def record_access(self, *args: Any, **kwargs: Any) -> None:
            raise StoreError("the database went away")

    gateway = ScriptedGateway([answer(503, {}), payment_created("TXN-S")])
    h = build(gateway, records=AuditDown(), backoff_base=0.01, backoff_max=0.02)
    result = h.service.initiate_payment(_collect())
    assert result["data"]["reconciliation"] == "RETRY_SCHEDULED"
    assert h.service.wait_for_retries(WAIT)
    assert h.record(result["data"]["reference_id"]).operation_id == "TXN-S"


def test_a_collect_request_meeting_an_open_circuit_is_scheduled_and_its_retry_closes_it() -> None:
    """An outage longer than every waiting retry left the circuit open and nothing to try it:
    collect requests only, each refused at once, it never closed. The refused one is scheduled,
    and its retry is the trial once the cooldown is over."""
    gateway = ScriptedGateway([answer(503, {}), answer(503, {}), payment_created("TXN-C")])
    h = _harness(gateway, breaker_threshold=2, breaker_cooldown=0.2, max_retries=0, deadline=60.0)
    breaker = h.service._runner.breaker
    assert breaker is not None
    for _ in range(2):  # no retries allowed: each 503 fails its payment, and the circuit opens
        with pytest.raises(UpstreamUnavailable):
            h.service.initiate_payment(_collect())
    assert breaker.is_open("payments")
    h2 = _harness(gateway, breaker_threshold=2, breaker_cooldown=0.2, max_retries=3, deadline=60.0)
    h2.service._runner.breaker = breaker  # the same process's circuit, retries allowed again
    result = h2.service.initiate_payment(_collect())
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "RETRY_SCHEDULED")
    assert result["data"]["reason"] == "UPSTREAM_CIRCUIT_OPEN" and len(gateway.requests) == 2
    h.monotonic.advance(0.2)  # the circuit's cooldown is over
    assert h2.service.wait_for_retries(WAIT)
    assert h2.record(result["data"]["reference_id"]).operation_id == "TXN-C"
    assert not breaker.is_open("payments")


class _NoThreads:
    """``threading`` for :mod:`decentro_core.scheduling` while no thread can be started."""

    Condition = threading.Condition

    class Thread:
        def __init__(self, **kwargs: Any) -> None:
            pass

        def start(self) -> None:
            raise RuntimeError("can't start new thread")


def test_delayed_tasks_that_could_not_start_a_worker_still_start_one_later(monkeypatch: pytest.MonkeyPatch) -> None:
    from decentro_core import scheduling

    tasks = scheduling.DelayedTasks(1)
    ran: list[str] = []
    monkeypatch.setattr(scheduling, "threading", _NoThreads)
    with pytest.raises(RuntimeError):
        tasks.schedule(0.0, lambda: ran.append("lost"))
    assert tasks.pending() == 0  # refused, not left waiting for a worker that does not exist
    monkeypatch.setattr(scheduling, "threading", threading)
    tasks.schedule(0.0, lambda: ran.append("ran"))  # the pool does not think itself full
    assert tasks.drain(WAIT) and ran == ["ran"]


def test_a_retry_without_a_thread_answers_the_typed_refusal_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    from decentro_core import scheduling

    gateway = ScriptedGateway([answer(503, {}), payment_created("TXN-N")])
    h = _harness(gateway)
    monkeypatch.setattr(scheduling, "threading", _NoThreads)
    with pytest.raises(UpstreamUnavailable):
        h.service.initiate_payment(_collect())
    assert [r.status for r in h.records.operations.values()] == ["FAILURE"]
    assert len(gateway.requests) == 1
