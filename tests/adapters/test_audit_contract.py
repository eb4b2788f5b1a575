"""The AuditSink contract: MemoryAuditSink, SQLite (file) and PostgreSQL chain alike."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from decentro_adapters.sql.stores import open_stores
from decentro_core.memory import MemoryAuditSink
from decentro_core.ports import AuditEvent

T0 = datetime(2024, 5, 1, 10, 30, 15, 123456, tzinfo=timezone.utc)



@pytest.fixture
def sink(store_url: str | None) -> Iterator[Any]:
    if store_url is None:
        yield MemoryAuditSink()
        return
    with open_stores(store_url) as stores:
        yield stores.audit


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
    memory = MemoryAuditSink()
    with open_stores(database_url) as stores:
        for n in range(4):
            memory.append(audit_event(n))
            stores.audit.append(audit_event(n))
        row = stores.models.audit
        stored = [r.row_hash for r in row.select(row.row_hash).order_by(row.id)]
    assert stored == [h for _, h in memory.rows]


def _append_from_another_process(database_url: str, worker: int, start: Any) -> None:
    start.wait(timeout=30)
    with open_stores(database_url) as stores:
        for i in range(10):
            stores.audit.append(audit_event(worker * 100 + i, actor=f"worker-{worker}"))


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
        result = stores.audit.verify()
    assert (result.ok, result.checked) == (True, 30)
