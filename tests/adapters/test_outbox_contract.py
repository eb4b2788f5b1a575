"""The outbox contract: the in-memory store, SQLite and PostgreSQL write outcome events with
the status change, once per transition, and hand each due event to one dispatcher at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from decentro_adapters.sql.stores import open_stores
from decentro_core.events import outcome_event
from decentro_core.memory import MemoryAuditSink, MemoryRecordStore
from decentro_core.ports import AuditEvent, AuditSink, CallbackUpdate, OperationRecord, RecordStore, WebhookEvent

T0 = datetime(2024, 5, 1, 10, 30, 15, tzinfo=timezone.utc)


@pytest.fixture
def stores(store_url: str | None) -> Iterator[tuple[RecordStore, AuditSink]]:
    if store_url is None:
        yield MemoryRecordStore(), MemoryAuditSink()
        return
    with open_stores(store_url) as opened:
        yield opened.records, opened.audit


def payment(reference: str = "ref-1", status: str = "PENDING", **changes: object) -> OperationRecord:
    values: dict[str, object] = {"reference_id": reference, "operation": "upi_payment", "status": status,
                                 "created_at": T0, "updated_at": T0, "operation_id": f"TXN-{reference}",
                                 "user_id": "user-1", "sealed_request": "gAAAA-request"}
    values.update(changes)
    return OperationRecord(**values)  # type: ignore[arg-type]


def settle(store: RecordStore, audit: AuditSink, reference: str, status: str, *, old: str = "PENDING",
           at: datetime = T0) -> object:
    record = payment(reference, status, updated_at=at + timedelta(seconds=1))
    note = AuditEvent("system", "upi_payment", "payment", status, at)
    return store.save_outcome(record, audit=audit, audit_event=note,
                              event=outcome_event(record, old_status=old, at=at))


def test_a_status_change_writes_its_event_and_its_audit_row_once(stores: tuple[RecordStore, AuditSink]) -> None:
    store, audit = stores
    store.save_operation(payment())
    first = settle(store, audit, "ref-1", "SUCCESS")
    again = settle(store, audit, "ref-1", "SUCCESS")

    assert again is None
    events = store.outbox.events()
    assert [(e.key, e.type, e.old_status, e.new_status, e.state, e.operation_id) for e in events] == [
        ("ref-1:payment.succeeded", "payment.succeeded", "PENDING", "SUCCESS", "pending", "TXN-ref-1")]
    assert replace(first, id=events[0].id) == events[0] and events[0].id is not None  # type: ignore[type-var]
    assert audit.verify().checked == 2 and store.get_operation("ref-1").status == "SUCCESS"  # type: ignore[union-attr]


def test_a_write_the_store_refuses_emits_nothing(stores: tuple[RecordStore, AuditSink]) -> None:
    store, audit = stores
    store.save_operation(payment(status="FAILURE"))  # a callback settled it first
    assert settle(store, audit, "ref-1", "SUCCESS") is None
    assert store.get_operation("ref-1").status == "FAILURE"  # type: ignore[union-attr]
    assert store.outbox.events() == []


def test_an_unresolved_payment_yields_to_a_settled_status_only(stores: tuple[RecordStore, AuditSink]) -> None:
    store, audit = stores
    store.save_operation(payment())
    assert settle(store, audit, "ref-1", "OUTCOME_UNKNOWN") is not None
    store.save_operation(payment(status="PENDING", updated_at=T0 + timedelta(minutes=1)))  # a stale write
    assert store.get_operation("ref-1").status == "OUTCOME_UNKNOWN"  # type: ignore[union-attr]
    late = settle(store, audit, "ref-1", "SUCCESS", at=T0 + timedelta(minutes=2))
    assert late is not None and late.old_status == "OUTCOME_UNKNOWN"  # type: ignore[attr-defined]
    assert [e.type for e in store.outbox.events()] == ["payment.outcome_unknown", "payment.succeeded"]


def test_a_callback_writes_the_event_its_decision_carries_in_its_transaction(
        stores: tuple[RecordStore, AuditSink]) -> None:
    store, audit = stores
    store.save_operation(payment())
    store.add_webhook_event(WebhookEvent("hook-1", "gAAAA-body", T0))

    def decide(record: OperationRecord) -> CallbackUpdate:
        updated = replace(record, status="SUCCESS", updated_at=T0 + timedelta(seconds=5))
        return CallbackUpdate(audit=AuditEvent("decentro-callback", "upi_payment.callback", "upi_payment",
                                               "SUCCESS", T0), record=updated,
                              event=outcome_event(updated, old_status=record.status, at=T0))

    update = store.apply_callback("hook-1", reference_id="ref-1", operation_id=None, decide=decide, audit=audit)
    duplicate = store.apply_callback("hook-1", reference_id="ref-1", operation_id=None, decide=decide, audit=audit)

    assert update is not None and update.event is not None and update.event.key == "ref-1:payment.succeeded"
    assert duplicate is not None and duplicate.event is None
    assert [e.key for e in store.outbox.events()] == ["ref-1:payment.succeeded"]


def test_claims_lease_events_oldest_first_and_finish_records_the_delivery(
        stores: tuple[RecordStore, AuditSink]) -> None:
    store, audit = stores
    for i in range(3):
        store.save_operation(payment(f"ref-{i}"))
        settle(store, audit, f"ref-{i}", "SUCCESS" if i != 1 else "FAILURE", at=T0 + timedelta(seconds=i))
    outbox, now = store.outbox, T0 + timedelta(minutes=1)

    assert [e.key for e in outbox.claim(now, limit=10, lease=30, types=("payment.failed",))] == [
        "ref-1:payment.failed"]
    claimed = outbox.claim(now, limit=1, lease=30)
    assert [e.key for e in claimed] == ["ref-0:payment.succeeded"]
    assert [e.key for e in outbox.claim(now, limit=10, lease=30)] == ["ref-2:payment.succeeded"]
    assert outbox.claim(now, limit=10, lease=30) == []  # all leased

    outbox.finish("ref-0:payment.succeeded", now=now, delivered_to=("a",), error="RuntimeError",
                  retry_at=now + timedelta(seconds=5))
    retrying = outbox.get("ref-0:payment.succeeded")
    assert retrying is not None and (retrying.state, retrying.attempts, retrying.delivered_to, retrying.last_error) == (
        "retrying", 1, ("a",), "RuntimeError")
    assert outbox.claim(now + timedelta(seconds=4), limit=10, lease=30) == []
    assert [e.key for e in outbox.claim(now + timedelta(seconds=5), limit=10, lease=30)] == [
        "ref-0:payment.succeeded"]
    outbox.finish("ref-0:payment.succeeded", now=now, delivered_to=("a", "b"), error=None, retry_at=None)
    done = outbox.get("ref-0:payment.succeeded")
    assert done is not None and (done.state, done.attempts, done.delivered_to, done.delivered_at) == (
        "delivered", 2, ("a", "b"), now)

    assert outbox.requeue("ref-0:payment.succeeded", now=now, all_handlers=True)
    requeued = outbox.get("ref-0:payment.succeeded")
    assert requeued is not None and (requeued.state, requeued.delivered_to) == ("pending", ())
    assert not outbox.requeue("no-such-key", now=now)


def test_events_are_listed_a_page_at_a_time_by_state(stores: tuple[RecordStore, AuditSink]) -> None:
    store, audit = stores
    for i in range(5):
        store.save_operation(payment(f"ref-{i}"))
        settle(store, audit, f"ref-{i}", "SUCCESS", at=T0 + timedelta(seconds=i))
    outbox = store.outbox
    outbox.finish("ref-3:payment.succeeded", now=T0, delivered_to=(), error=None, retry_at=None)
    first = outbox.events(limit=2)
    rest = outbox.events(after_id=first[-1].id or 0, limit=10)
    assert [e.reference_id for e in first + rest] == [f"ref-{i}" for i in range(5)]
    assert [e.reference_id for e in outbox.events(state="delivered")] == ["ref-3"]


def test_unsettled_lists_old_pending_payments_a_page_at_a_time(stores: tuple[RecordStore, AuditSink]) -> None:
    store, _ = stores
    for i in range(4):
        store.save_operation(payment(f"ref-{i}", created_at=T0 + timedelta(minutes=i)))
    store.save_operation(payment("ref-settled", status="SUCCESS"))
    store.save_operation(payment("ref-pan", operation="pan"))
    cutoff = T0 + timedelta(minutes=3)

    first = store.unsettled("upi_payment", created_before=cutoff, limit=2)
    second = store.unsettled("upi_payment", created_before=cutoff, limit=2, after=first[-1])

    assert [r.reference_id for r in first] == ["ref-0", "ref-1"]
    assert [r.reference_id for r in second] == ["ref-2"]


def test_concurrent_dispatchers_claim_disjoint_events(stores: tuple[RecordStore, AuditSink]) -> None:
    store, audit = stores
    for i in range(40):
        store.save_operation(payment(f"ref-{i}"))
        settle(store, audit, f"ref-{i}", "SUCCESS", at=T0 + timedelta(milliseconds=i))
    claimed: list[str] = []
    guard = threading.Lock()
    barrier = threading.Barrier(4, timeout=30)

    def dispatcher() -> None:
        barrier.wait()
        while True:
            got = store.outbox.claim(T0 + timedelta(minutes=1), limit=3, lease=60)
            if not got:
                return
            with guard:
                claimed.extend(e.key for e in got)

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(claimed) == sorted(f"ref-{i}:payment.succeeded" for i in range(40))


def test_an_event_its_writer_inserted_leased_is_not_claimed_by_another_dispatcher(
        stores: tuple[RecordStore, AuditSink]) -> None:
    store, audit = stores
    store.save_operation(payment())
    record = payment(status="SUCCESS", updated_at=T0 + timedelta(seconds=1))
    event = outcome_event(record, old_status="PENDING", at=T0)
    assert event is not None
    leased = replace(event, leased_until=T0 + timedelta(seconds=60))
    written = store.save_outcome(record, audit=audit, audit_event=None, event=leased)
    assert written is not None and written.leased_until == T0 + timedelta(seconds=60)
    assert store.outbox.claim(T0 + timedelta(seconds=30), limit=10, lease=60) == []
    assert [e.key for e in store.outbox.claim(T0 + timedelta(seconds=61), limit=10, lease=60)] == [event.key]
