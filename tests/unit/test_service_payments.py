"""UPI payments: link or collect, PENDING on creation, status by reference, and WRITE safety
(an unknown outcome is PENDING, never a second request with money at stake)."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import Harness, RecordingGateway, ScriptedGateway, answer, build, payment_created

from decentro_core import Settings
from decentro_core.errors import ConfigurationError, GatewayConnectionError, GatewayTimeout, UnknownReference
from decentro_core.errors import IdempotencyConflict, UpstreamUnavailable, ValidationError
from decentro_core.memory import MemoryRecordStore

LINK = "/v2/payments/upi/link"
COLLECT = "/v2/payments/collection"
STATUS = "/v2/payments/transaction/{transaction_id}/status"


def _payload(amount: Any = 10.0, **customer: str) -> dict[str, Any]:
    details = {"name": "Test Payer", "email": "payer@example.com", "phone": "9876543210", **customer}
    return {"amount": amount, "currency": "INR", "payment_method": "upi", "customer_details": details}


@pytest.fixture
def h() -> Harness:
    return build()


def _status_requests(h: Harness) -> int:
    return int(h.gateway.emulator.stats()["requests"].get(STATUS, 0))


def test_a_payment_without_a_payer_vpa_opens_a_payment_link_and_is_pending(h: Harness) -> None:
    result = h.service.initiate_payment(_payload(10.0))
    assert result["status"] == "PENDING"
    request = h.gateway.requests[0]
    assert (request.method, request.path, request.module) == ("POST", LINK, "payments")
    assert request.body["amount"] == 10.0 and "payer_upi" not in request.body
    assert request.body["payee_account"] == "MOCKPAYEE0001"
    data = result["data"]
    assert data["reference_id"] == request.body["reference_id"]
    assert data["transaction_id"] == data["operation_id"]
    assert data["payment_link"].startswith("https://") and data["currency"] == "INR"


def test_a_payment_with_a_payer_vpa_sends_a_collect_request(h: Harness) -> None:
    result = h.service.initiate_payment({**_payload(10.0, upi_id="charles.babbage@okhdfc"),
                                         "purpose": "Order 42", "expiry_minutes": 15})
    assert result["status"] == "PENDING"
    request = h.gateway.requests[0]
    assert request.path == COLLECT
    assert request.body["payer_upi"] == "charles.babbage@okhdfc"
    assert (request.body["purpose_message"], request.body["expiry_time"]) == ("Order 42", 15)


def test_the_configured_payee_account_is_used_when_set() -> None:
    h = build(payee_account="MYPAYEE0042")
    h.service.initiate_payment(_payload(10.0))
    assert h.gateway.requests[0].body["payee_account"] == "MYPAYEE0042"


@pytest.mark.parametrize(("amount", "status", "code"), [
    (10, "SUCCESS", None),
    (20, "FAILURE", "PAYMENT_FAILED"),
    (30, "PENDING", None),
])
def test_the_status_of_a_sandbox_amount_is_what_decentro_settles_it_to(
        h: Harness, amount: int, status: str, code: str | None) -> None:
    created = h.service.initiate_payment(_payload(amount))
    result = h.service.get_payment_status(created["data"]["reference_id"])
    assert result["status"] == status
    assert result["data"]["reference_id"] == created["data"]["reference_id"]
    assert result["data"]["transaction_id"] == created["data"]["transaction_id"]
    assert result.get("error", {}).get("code") == code


def test_a_terminal_status_is_stored_and_not_asked_of_decentro_again(h: Harness) -> None:
    reference = h.service.initiate_payment(_payload(10))["data"]["reference_id"]
    first = h.service.get_payment_status(reference)
    assert h.record(reference).status == "SUCCESS"
    second = h.service.get_payment_status(reference)
    assert _status_requests(h) == 1
    assert second["status"] == first["status"] == "SUCCESS"
    assert second["data"]["bank_reference_number"] == first["data"]["bank_reference_number"]


def test_a_pending_payment_is_asked_again_until_it_settles(h: Harness) -> None:
    created = h.service.initiate_payment(_payload(30))
    reference = created["data"]["reference_id"]
    assert h.service.get_payment_status(reference)["status"] == "PENDING"
    h.gateway.emulator.settle_payment(created["data"]["transaction_id"], "SUCCESS")
    h.monotonic.advance(16)  # past DECENTRO_STATUS_CHECK_INTERVAL
    assert h.service.get_payment_status(reference)["status"] == "SUCCESS"
    assert _status_requests(h) == 2


def test_reads_within_the_check_interval_ask_decentro_once_and_a_read_that_changes_nothing_writes_nothing(
        h: Harness) -> None:
    reference = h.service.initiate_payment(_payload(30))["data"]["reference_id"]
    rows = (len(h.records.operations), len(h.audit.events))
    results = [h.service.get_payment_status(reference) for _ in range(50)]
    assert {r["status"] for r in results} == {"PENDING"} and _status_requests(h) == 1
    assert (len(h.records.operations), len(h.audit.events)) == rows
    h.monotonic.advance(16)
    h.service.get_payment_status(reference)
    assert _status_requests(h) == 2 and (len(h.records.operations), len(h.audit.events)) == rows


def test_a_status_that_changes_is_saved_and_audited_once(h: Harness) -> None:
    created = h.service.initiate_payment(_payload(30))
    reference = created["data"]["reference_id"]
    h.gateway.emulator.settle_payment(created["data"]["transaction_id"], "SUCCESS")
    assert h.service.get_payment_status(reference)["status"] == "SUCCESS"
    assert h.record(reference).status == "SUCCESS"
    assert [(e.action, e.outcome) for e in h.audit.events][-1] == ("payment_status", "SUCCESS")


def test_a_failed_payment_keeps_payment_failed_when_read_back_from_the_record(h: Harness) -> None:
    reference = h.service.initiate_payment(_payload(20))["data"]["reference_id"]
    h.service.get_payment_status(reference)
    again = h.service.get_payment_status(reference)
    assert (again["status"], again["error"]["code"]) == ("FAILURE", "PAYMENT_FAILED")


def test_the_status_of_an_unknown_reference_raises_unknown_reference(h: Harness) -> None:
    with pytest.raises(UnknownReference) as raised:
        h.service.get_payment_status("no-such-reference")
    assert raised.value.http_status == 404
    assert h.gateway.requests == []


def test_the_status_of_a_reference_that_is_not_a_payment_raises_unknown_reference(h: Harness) -> None:
    reference = h.service.verify_pan("ABCDE1234F")["data"]["reference_id"]
    with pytest.raises(UnknownReference):
        h.service.get_payment_status(reference)


def test_a_payment_that_times_out_is_pending_with_unknown_outcome_and_sent_exactly_once() -> None:
    gateway = ScriptedGateway([GatewayTimeout("no answer"), payment_created()])
    h = build(gateway)
    result = h.service.initiate_payment(_payload(10))
    assert result["status"] == "PENDING"
    assert result["data"]["reconciliation"] == "OUTCOME_UNKNOWN"
    assert result["data"]["reason"] == "UPSTREAM_TIMEOUT"
    assert len(gateway.requests) == 1
    assert h.sleep.delays == []
    assert h.record(result["data"]["reference_id"]).status == "PENDING"


def test_the_emulators_timeout_amount_is_sent_once_and_answers_pending(h: Harness) -> None:
    result = h.service.initiate_payment(_payload("4.08"))
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "OUTCOME_UNKNOWN")
    assert h.gateway.emulator.stats()["requests"][LINK] == 1


def test_a_pending_payment_with_unknown_outcome_reads_pending_without_asking_decentro() -> None:
    gateway = ScriptedGateway([GatewayTimeout("no answer")])
    h = build(gateway)
    reference = h.service.initiate_payment(_payload(10))["data"]["reference_id"]
    assert h.service.get_payment_status(reference)["status"] == "PENDING"
    assert len(gateway.requests) == 1


def test_a_503_then_success_is_retried_once_with_the_same_reference_id() -> None:
    gateway = ScriptedGateway([answer(503, {"status": "FAILURE"}), payment_created("TXN-9")])
    h = build(gateway)
    result = h.service.initiate_payment(_payload(10))
    assert result["status"] == "PENDING" and result["data"]["operation_id"] == "TXN-9"
    sent = [(r.reference_id, r.body["reference_id"]) for r in gateway.requests]
    assert sent == [(result["data"]["reference_id"],) * 2] * 2
    assert len(h.sleep.delays) == 1
    assert h.record(result["data"]["reference_id"]).operation_id == "TXN-9"


def test_a_connection_error_before_sending_is_retried_with_the_same_reference_id() -> None:
    gateway = ScriptedGateway([GatewayConnectionError("refused"), payment_created()])
    h = build(gateway)
    h.service.initiate_payment(_payload(10))
    assert len({r.reference_id for r in gateway.requests}) == 1 and len(gateway.requests) == 2


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_5xx_other_than_503_is_not_retried_and_answers_pending(status: int) -> None:
    gateway = ScriptedGateway([answer(status, {"status": "FAILURE"}), payment_created()])
    h = build(gateway)
    result = h.service.initiate_payment(_payload(10))
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "OUTCOME_UNKNOWN")
    assert len(gateway.requests) == 1


def test_a_payment_answered_503_every_time_raises_after_retrying_the_same_reference(h: Harness) -> None:
    with pytest.raises(UpstreamUnavailable):
        h.service.initiate_payment(_payload("5.03"))
    assert h.gateway.emulator.stats()["requests"][LINK] == 4
    assert len({r.reference_id for r in h.gateway.requests}) == 1
    assert h.record(h.gateway.requests[0].reference_id).status == "FAILURE"


def test_a_duplicate_reference_on_a_retry_means_an_earlier_attempt_was_accepted() -> None:
    duplicate = answer(400, {"status": "FAILURE", "responseCode": "E00019", "responseKey": "error_duplicate_reference_id"})
    gateway = ScriptedGateway([answer(503, {}), duplicate])
    h = build(gateway)
    result = h.service.initiate_payment(_payload(10))
    assert (result["status"], result["data"]["reason"]) == ("PENDING", "DUPLICATE_REFERENCE")


def test_live_mode_without_a_payee_account_raises_configuration_error_and_sends_nothing() -> None:
    live = Settings(use_mocks=False, client_id="cid", client_secret="csecret", api_key="key",
                    encryption_keys=("k",), audit_keys=("a" * 43,))
    gateway = ScriptedGateway([payment_created()])
    h = build(gateway, settings=live, records=MemoryRecordStore())
    with pytest.raises(ConfigurationError) as raised:
        h.service.initiate_payment(_payload(10))
    assert "DECENTRO_PAYEE_ACCOUNT" in str(raised.value)
    assert gateway.requests == [] and h.records.operations == {}


def test_the_payment_record_opens_to_the_envelope_the_caller_got_and_status_keeps_the_amount(h: Harness) -> None:
    created = h.service.initiate_payment(_payload("30.50"))
    reference = created["data"]["reference_id"]
    assert h.opened(h.record(reference).sealed_result) == created
    status = h.service.get_payment_status(reference)
    assert (status["data"]["amount"], status["data"]["currency"]) == ("30.50", "INR")


def test_a_status_look_up_decentro_cannot_answer_leaves_the_payment_pending_and_asks_again() -> None:
    not_found = answer(404, {"decentroTxnId": "S1", "status": "FAILURE", "responseCode": "E00026",
                             "responseKey": "error_transaction_not_found"})
    settled = answer(200, {"decentroTxnId": "S2", "status": "SUCCESS", "data": {"transactionStatus": "SUCCESS"}})
    gateway = ScriptedGateway([payment_created("TXN-7"), not_found, settled])
    h = build(gateway)
    reference = h.service.initiate_payment(_payload(10))["data"]["reference_id"]
    assert h.service.get_payment_status(reference)["status"] == "PENDING"
    assert h.record(reference).status == "PENDING"
    h.monotonic.advance(16)
    assert h.service.get_payment_status(reference)["status"] == "SUCCESS"


# -- idempotency keys --------------------------------------------------------------------------------


def test_a_repeat_with_the_same_key_and_body_answers_the_first_payment_without_a_new_call() -> None:
    h = build()
    first = h.service.initiate_payment({"amount": 30}, user_id="u-1", idempotency_key="order-42")
    again = h.service.initiate_payment({"amount": 30}, user_id="u-1", idempotency_key="order-42")
    assert len(h.gateway.requests) == 1
    assert again["data"]["reference_id"] == first["data"]["reference_id"]
    assert again["data"]["transaction_id"] == first["data"]["transaction_id"]
    assert again["data"]["idempotent_replay"] is True and "idempotent_replay" not in first["data"]
    assert h.gateway.requests[0].body["reference_id"] == first["data"]["reference_id"]  # Decentro sees it too


def test_the_same_key_with_another_body_is_a_conflict_and_nothing_is_sent() -> None:
    h = build()
    h.service.initiate_payment({"amount": 30}, user_id="u-1", idempotency_key="order-42")
    with pytest.raises(IdempotencyConflict) as raised:
        h.service.initiate_payment({"amount": 31}, user_id="u-1", idempotency_key="order-42")
    assert raised.value.http_status == 409 and len(h.gateway.requests) == 1


def test_keys_are_per_user_and_expire_after_the_window() -> None:
    h = build(idempotency_window=60)
    mine = h.service.initiate_payment({"amount": 30}, user_id="u-1", idempotency_key="k")
    theirs = h.service.initiate_payment({"amount": 30}, user_id="u-2", idempotency_key="k")
    assert mine["data"]["reference_id"] != theirs["data"]["reference_id"] and len(h.gateway.requests) == 2
    h.clock.advance(seconds=61)
    with pytest.raises(IdempotencyConflict) as raised:
        h.service.initiate_payment({"amount": 30}, user_id="u-1", idempotency_key="k")
    assert raised.value.code == "IDEMPOTENCY_KEY_EXPIRED"


def test_a_repeat_after_a_lost_answer_is_pending_and_never_sent_again() -> None:
    from decentro_core.errors import GatewayTimeout

    gateway = ScriptedGateway([GatewayTimeout("lost", request_id="r")])
    h = build(gateway)
    first = h.service.initiate_payment({"amount": 30}, user_id="u-1", idempotency_key="order-7")
    again = h.service.initiate_payment({"amount": 30}, user_id="u-1", idempotency_key="order-7")
    assert first["status"] == again["status"] == "PENDING"
    assert again["data"]["reference_id"] == first["data"]["reference_id"] and len(gateway.requests) == 1


def test_concurrent_repeats_make_one_upstream_call() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    gate = threading.Event()

    class Slow(RecordingGateway):
        def send(self, request: Any) -> Any:
            gate.wait(30)
            return super().send(request)

    h = build(Slow())
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(h.service.initiate_payment, {"amount": 30}, user_id="u-1", idempotency_key="dbl")
                   for _ in range(8)]
        gate.set()
        results = [f.result(timeout=60) for f in futures]
    assert len(h.gateway.requests) == 1
    assert len({r["data"]["reference_id"] for r in results}) == 1


@pytest.mark.parametrize("key", ["", "a" * 256, "with space", "ünïcode"])
def test_a_malformed_key_is_refused_before_anything_is_sent(key: str) -> None:
    h = build()
    with pytest.raises(ValidationError) as raised:
        h.service.initiate_payment({"amount": 30}, idempotency_key=key)
    assert set(raised.value.fields) == {"idempotency_key"} and h.gateway.requests == []



def test_a_concurrent_repeat_decentro_refuses_as_a_duplicate_never_fails_the_first_payment() -> None:
    """Two processes without a shared lock (no DECENTRO_CACHE_URL, or the cache down) take the
    same key at once: both find no record, both send, Decentro accepts one and refuses the
    other's reference id as a duplicate. The refusal must not settle the shared record FAILURE:
    then the accepted payment's answer and callback could never be recorded (a settled status
    is final), and the app would never hear that the customer paid."""
    import dataclasses
    import threading

    from fakes import RecordingCache

    from decentro_core.service import BlockingDecentroService

    both_looked, lookups = threading.Barrier(2, timeout=30), [0]

    class Racing(MemoryRecordStore):
        def get_operation(self, reference_id: str) -> Any:
            found = super().get_operation(reference_id)
            with self._guard:
                lookups[0] += 1
                racing = lookups[0] <= 2
            if racing:
                both_looked.wait()  # each process has looked, and found nothing, before either writes
            return found

    refused = threading.Event()
    guard, sent = threading.Lock(), []

    def decentro(request: Any) -> Any:
        with guard:
            first = not sent
            sent.append(request.reference_id)
        if first:  # accepted; its answer arrives after the duplicate's refusal was recorded
            refused.wait(30)
            return payment_created("TXN-ONCE", status="PENDING")
        return answer(400, {"status": "FAILURE", "responseCode": "E00019",
                            "responseKey": "error_duplicate_reference_id", "message": "Duplicate"})

    one = build(ScriptedGateway([decentro]), records=Racing())
    two = BlockingDecentroService(one.service.settings, dataclasses.replace(one.service.ports, cache=RecordingCache()),
                                  clock=one.clock, new_reference_id=one.ids, sleep=one.sleep,
                                  monotonic=one.monotonic)
    results: list[Any] = []

    def call(service: Any) -> None:
        try:
            results.append(service.initiate_payment({"amount": 30}, user_id="u-1", idempotency_key="k-9"))
        except Exception as exc:  # noqa: BLE001 - what each caller gets is checked below
            results.append(exc)
        finally:
            with guard:
                if len(sent) == 2 and len(results) == 1:
                    refused.set()  # the refused caller is done: let the accepted answer through

    threads = [threading.Thread(target=call, args=(s,)) for s in (one.service, two)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    refused.set()
    assert len(results) == 2
    record = one.records.get_operation(next(r for r in results if isinstance(r, dict))["data"]["reference_id"])
    assert record is not None and record.status == "PENDING" and record.operation_id == "TXN-ONCE"
    assert all(isinstance(r, dict) and r["status"] == "PENDING" for r in results), results
    assert {r["data"].get("transaction_id") for r in results} >= {"TXN-ONCE"}
