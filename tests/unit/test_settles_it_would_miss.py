"""Behaviour a money bug would break, written where a mutation sample showed no test noticing:
the callback's dedupe key, snake_case callbacks and status aliases, secret rotation, outcome
events on an unchanged status, the breaker's count and threshold, and the ids that
reconciliation and audit rely on. Each test names the behaviour, not the line it guards."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from decentro_core.breaker import CircuitBreaker
from decentro_core.envelope import classify
from decentro_core.errors import AuthenticationFailed, CircuitOpen, DuplicateReference
from decentro_core.events import outcome_event, transition
from decentro_core.memory import MemoryAuditSink, MemoryRecordStore, MemoryVault
from decentro_core.ports import GatewayResponse, OperationRecord
from decentro_core.webhooks import WebhookProcessor, sign_body

START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
NEW_SECRET, OLD_SECRET = "whsec-new-one-first-in-the-list", "whsec-old-one-still-accepted"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def _payment(reference_id: str, operation_id: str) -> OperationRecord:
    return OperationRecord(reference_id=reference_id, operation="upi_payment", status="PENDING",
                           created_at=START, updated_at=START, operation_id=operation_id)


def _setup(*records: OperationRecord, secrets: tuple[str, ...] = (NEW_SECRET,)):
    store, audit, clock = MemoryRecordStore(), MemoryAuditSink(), Clock()
    for record in records:
        store.save_operation(record)
    processor = WebhookProcessor(store, MemoryVault(), audit, clock=clock, secrets=list(secrets))
    return store, audit, clock, processor


def _deliver(processor: WebhookProcessor, payload: dict[str, object], secret: str = NEW_SECRET):
    raw = json.dumps(payload).encode()
    return processor.receive(raw, signature=sign_body(raw, secret))


# -- the callback's dedupe key ------------------------------------------------------------------


def test_success_callbacks_without_callback_ids_for_two_payments_settle_both():
    """Without callbackTxnId the key is made from Decentro's id (or our reference id) and the
    status: two payments' callbacks must not share a key, or the second is taken as a duplicate."""
    store, _, _, processor = _setup(_payment("ref-a", "DCTR-A"), _payment("ref-b", "DCTR-B"))
    first = _deliver(processor, {"transactionStatus": "SUCCESS", "decentroTxnId": "DCTR-A"})
    second = _deliver(processor, {"transactionStatus": "SUCCESS", "decentroTxnId": "DCTR-B"})
    assert (first.outcome, second.outcome) == ("SUCCESS", "SUCCESS")
    assert first.dedupe_key != second.dedupe_key
    assert store.get_operation("ref-a").status == store.get_operation("ref-b").status == "SUCCESS"


def test_callbacks_naming_only_our_reference_ids_settle_each_payment():
    store, _, _, processor = _setup(_payment("ref-a", "DCTR-A"), _payment("ref-b", "DCTR-B"))
    assert _deliver(processor, {"transactionStatus": "SUCCESS", "referenceId": "ref-a"}).outcome == "SUCCESS"
    assert _deliver(processor, {"transactionStatus": "FAILURE", "referenceId": "ref-b"}).outcome == "FAILURE"
    assert (store.get_operation("ref-a").status, store.get_operation("ref-b").status) == ("SUCCESS", "FAILURE")


# -- snake_case callbacks and status names -------------------------------------------------------


def test_a_snake_case_callback_settles_like_a_camel_case_one():
    store, audit, _, processor = _setup(_payment("ref-1", "DCTR-1"))
    ack = _deliver(processor, {"attempt": 1, "callback_txn_id": "CB-7", "original_callback_txn_id": None,
                               "transaction_status": "SUCCESS", "reference_id": "ref-1",
                               "decentro_txn_id": "DCTR-1"})
    assert (ack.http_status, ack.outcome, ack.dedupe_key) == (200, "SUCCESS", "CB-7")
    assert store.get_operation("ref-1").status == "SUCCESS"
    assert [e.outcome for e in audit.events] == ["SUCCESS"]


def test_a_snake_case_retry_folds_into_its_first_delivery():
    store, audit, _, processor = _setup(_payment("ref-1", "DCTR-1"))
    _deliver(processor, {"callback_txn_id": "CB-1", "transaction_status": "SUCCESS", "reference_id": "ref-1"})
    retry = _deliver(processor, {"callback_txn_id": "CB-2", "original_callback_txn_id": "CB-1",
                                 "transaction_status": "SUCCESS", "reference_id": "ref-1"})
    assert (retry.outcome, retry.dedupe_key) == ("duplicate", "CB-1")
    assert len(audit.events) == 1


@pytest.mark.parametrize(("said", "settled"), [("SUCCESSFUL", "SUCCESS"), ("Success", "SUCCESS"),
                                               ("FAILED", "FAILURE"), ("failure", "FAILURE")])
def test_decentros_status_spellings_settle_to_our_statuses(said, settled):
    store, _, _, processor = _setup(_payment("ref-1", "DCTR-1"))
    assert _deliver(processor, {"transactionStatus": said, "referenceId": "ref-1"}).outcome == settled
    assert store.get_operation("ref-1").status == settled


# -- secret rotation ---------------------------------------------------------------------------


def test_during_a_rotation_callbacks_signed_with_the_new_first_secret_or_the_old_one_are_accepted():
    store, _, _, processor = _setup(_payment("ref-1", "DCTR-1"), _payment("ref-2", "DCTR-2"),
                                    secrets=(NEW_SECRET, OLD_SECRET))
    new = _deliver(processor, {"transactionStatus": "SUCCESS", "referenceId": "ref-1"}, secret=NEW_SECRET)
    old = _deliver(processor, {"transactionStatus": "SUCCESS", "referenceId": "ref-2"}, secret=OLD_SECRET)
    forged = _deliver(processor, {"transactionStatus": "FAILURE", "referenceId": "ref-1"}, secret="whsec-forged")
    assert (new.http_status, old.http_status, forged.http_status) == (200, 200, 401)


# -- outcome events -------------------------------------------------------------------------------


def test_saving_the_same_status_again_emits_no_outcome_event():
    settled = OperationRecord(reference_id="ref-1", operation="upi_payment", status="SUCCESS",
                              created_at=START, updated_at=START)
    event = outcome_event(settled, old_status="PENDING", at=START)
    assert event is not None and event.type == "payment.succeeded"
    assert transition(event, "SUCCESS", "SUCCESS") is None
    assert transition(event, "PENDING", "SUCCESS") is not None


def test_a_second_identical_status_save_in_the_store_writes_no_second_event():
    store = MemoryRecordStore()
    pending = OperationRecord(reference_id="ref-1", operation="upi_payment", status="PENDING",
                              created_at=START, updated_at=START)
    store.save_operation(pending)
    settled = OperationRecord(reference_id="ref-1", operation="upi_payment", status="SUCCESS",
                              created_at=START, updated_at=START + timedelta(seconds=1))
    event = outcome_event(settled, old_status="PENDING", at=settled.updated_at)
    audit = MemoryAuditSink()
    from decentro_core.ports import AuditEvent

    def audited() -> AuditEvent:
        return AuditEvent(actor="system", action="upi_payment.status", subject="upi_payment", outcome="SUCCESS",
                          occurred_at=START, reference_id="ref-1")

    assert store.save_outcome(settled, audit=audit, audit_event=audited(), event=event) is not None
    assert store.save_outcome(settled, audit=audit, audit_event=audited(), event=event) is None


# -- the breaker ---------------------------------------------------------------------------------


def test_an_answer_resets_the_breakers_count_of_consecutive_failures():
    breaker = CircuitBreaker(threshold=3, cooldown=30.0, monotonic=lambda: 0.0)
    for _ in range(2):
        breaker.failed("kyc")
    breaker.succeeded("kyc")
    for _ in range(2):
        breaker.failed("kyc")
    assert breaker.admit("kyc") is None  # 2 + 2 with an answer between: still closed
    breaker.failed("kyc")
    with pytest.raises(CircuitOpen):
        breaker.admit("kyc")


def test_the_circuit_opens_at_exactly_the_threshold_and_not_one_before():
    breaker = CircuitBreaker(threshold=5, cooldown=30.0, monotonic=lambda: 0.0)
    for _ in range(4):
        breaker.failed("payments")
    assert breaker.admit("payments") is None and not breaker.is_open("payments")
    breaker.failed("payments")
    assert breaker.is_open("payments")


def test_a_threshold_of_one_opens_on_the_first_failure_and_zero_never_opens():
    eager = CircuitBreaker(threshold=1, cooldown=30.0, monotonic=lambda: 0.0)
    eager.failed("kyc")
    assert eager.is_open("kyc")
    off = CircuitBreaker(threshold=0, cooldown=30.0, monotonic=lambda: 0.0)
    for _ in range(50):
        off.failed("kyc")
    assert off.admit("kyc") is None and not off.is_open("kyc")


def test_a_write_trial_that_failed_lets_a_later_write_try_again_after_a_cooldown():
    now = [0.0]
    breaker = CircuitBreaker(threshold=1, cooldown=10.0, monotonic=lambda: now[0])
    breaker.failed("notifications")
    now[0] = 25.0  # two cooldowns with no read: a write may be the trial
    assert breaker.admit("notifications", read=False) is not None
    with pytest.raises(CircuitOpen):  # one write trial at a time
        breaker.admit("notifications", read=False)
    breaker.failed("notifications")  # the trial ends: the next one waits a cooldown from now
    now[0] = 30.0
    with pytest.raises(CircuitOpen):
        breaker.admit("notifications", read=False)
    now[0] = 36.0
    assert breaker.admit("notifications", read=False) is not None
    breaker.succeeded("notifications")
    assert not breaker.is_open("notifications")


# -- the ids reconciliation and audit rely on --------------------------------------------------


def test_a_rejection_keeps_decentros_transaction_id_and_code():
    body = {"status": "FAILURE", "responseCode": "E00009", "decentroTxnId": "DCTR-REJ", "message": "bad input"}
    outcome = classify(GatewayResponse(400, body), request_id="ref-1")
    assert outcome is not None
    assert (outcome.status, outcome.error_code, outcome.operation_id, outcome.provider_code) == \
        ("FAILURE", "REJECTED_BY_PROVIDER", "DCTR-REJ", "E00009")


@pytest.mark.parametrize(("body", "error"), [
    ({"status": "FAILURE", "responseKey": "error_unauthorized_module", "decentroTxnId": "D1"}, AuthenticationFailed),
    ({"api_status": "FAILURE", "response_key": "error_unauthorized_module", "decentro_txn_id": "D1"},
     AuthenticationFailed),
    ({"status": "FAILURE", "responseCode": "E00019", "decentroTxnId": "D1"}, DuplicateReference),
    ({"api_status": "FAILURE", "response_key": "error_duplicate_reference_id", "decentro_txn_id": "D1"},
     DuplicateReference),
])
def test_refusals_carry_decentros_code_and_our_reference_id(body, error):
    with pytest.raises(error) as raised:
        classify(GatewayResponse(200, body), request_id="ref-42")
    assert raised.value.request_id == "ref-42"
    assert raised.value.provider_code in {"error_unauthorized_module", "E00019", "error_duplicate_reference_id"}


def test_a_callback_settle_stamps_the_time_and_audits_decentros_id():
    store, audit, clock, processor = _setup(_payment("ref-1", "DCTR-1"))
    clock.now = START + timedelta(minutes=3)
    _deliver(processor, {"callbackTxnId": "CB-1", "transactionStatus": "SUCCESS", "referenceId": "ref-1"})
    record = store.get_operation("ref-1")
    assert record.updated_at == clock.now
    (event,) = audit.events
    assert (event.operation_id, event.reference_id, event.action) == ("DCTR-1", "ref-1", "upi_payment.callback")
