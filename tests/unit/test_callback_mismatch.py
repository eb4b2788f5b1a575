"""A signed callback settles only the transaction it is about: one naming another Decentro
transaction id, or another amount, than the payment it would settle is stored ``failed`` (for
an operator to see), acknowledged, and not applied; the payment waits for reconciliation."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from decentro_core.memory import MemoryAuditSink, MemoryRecordStore, MemoryVault
from decentro_core.ports import OperationRecord
from decentro_core.webhooks import WebhookProcessor, sign_body

SECRET = "whsec-mismatch-test"
START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def world():
    store, vault, audit = MemoryRecordStore(), MemoryVault(), MemoryAuditSink()
    sealed = vault.seal(json.dumps({"amount": "30.00", "purpose": "EMI 1"}).encode())
    store.save_operation(OperationRecord(reference_id="ref-1", operation="upi_payment", status="PENDING",
                                         created_at=START, updated_at=START, operation_id="DCTR-1",
                                         sealed_request=sealed))
    processor = WebhookProcessor(store, vault, audit, clock=lambda: START, secrets=[SECRET])
    return store, audit, processor


def _deliver(processor, **fields):
    payload = {"callbackTxnId": "CB-1", "transactionStatus": "SUCCESS", "referenceId": "ref-1", **fields}
    raw = json.dumps(payload).encode()
    return processor.receive(raw, signature=sign_body(raw, SECRET))


@pytest.mark.parametrize("fields", [
    {"transactionAmount": 1.0},
    {"transactionAmount": "29.99"},
    {"transaction_amount": 300},
    {"decentroTxnId": "DCTR-SOMEONE-ELSE"},
], ids=["a-rupee-for-thirty", "a-paisa-short", "snake-case-ten-times", "another-transaction"])
def test_a_callback_about_another_transaction_leaves_the_payment_pending(world, fields):
    store, audit, processor = world
    ack = _deliver(processor, **fields)
    assert (ack.http_status, ack.outcome) == (200, "failed")
    assert store.get_operation("ref-1").status == "PENDING"
    event = store.get_webhook_event("CB-1")
    assert event.state == "failed" and event.last_error.startswith("CallbackMismatch")
    assert audit.events == []


@pytest.mark.parametrize("amount", [30, 30.0, "30", "30.00"])
def test_a_callback_naming_the_same_amount_settles_the_payment(world, amount):
    store, audit, processor = world
    ack = _deliver(processor, transactionAmount=amount, decentroTxnId="DCTR-1")
    assert ack.outcome == "SUCCESS"
    assert store.get_operation("ref-1").status == "SUCCESS"
    assert [e.outcome for e in audit.events] == ["SUCCESS"]


def test_a_callback_without_an_amount_settles_by_its_ids(world):
    store, _, processor = world
    assert _deliver(processor).outcome == "SUCCESS"
    assert store.get_operation("ref-1").status == "SUCCESS"


@pytest.mark.parametrize("amount", ["thirty", True, [30], {"value": 30}, "NaN", "-30", "Infinity"])
def test_an_amount_that_is_no_amount_is_a_bad_payload(world, amount):
    store, _, processor = world
    ack = _deliver(processor, transactionAmount=amount)
    assert ack.http_status == 400
    assert store.get_operation("ref-1").status == "PENDING"


def test_a_mismatched_callback_never_reveals_the_amounts_in_its_reason(world):
    store, _, processor = world
    _deliver(processor, transactionAmount=1.0)
    reason = store.get_webhook_event("CB-1").last_error
    assert "30" not in reason and "1.0" not in reason
