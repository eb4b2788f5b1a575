"""The AuditSink contract: MemoryAuditSink, SQLite (file) and PostgreSQL chain alike.

Also the keyed chain's promises on every backend: an edit re-chained with plain SHA-256 or
a wrong key is found, links made under a rotated-out key still verify, legacy SHA-256 links
pass only at the head, and cutting the newest rows is found against an anchor.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from decentro_adapters.sql.audit import PeeweeAuditSink
from decentro_adapters.sql.stores import Stores, open_stores
from decentro_core.errors import StoreError
from decentro_core.audit import UNKEYED_LINK, AuditKeyring, chain_hash, key_id_of, resign_event
from decentro_core.memory import MemoryAuditSink
from decentro_core.ports import AuditEvent, AuditHead

T0 = datetime(2024, 5, 1, 10, 30, 15, 123456, tzinfo=timezone.utc)
OLD_KEY = "test-audit-key-old-" + "o" * 24
NEW_KEY = "test-audit-key-new-" + "n" * 24
WRONG_KEY = "test-audit-key-wrong-" + "w" * 22
KEYS = AuditKeyring([NEW_KEY])


@dataclass
class Backend:
    """One audit store, seen through sinks with any keyring, with raw access to its rows."""

    stores: Stores | None
    memory_rows: list[tuple[AuditEvent, str]]

    def sink(self, keyring: AuditKeyring = KEYS) -> Any:
        if self.stores is None:
            sink = MemoryAuditSink(keyring)
            sink.rows = self.memory_rows  # the same list: every sink sees one log
            return sink
        return PeeweeAuditSink(self.stores.database, self.stores.models, keyring)

    def rows(self) -> list[tuple[int, AuditEvent, str]]:
        if self.stores is None:
            return [(n, event, link) for n, (event, link) in enumerate(self.memory_rows, start=1)]
        row = self.stores.models.audit
        return [(r.id, AuditEvent(r.actor, r.action, r.subject, r.outcome, datetime.fromisoformat(r.occurred_at),
                                  r.operation_id, r.reference_id), r.row_hash)
                for r in row.select().order_by(row.id)]

    def rewrite(self, row_id: int, event: AuditEvent, link: str) -> None:
        """What someone with write access to the table can do to one row."""
        if self.stores is None:
            self.memory_rows[row_id - 1] = (event, link)
            return
        row = self.stores.models.audit
        row.update(outcome=event.outcome, row_hash=link).where(row.id == row_id).execute()

    def delete_from(self, row_id: int) -> None:
        if self.stores is None:
            del self.memory_rows[row_id - 1:]
            return
        row = self.stores.models.audit
        row.delete().where(row.id >= row_id).execute()

    def insert_legacy(self, event: AuditEvent) -> None:
        """A row as releases before audit keys wrote it: a plain SHA-256 link."""
        previous = self.rows()[-1][2] if self.rows() else ""
        link = chain_hash(previous, event)
        if self.stores is None:
            self.memory_rows.append((event, link))
            return
        values = {**event.__dict__, "occurred_at": event.occurred_at.isoformat(), "row_hash": link}
        self.stores.models.audit.insert(**values).execute()


@pytest.fixture
def backend(store_url: str | None) -> Iterator[Backend]:
    if store_url is None:
        yield Backend(stores=None, memory_rows=[])
        return
    with open_stores(store_url) as stores:
        yield Backend(stores=stores, memory_rows=[])


@pytest.fixture
def sink(backend: Backend) -> Any:
    return backend.sink()


def audit_event(n: int = 0, **changes: object) -> AuditEvent:
    values: dict[str, object] = {
        "actor": "system",
        "action": "pan",
        "subject": "ABCDE****F",
        "outcome": "SUCCESS",
        "occurred_at": T0 + timedelta(seconds=n),
        "operation_id": f"TXN{n}",
        "reference_id": f"ref-{n}",
    }
    values.update(changes)
    return AuditEvent(**values)  # type: ignore[arg-type]


def test_an_empty_log_verifies(sink: Any) -> None:
    result = sink.verify()
    assert (result.ok, result.checked, result.first_broken) == (True, 0, None)


def test_appended_events_come_back_in_order_and_verify(sink: Any) -> None:
    events = [audit_event(0), audit_event(1, operation_id=None, reference_id=None), audit_event(2)]
    for e in events:
        sink.append(e)
    assert sink.events == events
    result = sink.verify()
    assert (result.ok, result.checked) == (True, 3)


def test_timestamps_keep_their_zone_so_the_chain_still_verifies(sink: Any) -> None:
    ist = timezone(timedelta(hours=5, minutes=30))
    sink.append(audit_event(0, occurred_at=T0.astimezone(ist)))
    sink.append(audit_event(1, occurred_at=datetime(2024, 5, 1, 10, 0, 0)))
    assert sink.verify().ok
    assert sink.events[0].occurred_at.utcoffset() == timedelta(hours=5, minutes=30)


def test_concurrent_appends_from_threads_keep_one_chain(sink: Any) -> None:
    barrier = threading.Barrier(6, timeout=10)

    def append(n: int) -> None:
        barrier.wait()
        for i in range(5):
            sink.append(audit_event(n * 10 + i))

    threads = [threading.Thread(target=append, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    result = sink.verify()
    assert (result.ok, result.checked) == (True, 30)


# -- The database sinks hash exactly like the memory sink -----------------------------------


def test_the_stored_hashes_equal_the_memory_sinks_hashes(database_url: str) -> None:
    memory = MemoryAuditSink(KEYS)
    with open_stores(database_url) as stores:
        sql = PeeweeAuditSink(stores.database, stores.models, KEYS)
        for n in range(4):
            memory.append(audit_event(n))
            sql.append(audit_event(n))
        row = stores.models.audit
        stored = [r.row_hash for r in row.select(row.row_hash).order_by(row.id)]
    assert stored == [h for _, h in memory.rows]


def _append_from_another_process(database_url: str, worker: int, start: Any) -> None:
    start.wait(timeout=30)
    with open_stores(database_url) as stores:
        sink = PeeweeAuditSink(stores.database, stores.models, AuditKeyring([NEW_KEY]))
        for i in range(10):
            sink.append(audit_event(worker * 100 + i, actor=f"worker-{worker}"))


def test_appends_from_several_processes_do_not_fork_the_chain(database_url: str) -> None:
    open_stores(database_url).close()  # create the schema once, before the race
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_append_from_another_process, args=(database_url, n, start)) for n in range(3)]
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    with open_stores(database_url) as stores:
        result = PeeweeAuditSink(stores.database, stores.models, KEYS).verify()
    assert (result.ok, result.checked) == (True, 30)


# -- Someone with write access to the table, but not the key ---------------------------------


def _payments(backend: Backend, count: int = 6) -> None:
    sink = backend.sink()
    for n in range(count):
        sink.append(audit_event(n, action="upi_collect", outcome="PAYMENT_FAILED" if n == 2 else "SUCCESS"))
    assert sink.verify().ok


def _forge(backend: Backend, link: Callable[[str, AuditEvent], str]) -> int:
    """Turn the third row's PAYMENT_FAILED into SUCCESS and re-chain every row after it."""
    rows = backend.rows()
    edited_id = rows[2][0]
    previous = rows[1][2]
    for row_id, event, _ in rows[2:]:
        if row_id == edited_id:
            assert event.outcome == "PAYMENT_FAILED"
            event = replace(event, outcome="SUCCESS")
        forged = link(previous, event)
        backend.rewrite(row_id, event, forged)
        previous = forged
    return edited_id


def test_an_edit_rechained_with_plain_sha256_is_found(backend: Backend) -> None:
    _payments(backend)
    edited = _forge(backend, chain_hash)
    result = backend.sink().verify()
    assert (result.ok, result.first_broken, result.reason) == (False, edited, "a plain SHA-256 link after a keyed link")


def test_an_edit_rechained_with_another_key_is_found(backend: Backend) -> None:
    _payments(backend)
    edited = _forge(backend, AuditKeyring([WRONG_KEY]).link)
    result = backend.sink().verify()
    assert (result.ok, result.first_broken) == (False, edited)
    assert result.reason == "made under a key not in DECENTRO_AUDIT_KEYS"


def test_an_edit_rechained_with_another_key_under_the_right_key_id_is_found(backend: Backend) -> None:
    _payments(backend)
    wrong = AuditKeyring([WRONG_KEY])

    def link(previous: str, event: AuditEvent) -> str:
        return KEYS.signing_key_id + ":" + wrong.link(previous, event).split(":", 1)[1]

    edited = _forge(backend, link)
    result = backend.sink().verify()
    assert (result.ok, result.first_broken, result.reason) == (False, edited, "hash mismatch")


def test_the_same_edit_rechained_with_the_key_verifies(backend: Backend) -> None:
    """The forgeries above fail for want of the key, not for some other difference."""
    _payments(backend)
    _forge(backend, KEYS.link)
    assert backend.sink().verify().ok


# -- Anchors: cutting the newest rows ----------------------------------------------------------


def test_the_head_names_the_newest_link_and_its_position(backend: Backend) -> None:
    sink = backend.sink()
    assert sink.head() == AuditHead(count=0, last_id=0, link="", key_id="")
    _payments(backend, 3)
    last_id, _, link = backend.rows()[-1]
    assert sink.head() == AuditHead(count=3, last_id=last_id, link=link, key_id=KEYS.signing_key_id)
    assert AuditHead.from_json(sink.head().to_json()) == sink.head()


def test_deleting_the_newest_rows_is_found_only_against_an_anchor(backend: Backend) -> None:
    _payments(backend, 6)
    anchor = backend.sink().head()
    rows = backend.rows()
    backend.delete_from(rows[4][0])
    sink = backend.sink()
    assert sink.verify().ok  # a shorter chain is still a valid chain: hence anchors
    result = sink.verify(anchor)
    assert (result.ok, result.first_broken) == (False, anchor.last_id)
    assert result.reason == "the chain ends before the anchor (newest rows deleted)"


def test_an_anchor_still_holds_after_more_appends(backend: Backend) -> None:
    _payments(backend, 4)
    sink = backend.sink()
    anchor = sink.head()
    sink.append(audit_event(10))
    result = sink.verify(anchor)
    assert (result.ok, result.checked) == (True, 5)


def test_an_anchor_whose_row_was_replaced_is_found(backend: Backend) -> None:
    """Cut the newest rows and append new ones: the position is filled, not by the anchored link."""
    _payments(backend, 4)
    anchor = backend.sink().head()
    backend.delete_from(backend.rows()[2][0])
    sink = backend.sink()
    for n in range(3):
        sink.append(audit_event(20 + n))
    result = sink.verify(anchor)
    assert not result.ok
    assert result.reason in {"does not match the anchor", "the anchored row is missing"}


def test_a_chain_rewritten_as_plain_sha256_fails_with_keys_set_even_without_an_anchor(backend: Backend) -> None:
    """Without the key, the one unkeyed rewrite left is the legacy form: with DECENTRO_AUDIT_KEYS
    set it no longer reads "intact" (it did: "493 legacy SHA-256 links", exit 0)."""
    _payments(backend, 4)
    anchor = backend.sink().head()
    previous = ""
    for row_id, event, _ in backend.rows():
        previous = chain_hash(previous, event)
        backend.rewrite(row_id, event, previous)
    result = backend.sink().verify()
    assert (result.ok, result.first_broken, result.reason) == (False, 1, UNKEYED_LINK)
    assert not backend.sink().verify(anchor).ok


# -- Key rotation and legacy links -----------------------------------------------------------


def test_links_made_under_an_older_key_verify_after_a_new_key_is_put_first(backend: Backend) -> None:
    before = backend.sink(AuditKeyring([OLD_KEY]))
    before.append(audit_event(0))
    before.append(audit_event(1))
    after = backend.sink(AuditKeyring([NEW_KEY, OLD_KEY]))
    after.append(audit_event(2))
    key_ids = [link.split(":")[0] for _, _, link in backend.rows()]
    assert key_ids == [AuditKeyring([OLD_KEY]).signing_key_id] * 2 + [KEYS.signing_key_id]
    assert after.verify().ok
    dropped = backend.sink(AuditKeyring([NEW_KEY])).verify()  # the old key is no longer listed
    assert (dropped.ok, dropped.reason) == (False, "made under a key not in DECENTRO_AUDIT_KEYS")


def _legacy_then_keyed(backend: Backend, legacy: int = 3, keyed: int = 2) -> None:
    """A database upgraded from a release before audit keys: plain SHA-256 rows, then keyed ones."""
    for n in range(legacy):
        backend.insert_legacy(audit_event(n))
    for n in range(legacy, legacy + keyed):
        backend.sink().append(audit_event(n))


def _note(resigned: int) -> AuditEvent:
    return resign_event("audit_migrate_legacy", key_id=KEYS.signing_key_id, resigned=resigned, at=T0)


def test_legacy_links_fail_verification_until_migrated_and_then_verify(backend: Backend) -> None:
    _legacy_then_keyed(backend)
    sink = backend.sink()
    assert (sink.verify().ok, sink.verify().first_broken, sink.verify().reason) == (False, 1, UNKEYED_LINK)
    report = sink.resign(accept_legacy=True, note=_note)
    assert (report.ok, report.verification.legacy, report.resigned) == (True, 3, 5)
    assert [key_id_of(link) for _, _, link in backend.rows()] == [KEYS.signing_key_id] * 6
    assert backend.rows()[-1][1].action == "audit_migrate_legacy"  # the run audits itself
    assert backend.rows()[-1][1].reference_id == "resigned:5"
    result = backend.sink().verify()
    assert (result.ok, result.checked, result.legacy) == (True, 6, 0)


def test_the_legacy_migration_is_idempotent(backend: Backend) -> None:
    _legacy_then_keyed(backend)
    assert backend.sink().resign(accept_legacy=True, note=_note).resigned == 5
    rows = backend.rows()
    again = backend.sink().resign(accept_legacy=True, note=_note)
    assert (again.ok, again.resigned) == (True, 0)
    assert backend.rows() == rows  # nothing rewritten, no second note


def test_the_legacy_migration_refuses_an_edited_legacy_row_and_changes_nothing(backend: Backend) -> None:
    _legacy_then_keyed(backend)
    row_id, event, link = backend.rows()[1]
    backend.rewrite(row_id, replace(event, outcome="FAILURE"), link)
    rows = backend.rows()
    report = backend.sink().resign(accept_legacy=True, note=_note)
    assert (report.ok, report.verification.first_broken, report.verification.reason) == (False, row_id, "hash mismatch")
    assert (report.resigned, backend.rows()) == (0, rows)


def test_a_legacy_link_after_a_keyed_link_breaks_the_chain_and_its_migration(backend: Backend) -> None:
    backend.insert_legacy(audit_event(0))
    backend.sink().append(audit_event(1))
    backend.insert_legacy(audit_event(2))  # an un-upgraded worker, or someone without the key
    assert (backend.sink().verify().first_broken, backend.sink().verify().reason) == (1, UNKEYED_LINK)
    result = backend.sink().resign(accept_legacy=True).verification
    assert (result.ok, result.first_broken) == (False, backend.rows()[-1][0])
    assert result.reason == "a plain SHA-256 link after a keyed link"


def test_rotation_resigns_under_the_new_key_so_the_old_key_can_be_removed(backend: Backend) -> None:
    old_only = backend.sink(AuditKeyring([OLD_KEY]))
    for n in range(4):
        old_only.append(audit_event(n))
    anchor = old_only.head()
    both = backend.sink(AuditKeyring([NEW_KEY, OLD_KEY]))
    both.append(audit_event(4))
    assert not backend.sink(KEYS).verify().ok  # before: removing the old key breaks event 1
    report = both.resign(anchor=anchor, note=_note)
    # all five change: the fifth was made under the new key, but over the fourth's old link
    assert (report.ok, report.resigned, report.key_id) == (True, 5, KEYS.signing_key_id)
    result = backend.sink(KEYS).verify()  # the old key is gone from DECENTRO_AUDIT_KEYS
    assert (result.ok, result.checked) == (True, 6)
    assert backend.sink(AuditKeyring([OLD_KEY])).verify().first_broken == 1  # nothing left under it


def test_rotation_refuses_a_chain_that_does_not_verify_and_changes_nothing(backend: Backend) -> None:
    _payments(backend, 5)
    _forge(backend, AuditKeyring([WRONG_KEY]).link)
    rows = backend.rows()
    report = backend.sink(AuditKeyring([OLD_KEY, NEW_KEY])).resign(note=_note)
    assert (report.ok, report.verification.first_broken, report.resigned) == (False, rows[2][0], 0)
    assert backend.rows() == rows


def test_rotation_refuses_legacy_links_and_a_cut_chain(backend: Backend) -> None:
    _legacy_then_keyed(backend, legacy=2, keyed=3)
    assert backend.sink().resign().verification.reason == UNKEYED_LINK
    backend.sink().resign(accept_legacy=True)
    anchor = backend.sink().head()
    backend.delete_from(backend.rows()[-2][0])
    rows = backend.rows()
    report = backend.sink(AuditKeyring([OLD_KEY, NEW_KEY])).resign(anchor=anchor)
    assert report.verification.reason == "the chain ends before the anchor (newest rows deleted)"
    assert backend.rows() == rows


def test_rotation_while_others_append_keeps_one_chain(backend: Backend) -> None:
    """Appenders keep writing while the chain is re-signed, twice: none links to a replaced link."""
    old_only = backend.sink(AuditKeyring([OLD_KEY]))
    for n in range(40):
        old_only.append(audit_event(n))
    rotating = backend.sink(AuditKeyring([NEW_KEY, OLD_KEY]))
    done = threading.Event()
    failures: list[BaseException] = []

    def append(worker: int) -> None:
        sink = backend.sink(AuditKeyring([NEW_KEY, OLD_KEY]))
        for i in range(15):
            try:
                sink.append(audit_event(1000 * worker + i))
            except BaseException as exc:  # surfaced below
                failures.append(exc)
            if done.is_set() and i >= 5:
                return

    threads = [threading.Thread(target=append, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    reports = [rotating.resign(note=_note) for _ in range(2)]
    done.set()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == [] and all(r.ok for r in reports)
    assert reports[0].resigned >= 40
    result = backend.sink(KEYS).verify()
    assert (result.ok, result.checked) == (True, len(backend.rows()))


# -- PostgreSQL: appenders queue on an advisory lock, not on a table lock --------------------


def _append_from_threads(database_url: str, worker: int, start: Any) -> None:
    """One process, four threads, each appending as a worker of gunicorn's gthread would."""
    start.wait(timeout=30)
    with open_stores(database_url) as stores:
        sink = PeeweeAuditSink(stores.database, stores.models, AuditKeyring([NEW_KEY]))

        def run(thread: int) -> None:
            for i in range(8):
                sink.append(audit_event(worker * 1000 + thread * 100 + i, actor=f"w{worker}-t{thread}"))

        threads = [threading.Thread(target=run, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)


def _append_like_the_old_release(database_url: str, start: Any) -> None:
    """An appender as releases up to 0.1.0 wrote it (``LOCK TABLE ... IN EXCLUSIVE MODE``): the two
    kinds meet during a rolling deploy and must still make one chain."""
    start.wait(timeout=30)
    keys = AuditKeyring([NEW_KEY])
    with open_stores(database_url) as stores:
        db = stores.database
        for i in range(8):
            event = audit_event(9000 + i, actor="old-release")
            with db.atomic():
                cursor = db.execute_sql('LOCK TABLE "decentro_audit_event" IN EXCLUSIVE MODE; '
                                        'SELECT "row_hash" FROM "decentro_audit_event" ORDER BY "id" DESC LIMIT 1')
                found = cursor.fetchone()
                values = {**event.__dict__, "occurred_at": event.occurred_at.isoformat(),
                          "row_hash": keys.link(found[0] if found else "", event)}
                stores.models.audit.insert(**values).execute()


@pytest.mark.postgres
def test_postgres_appends_from_processes_and_threads_make_one_chain(postgres_url: str) -> None:
    open_stores(postgres_url).close()
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    workers = [ctx.Process(target=_append_from_threads, args=(postgres_url, n, start)) for n in range(3)]
    workers.append(ctx.Process(target=_append_like_the_old_release, args=(postgres_url, start)))
    for w in workers:
        w.start()
    start.set()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    with open_stores(postgres_url) as stores:
        sink = PeeweeAuditSink(stores.database, stores.models, KEYS)
        result = sink.verify()
        head = sink.head()
    assert (result.ok, result.checked) == (True, 3 * 4 * 8 + 8)
    assert head.count == 3 * 4 * 8 + 8


@pytest.mark.postgres
def test_postgres_append_is_two_round_trips_and_locks_no_table_exclusively(postgres_url: str) -> None:
    with open_stores(postgres_url) as stores:
        db = stores.database
        sink = PeeweeAuditSink(db, stores.models, KEYS)
        sent: list[str] = []
        execute_sql = db.execute_sql

        def recording(sql: str, params: Any = None) -> Any:
            sent.append(sql)
            return execute_sql(sql, params)

        db.execute_sql = recording  # type: ignore[method-assign]
        sink.append(audit_event(1))
        sink.append(audit_event(2))
        del db.execute_sql
        assert len(sent) == 4  # two appends, two round trips each
        assert sent[0].startswith("BEGIN;") and "pg_advisory_xact_lock" in sent[0]
        assert sent[1].startswith("INSERT") and sent[1].endswith("; COMMIT")
        assert not [sql for sql in sent if "EXCLUSIVE MODE" in sql and "ROW EXCLUSIVE MODE" not in sql]
        assert sink.verify().ok and sink.head().count == 2


@pytest.mark.postgres
def test_postgres_a_failed_append_rolls_back_and_frees_the_lock(postgres_url: str) -> None:
    with open_stores(postgres_url) as stores:
        sink = PeeweeAuditSink(stores.database, stores.models, KEYS)
        sink.append(audit_event(1))
        too_long = audit_event(2, operation_id="x" * 300)  # the column holds 255
        with pytest.raises(StoreError):
            sink.append(too_long)
        sink.append(audit_event(3))  # the lock was released: this does not wait forever
        assert [e.operation_id for e in sink.events] == ["TXN1", "TXN3"]
        assert sink.verify().ok
