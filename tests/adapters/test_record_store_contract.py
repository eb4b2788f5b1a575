"""The RecordStore contract: MemoryRecordStore, SQLite (file) and PostgreSQL behave alike."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from decentro_adapters.sql.schema import LOCK_ORDER
from decentro_adapters.sql.stores import open_stores
from decentro_core.errors import ConfigurationError, StoreError
from decentro_core.memory import MemoryAuditSink, MemoryRecordStore
from decentro_core.ports import SETTLED_STATUSES, AuditEvent, CallbackUpdate, OperationRecord, RecordStore, WebhookEvent

T0 = datetime(2024, 5, 1, 10, 30, 15, 123456, tzinfo=timezone.utc)



@pytest.fixture
def store(store_url: str | None) -> Iterator[RecordStore]:
    if store_url is None:
        yield MemoryRecordStore()
        return
    with open_stores(store_url) as stores:
        yield stores.records


def operation(reference_id: str = "ref-1", **changes: object) -> OperationRecord:
    values: dict[str, object] = {
        "reference_id": reference_id,
        "operation": "pan",
        "status": "SUCCESS",
        "created_at": T0,
        "updated_at": T0,
        "operation_id": f"TXN-{reference_id}",
        "user_id": "user-1",
        "sealed_request": "gAAAA-request",
        "sealed_result": "gAAAA-result",
    }
    values.update(changes)
    return OperationRecord(**values)  # type: ignore[arg-type]


def event(dedupe_key: str = "hook-1", **changes: object) -> WebhookEvent:
    values: dict[str, object] = {"dedupe_key": dedupe_key, "sealed_body": "gAAAA-body", "received_at": T0}
    values.update(changes)
    return WebhookEvent(**values)  # type: ignore[arg-type]


def test_a_saved_operation_comes_back_equal(store: RecordStore) -> None:
    store.save_operation(operation())
    assert store.get_operation("ref-1") == operation()
    assert store.get_operation("unknown") is None


def test_saving_the_same_reference_id_replaces_the_record(store: RecordStore) -> None:
    store.save_operation(operation(status="PENDING", sealed_result=None))
    later = operation(status="SUCCESS", updated_at=T0 + timedelta(minutes=1))
    store.save_operation(later)
    assert store.get_operation("ref-1") == later


@pytest.mark.parametrize("settled", sorted(SETTLED_STATUSES))
@pytest.mark.parametrize("later", ["PENDING", "RETRIED", "SUCCESS", "FAILURE"])
def test_a_settled_record_is_changed_only_by_a_write_with_its_own_status(
    store: RecordStore, settled: str, later: str
) -> None:
    store.save_operation(operation(status=settled))
    store.save_operation(operation(status=later, operation_id="TXN-later", sealed_result="gAAAA-later",
                                   user_id="user-2", updated_at=T0 + timedelta(minutes=1)))
    stored = store.get_operation("ref-1")
    assert stored is not None
    if later == settled:
        assert (stored.operation_id, stored.sealed_result, stored.user_id) == ("TXN-later", "gAAAA-later", "user-2")
    else:  # a stale copy: the settled record's fields survive it
        assert (stored.operation_id, stored.sealed_result, stored.user_id) == ("TXN-ref-1", "gAAAA-result", "user-1")
    assert (stored.status, stored.updated_at) == (settled, T0 + timedelta(minutes=1))


def test_a_late_creation_answer_fills_what_a_settling_callback_left_empty(store: RecordStore) -> None:
    """The callback settled the row before the creating call saved its answer (link, QR code,
    transaction id): the answer may not change the status, but its missing fields are kept."""
    store.save_operation(operation(status="PENDING", operation_id=None, sealed_result=None))
    store.save_operation(operation(status="SUCCESS", operation_id=None, sealed_result=None,
                                   updated_at=T0 + timedelta(seconds=1)))  # the callback
    store.save_operation(operation(status="PENDING", operation_id="TXN-9", sealed_result="gAAAA-answer",
                                   updated_at=T0 + timedelta(seconds=2)))  # the late answer
    stored = store.get_operation("ref-1")
    assert stored is not None
    assert (stored.status, stored.operation_id, stored.sealed_result) == ("SUCCESS", "TXN-9", "gAAAA-answer")


@pytest.mark.parametrize("status", ["PENDING", "SUCCESS"])
def test_a_stored_value_is_never_replaced_by_none(store: RecordStore, status: str) -> None:
    store.save_operation(operation(status=status))
    blank = dict.fromkeys(["operation_id", "user_id", "sealed_request", "sealed_result"])
    store.save_operation(operation(status=status, updated_at=T0 + timedelta(seconds=1), **blank))
    assert store.get_operation("ref-1") == operation(status=status, updated_at=T0 + timedelta(seconds=1))


def test_updated_at_never_goes_backwards_and_created_at_stays_the_first(store: RecordStore) -> None:
    store.save_operation(operation(status="PENDING", updated_at=T0 + timedelta(minutes=5)))
    older = operation(status="PENDING", created_at=T0 - timedelta(hours=1), updated_at=T0 + timedelta(minutes=1),
                      sealed_result="gAAAA-newer-result")
    store.save_operation(older)
    stored = store.get_operation("ref-1")
    assert stored is not None
    assert (stored.created_at, stored.updated_at) == (T0, T0 + timedelta(minutes=5))
    assert stored.sealed_result == "gAAAA-newer-result"  # a non-null value may replace a non-null one


def test_an_operation_is_found_by_decentro_operation_id(store: RecordStore) -> None:
    store.save_operation(operation("ref-1"))
    store.save_operation(operation("ref-2"))
    found = store.find_by_operation_id("TXN-ref-2")
    assert found is not None and found.reference_id == "ref-2"
    assert store.find_by_operation_id("TXN-none") is None


def test_timestamps_in_another_zone_come_back_as_the_same_instant(store: RecordStore) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    store.save_operation(operation(created_at=T0.astimezone(ist), updated_at=T0.astimezone(ist)))
    found = store.get_operation("ref-1")
    assert found is not None and found.created_at == T0 and found.updated_at == T0


def test_a_new_webhook_event_is_added_once_and_a_duplicate_changes_nothing(store: RecordStore) -> None:
    assert store.add_webhook_event(event()) is True
    assert store.add_webhook_event(event(sealed_body="gAAAA-other")) is False
    assert store.get_webhook_event("hook-1") == event()
    assert store.get_webhook_event("unknown") is None


def test_concurrent_adds_of_one_dedupe_key_let_exactly_one_win(store: RecordStore) -> None:
    barrier = threading.Barrier(8, timeout=10)
    results: list[bool] = []

    def add() -> None:
        barrier.wait()
        results.append(store.add_webhook_event(event()))

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(results) == [False] * 7 + [True]


def test_updating_a_webhook_event_changes_state_attempts_and_error(store: RecordStore) -> None:
    store.add_webhook_event(event())
    store.update_webhook_event("hook-1", state="failed", attempts=3, last_error="UPSTREAM_TIMEOUT")
    assert store.get_webhook_event("hook-1") == event(state="failed", attempts=3, last_error="UPSTREAM_TIMEOUT")


def test_webhook_events_are_listed_oldest_first_and_filtered_by_state(store: RecordStore) -> None:
    store.add_webhook_event(event("late", received_at=T0 + timedelta(seconds=2)))
    store.add_webhook_event(event("early", received_at=T0, reference_id="ref-9"))
    store.add_webhook_event(event("done", received_at=T0 + timedelta(seconds=1), state="processed"))
    assert [e.dedupe_key for e in store.webhook_events()] == ["early", "done", "late"]
    assert [e.dedupe_key for e in store.webhook_events(state="received")] == ["early", "late"]
    assert [e.dedupe_key for e in store.webhook_events(state="failed")] == []


def test_webhook_events_page_with_after_and_limit_across_equal_times(store: RecordStore) -> None:
    for n in range(7):  # several at the very same instant: the order is still total and stable
        store.add_webhook_event(event(f"hook-{n}", received_at=T0 + timedelta(seconds=n // 3),
                                      state="processed" if n == 4 else "received"))
    everything = [e.dedupe_key for e in store.webhook_events()]
    assert everything == [f"hook-{n}" for n in range(7)]
    pages: list[list[str]] = []
    after = None
    while True:
        page = [e.dedupe_key for e in store.webhook_events(after=after, limit=3)]
        if not page:
            break
        pages.append(page)
        after = page[-1]
    assert pages == [everything[0:3], everything[3:6], everything[6:]]
    assert [e.dedupe_key for e in store.webhook_events(state="received", after="hook-3", limit=5)] == [
        "hook-5", "hook-6"]
    with pytest.raises(KeyError):
        store.webhook_events(after="no-such-hook")


def test_the_sql_store_streams_webhook_events_a_page_at_a_time(tmp_path: Any, monkeypatch: Any) -> None:
    from decentro_adapters.sql import stores as sql_stores

    monkeypatch.setattr(sql_stores, "WEBHOOK_PAGE", 4)
    with open_stores(f"sqlite:///{tmp_path}/paging.sqlite3") as opened:
        for n in range(10):
            opened.records.add_webhook_event(event(f"hook-{n:02d}", received_at=T0 + timedelta(seconds=n)))
        sent: list[str] = []
        execute_sql = opened.database.execute_sql

        def recording(sql: str, params: Any = None) -> Any:
            sent.append(sql)
            return execute_sql(sql, params)

        opened.database.execute_sql = recording
        listed = opened.records.webhook_events()
        assert sent == []  # nothing read before the first event is asked for
        assert next(listed).dedupe_key == "hook-00" and len(sent) == 1
        assert [e.dedupe_key for e in listed][-1] == "hook-09"
        assert len(sent) == 3 and all("LIMIT" in sql for sql in sent)  # 4 + 4 + 2 rows


def test_purge_deletes_only_what_is_older_than_the_cutoff(store: RecordStore) -> None:
    cutoff = T0 + timedelta(days=1)
    store.save_operation(operation("old"))
    store.save_operation(operation("new", updated_at=cutoff))
    store.add_webhook_event(event("old"))
    store.add_webhook_event(event("new", received_at=cutoff + timedelta(seconds=1)))
    assert store.purge_before(cutoff) == 2
    assert store.get_operation("old") is None and store.get_operation("new") is not None
    assert store.get_webhook_event("old") is None and store.get_webhook_event("new") is not None
    assert store.purge_before(cutoff) == 0


def callback_audit(record: OperationRecord, outcome: str = "SUCCESS") -> AuditEvent:
    return AuditEvent(actor="decentro-callback", action="pan.callback", subject="pan", outcome=outcome,
                      occurred_at=T0, operation_id=record.operation_id, reference_id=record.reference_id)


def settle(record: OperationRecord) -> CallbackUpdate:
    later = T0 + timedelta(minutes=1)
    return CallbackUpdate(audit=callback_audit(record), record=replace(record, status="SUCCESS", updated_at=later))


class FailingAudit(MemoryAuditSink):
    def append(self, event: AuditEvent) -> None:
        raise StoreError("audit unavailable")


def test_applying_a_callback_saves_the_record_audits_and_marks_the_event_processed(store: RecordStore) -> None:
    store.save_operation(operation(status="PENDING"))
    store.add_webhook_event(event(attempts=1, state="failed", last_error="OperationNotFound"))
    audit = MemoryAuditSink()
    update = store.apply_callback("hook-1", reference_id="ref-1", operation_id=None, decide=settle, audit=audit)
    assert update is not None and update.record is not None
    assert store.get_operation("ref-1") == update.record
    assert store.get_webhook_event("hook-1") == event(attempts=2, state="processed", last_error=None)
    assert audit.events == [update.audit]


def test_a_callback_that_changes_nothing_still_audits_and_marks_the_event(store: RecordStore) -> None:
    store.save_operation(operation())
    store.add_webhook_event(event())
    audit = MemoryAuditSink()

    def keep(record: OperationRecord) -> CallbackUpdate:
        return CallbackUpdate(audit=callback_audit(record, "unchanged"))

    store.apply_callback("hook-1", reference_id="ref-1", operation_id=None, decide=keep, audit=audit)
    assert store.get_operation("ref-1") == operation()
    assert store.get_webhook_event("hook-1") == event(attempts=1, state="processed")
    assert [e.outcome for e in audit.events] == ["unchanged"]


def test_an_event_two_processors_apply_at_once_is_applied_and_audited_once(store: RecordStore) -> None:
    """A late retry and a replay of the same stale event: the second to get the operation's lock
    finds the event processed and writes nothing (threads, so the lock is really contended)."""
    store.save_operation(operation(status="PENDING"))
    store.add_webhook_event(event(state="received"))
    audit = MemoryAuditSink()
    barrier = threading.Barrier(4, timeout=30)

    def apply() -> str:
        barrier.wait()
        update = store.apply_callback("hook-1", reference_id="ref-1", operation_id=None, decide=settle, audit=audit)
        assert update is not None
        return update.audit.outcome

    with ThreadPoolExecutor(4) as pool:
        outcomes = sorted(pool.map(lambda _: apply(), range(4)))
    assert outcomes == ["SUCCESS", "duplicate", "duplicate", "duplicate"]
    assert [e.outcome for e in audit.events] == ["SUCCESS"]
    assert store.get_webhook_event("hook-1") == event(attempts=1, state="processed")


def test_a_callback_finds_its_operation_by_decentro_id_when_the_reference_is_unknown(store: RecordStore) -> None:
    store.save_operation(operation("ref-1", status="PENDING"))
    store.save_operation(operation("ref-2", status="PENDING"))
    store.add_webhook_event(event())
    update = store.apply_callback("hook-1", reference_id="ref-other", operation_id="TXN-ref-2",
                                  decide=settle, audit=MemoryAuditSink())
    assert update is not None and update.audit.reference_id == "ref-2"
    found = store.get_operation("ref-2")
    assert found is not None and found.status == "SUCCESS"
    unchanged = store.get_operation("ref-1")
    assert unchanged is not None and unchanged.status == "PENDING"


def test_a_callback_for_no_known_operation_changes_nothing(store: RecordStore) -> None:
    store.add_webhook_event(event())
    audit = MemoryAuditSink()
    assert store.apply_callback("hook-1", reference_id="ref-9", operation_id="TXN-9", decide=settle, audit=audit) is None
    assert store.get_webhook_event("hook-1") == event()
    assert audit.events == []


def test_a_failing_audit_leaves_the_record_and_the_event_untouched(store: RecordStore) -> None:
    store.save_operation(operation(status="PENDING"))
    store.add_webhook_event(event())
    with pytest.raises(StoreError):
        store.apply_callback("hook-1", reference_id="ref-1", operation_id=None, decide=settle, audit=FailingAudit())
    found = store.get_operation("ref-1")
    assert found is not None and found.status == "PENDING"
    assert store.get_webhook_event("hook-1") == event()


# -- Peewee specifics ----------------------------------------------------------------------


def test_updating_an_unknown_webhook_event_raises_store_error(database_url: str) -> None:
    with open_stores(database_url) as stores, pytest.raises(StoreError):
        stores.records.update_webhook_event("unknown", state="processed", attempts=1, last_error=None)


def test_opening_twice_is_idempotent_and_keeps_the_data(database_url: str) -> None:
    with open_stores(database_url) as stores:
        stores.records.save_operation(operation())
    with open_stores(database_url) as again:
        assert again.records.get_operation("ref-1") == operation()


def test_a_schema_newer_than_the_library_is_refused(database_url: str) -> None:
    with open_stores(database_url) as stores:
        stores.models.schema.update(version=99).execute()
    with pytest.raises(ConfigurationError) as caught:
        open_stores(database_url)
    assert "99" in str(caught.value)


def test_a_database_error_becomes_a_store_error_without_the_data(database_url: str) -> None:
    with open_stores(database_url) as stores:
        stores.database.execute_sql("DROP TABLE decentro_operation")
        with pytest.raises(StoreError) as caught:
            stores.records.save_operation(operation(sealed_request="SECRET-TOKEN"))
    assert "SECRET-TOKEN" not in str(caught.value) and "ref-1" not in str(caught.value)


def test_an_unsupported_scheme_is_refused_without_echoing_the_url() -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_stores("mysql://admin:hunter2@db/decentro")
    assert "hunter2" not in str(caught.value) and "DECENTRO_DATABASE_URL" in str(caught.value)


def test_an_empty_url_uses_a_sqlite_file_under_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_stores("") as stores:
        stores.records.save_operation(operation())
    assert (tmp_path / "instance" / "decentro.sqlite3").is_file()


class AppendsThenFails:
    """Appends to the database's own audit sink, then fails: the append must roll back too."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def append(self, event: AuditEvent) -> None:
        self.inner.append(event)
        raise StoreError("failed after the audit row was written")

    def verify(self) -> Any:
        return self.inner.verify()


def test_the_databases_own_audit_sink_joins_the_callback_transaction(database_url: str) -> None:
    with open_stores(database_url) as stores:
        stores.records.save_operation(operation(status="PENDING"))
        stores.records.add_webhook_event(event())
        with pytest.raises(StoreError):
            stores.records.apply_callback("hook-1", reference_id="ref-1", operation_id=None,
                                          decide=settle, audit=AppendsThenFails(stores.audit))
        assert stores.audit.events == []
        found = stores.records.get_operation("ref-1")
        assert found is not None and found.status == "PENDING"
        stores.records.apply_callback("hook-1", reference_id="ref-1", operation_id=None,
                                      decide=settle, audit=stores.audit)
        assert [e.outcome for e in stores.audit.events] == ["SUCCESS"]
        assert stores.audit.verify().ok


# -- a late creation answer against a callback (issue 10, item 3) --------------------------

CALLBACK_AT, ANSWER_AT = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)


def held(reference_id: str) -> OperationRecord:
    """The PENDING payment record the creating call wrote, and kept, before sending."""
    return operation(reference_id, operation="upi_payment", status="PENDING", operation_id=None, sealed_result=None)


def late_answer(kind: str, reference_id: str) -> OperationRecord:
    """The creating call's own write after its timeout, from the record it held."""
    if kind == "held":  # written back as it was held
        return replace(held(reference_id), updated_at=ANSWER_AT)
    return replace(held(reference_id), updated_at=ANSWER_AT, sealed_result="gAAAA-outcome-unknown")


def accepted(record: OperationRecord) -> CallbackUpdate:
    """A signed SUCCESS callback: it brings Decentro's transaction id and its own result."""
    updated = replace(record, status="SUCCESS", operation_id=f"TXN-{record.reference_id}",
                      sealed_result="gAAAA-callback", updated_at=CALLBACK_AT)
    return CallbackUpdate(audit=callback_audit(updated), record=updated)


def apply_accepted(store: RecordStore, reference_id: str) -> None:
    store.apply_callback(f"hook-{reference_id}", reference_id=reference_id, operation_id=None,
                         decide=accepted, audit=MemoryAuditSink())


def assert_the_callback_survived(store: RecordStore, reference_id: str) -> OperationRecord:
    stored = store.get_operation(reference_id)
    assert stored is not None
    assert (stored.status, stored.operation_id, stored.sealed_result) == (
        "SUCCESS", f"TXN-{reference_id}", "gAAAA-callback")
    return stored


@pytest.mark.parametrize("answer", ["held", "timeout"])
@pytest.mark.parametrize("callback_first", [True, False], ids=["callback-first", "answer-first"])
def test_a_late_creation_answer_cannot_erase_what_a_callback_stored(
    store: RecordStore, answer: str, callback_first: bool
) -> None:
    store.save_operation(held("ref-1"))
    store.add_webhook_event(event("hook-ref-1", reference_id="ref-1"))
    steps = [lambda: apply_accepted(store, "ref-1"), lambda: store.save_operation(late_answer(answer, "ref-1"))]
    for step in steps if callback_first else steps[::-1]:
        step()
    stored = assert_the_callback_survived(store, "ref-1")
    if callback_first:  # the late answer's save_operation must not move updated_at back either
        assert stored.updated_at == ANSWER_AT


@pytest.mark.parametrize("answer", ["held", "timeout"])
def test_callbacks_racing_late_answers_on_threads_all_survive(store: RecordStore, answer: str) -> None:
    references = [f"ref-{n}" for n in range(12)]
    for reference in references:
        store.save_operation(held(reference))
        store.add_webhook_event(event(f"hook-{reference}", reference_id=reference))
    barrier = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def run(action: Callable[[str], None]) -> None:
        try:
            for reference in references:
                barrier.wait()  # both writers of one reference start together
                action(reference)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=run, args=(lambda ref: apply_accepted(store, ref),)),
        threading.Thread(target=run, args=(lambda ref: store.save_operation(late_answer(answer, ref)),)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and not any(thread.is_alive() for thread in threads)
    for reference in references:
        assert_the_callback_survived(store, reference)


def tables_in_lock_order_check(statements: list[str]) -> list[str]:
    """The Decentro tables the statements touch, in the order they are first touched."""
    seen: list[str] = []
    for sql in statements:
        for _, table in sorted((sql.index(f'"{t}"'), t) for t in LOCK_ORDER if f'"{t}"' in sql):
            if table not in seen:
                seen.append(table)
    return seen


def test_multi_table_transactions_take_their_locks_in_the_documented_order(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_stores(database_url) as stores:
        stores.records.save_operation(operation(status="PENDING"))
        stores.records.add_webhook_event(event())
        statements: list[str] = []
        execute_sql = stores.database.execute_sql

        def recording(sql: str, params: Any = None) -> Any:
            statements.append(sql)
            return execute_sql(sql, params)

        monkeypatch.setattr(stores.database, "execute_sql", recording)
        stores.records.apply_callback("hook-1", reference_id="ref-1", operation_id=None,
                                      decide=settle, audit=stores.audit)
        callback, statements[:] = tables_in_lock_order_check(statements), []
        stores.records.purge_before(T0 + timedelta(days=1))
        purge = tables_in_lock_order_check(statements)
    assert callback == ["decentro_operation", "decentro_webhook_event", "decentro_audit_event"]
    assert purge == ["decentro_operation", "decentro_webhook_event", "decentro_outcome_event"]
