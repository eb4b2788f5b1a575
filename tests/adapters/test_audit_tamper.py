"""Tampering with the stored audit log is found, and verify() names the first broken row."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from decentro_adapters.sql.stores import Stores, open_stores
from decentro_core.audit import chain_hash
from decentro_core.memory import MemoryAuditSink
from decentro_core.ports import AuditEvent

T0 = datetime(2024, 5, 1, 10, 30, tzinfo=timezone.utc)


def audit_event(n: int) -> AuditEvent:
    return AuditEvent("system", "pan", "ABCDE****F", "SUCCESS", T0 + timedelta(seconds=n), f"TXN{n}", f"ref-{n}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    url = f"sqlite:///{tmp_path}/audit.sqlite3"
    if request.param == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
    with open_stores(url) as opened:
        for n in range(1, 6):
            opened.audit.append(audit_event(n))
        assert opened.audit.verify().ok
        yield opened


def test_an_edited_field_breaks_the_chain_at_that_row(stores: Stores) -> None:
    stores.database.execute_sql("UPDATE decentro_audit_event SET outcome = 'FAILURE' WHERE id = 3")
    result = stores.audit.verify()
    assert (result.ok, result.first_broken, result.checked, result.reason) == (False, 3, 3, "hash mismatch")


def test_an_edit_with_a_recomputed_hash_breaks_the_chain_at_the_next_row(stores: Stores) -> None:
    row = stores.models.audit
    previous = row.get_by_id(2).row_hash
    forged = replace(audit_event(3), outcome="FAILURE")
    row.update(outcome="FAILURE", row_hash=chain_hash(previous, forged)).where(row.id == 3).execute()
    assert stores.audit.verify().first_broken == 4


def test_an_edited_timestamp_breaks_the_chain_at_that_row(stores: Stores) -> None:
    stores.database.execute_sql("UPDATE decentro_audit_event SET occurred_at = 'yesterday' WHERE id = 2")
    result = stores.audit.verify()
    assert (result.ok, result.first_broken, result.reason) == (False, 2, "unreadable row")


def test_a_deleted_row_breaks_the_chain_at_the_row_after_it(stores: Stores) -> None:
    stores.database.execute_sql("DELETE FROM decentro_audit_event WHERE id = 3")
    result = stores.audit.verify()
    assert (result.ok, result.first_broken) == (False, 4)


def test_swapped_rows_break_the_chain_at_the_first_of_them(stores: Stores) -> None:
    row = stores.models.audit
    two, three = row.get_by_id(2), row.get_by_id(3)
    fields = ("actor", "action", "subject", "outcome", "occurred_at", "operation_id", "reference_id", "row_hash")
    row.update({getattr(row, f): getattr(three, f) for f in fields}).where(row.id == 2).execute()
    row.update({getattr(row, f): getattr(two, f) for f in fields}).where(row.id == 3).execute()
    result = stores.audit.verify()
    assert (result.ok, result.first_broken) == (False, 2)


def test_the_memory_sink_reports_an_edit_the_same_way() -> None:
    sink = MemoryAuditSink()
    for n in range(1, 6):
        sink.append(audit_event(n))
    event, digest = sink.rows[2]
    sink.rows[2] = (replace(event, outcome="FAILURE"), digest)
    result = sink.verify()
    assert (result.ok, result.first_broken, result.checked) == (False, 3, 3)
