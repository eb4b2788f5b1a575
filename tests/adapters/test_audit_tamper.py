"""Tampering with the stored audit log is found, and verify() names the first broken row.

SQL by hand, as someone with write access to the table would do it (the contract tests in
``test_audit_contract.py`` do the same through each backend).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from decentro_adapters.sql.audit import PeeweeAuditSink
from decentro_adapters.sql.stores import Stores, open_stores
from decentro_core.audit import AuditKeyring, chain_hash
from decentro_core.memory import MemoryAuditSink
from decentro_core.ports import AuditEvent, AuditVerification

T0 = datetime(2024, 5, 1, 10, 30, tzinfo=timezone.utc)
KEYS = AuditKeyring(["test-audit-key-" + "k" * 32])


def audit_event(n: int) -> AuditEvent:
    return AuditEvent("system", "pan", "ABCDE****F", "SUCCESS", T0 + timedelta(seconds=n), f"TXN{n}", f"ref-{n}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stores]:
    url = f"sqlite:///{tmp_path}/audit.sqlite3"
    if request.param == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
    with open_stores(url) as opened:
        sink = PeeweeAuditSink(opened.database, opened.models, KEYS)
        for n in range(1, 6):
            sink.append(audit_event(n))
        assert sink.verify().ok
        yield opened


def verify(stores: Stores, keyring: AuditKeyring = KEYS) -> AuditVerification:
    return PeeweeAuditSink(stores.database, stores.models, keyring).verify()


def test_an_edited_field_breaks_the_chain_at_that_row(stores: Stores) -> None:
    stores.database.execute_sql("UPDATE decentro_audit_event SET outcome = 'FAILURE' WHERE id = 3")
    result = verify(stores)
    assert (result.ok, result.first_broken, result.checked, result.reason) == (False, 3, 3, "hash mismatch")


def test_an_edit_with_every_later_link_recomputed_in_plain_sha256_breaks_at_that_row(stores: Stores) -> None:
    """The attack the keyed chain exists for: a plain hash anyone can recompute is not enough."""
    row = stores.models.audit
    previous = row.get_by_id(2).row_hash
    for n in range(3, 6):
        event = replace(audit_event(n), outcome="FAILURE") if n == 3 else audit_event(n)
        previous = chain_hash(previous, event)
        row.update(outcome=event.outcome, row_hash=previous).where(row.id == n).execute()
    result = verify(stores)
    assert (result.ok, result.first_broken, result.reason) == (False, 3, "a plain SHA-256 link after a keyed link")


def test_an_edit_with_a_link_under_a_guessed_key_breaks_at_that_row(stores: Stores) -> None:
    row = stores.models.audit
    previous = row.get_by_id(2).row_hash
    guessed = AuditKeyring(["test-audit-key-guessed-" + "g" * 24])
    row.update(outcome="FAILURE",
               row_hash=guessed.link(previous, replace(audit_event(3), outcome="FAILURE"))).where(row.id == 3).execute()
    assert (verify(stores).first_broken, verify(stores).reason) == (3, "made under a key not in DECENTRO_AUDIT_KEYS")


def test_the_chain_verifies_only_with_the_key_that_made_it(stores: Stores) -> None:
    other = verify(stores, AuditKeyring(["test-audit-key-other-" + "x" * 24]))
    assert (other.ok, other.first_broken) == (False, 1)


def test_an_edited_timestamp_breaks_the_chain_at_that_row(stores: Stores) -> None:
    stores.database.execute_sql("UPDATE decentro_audit_event SET occurred_at = 'yesterday' WHERE id = 2")
    result = verify(stores)
    assert (result.ok, result.first_broken, result.reason) == (False, 2, "unreadable row")


def test_a_deleted_row_breaks_the_chain_at_the_row_after_it(stores: Stores) -> None:
    stores.database.execute_sql("DELETE FROM decentro_audit_event WHERE id = 3")
    result = verify(stores)
    assert (result.ok, result.first_broken) == (False, 4)


def test_swapped_rows_break_the_chain_at_the_first_of_them(stores: Stores) -> None:
    row = stores.models.audit
    two, three = row.get_by_id(2), row.get_by_id(3)
    fields = ("actor", "action", "subject", "outcome", "occurred_at", "operation_id", "reference_id", "row_hash")
    row.update({getattr(row, f): getattr(three, f) for f in fields}).where(row.id == 2).execute()
    row.update({getattr(row, f): getattr(two, f) for f in fields}).where(row.id == 3).execute()
    result = verify(stores)
    assert (result.ok, result.first_broken) == (False, 2)


def test_the_memory_sink_reports_an_edit_the_same_way() -> None:
    sink = MemoryAuditSink(KEYS)
    for n in range(1, 6):
        sink.append(audit_event(n))
    event, digest = sink.rows[2]
    sink.rows[2] = (replace(event, outcome="FAILURE"), digest)
    result = sink.verify()
    assert (result.ok, result.first_broken, result.checked) == (False, 3, 3)


def test_verification_reads_in_batches_and_keeps_its_place_across_them(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of two over five rows: every row is checked once, and a break in the last batch is found."""
    monkeypatch.setattr("decentro_adapters.sql.audit._VERIFY_BATCH", 2)
    sink = PeeweeAuditSink(stores.database, stores.models, KEYS)
    anchor = sink.head()
    assert (sink.verify(anchor).ok, sink.verify(anchor).checked) == (True, 5)
    stores.database.execute_sql("UPDATE decentro_audit_event SET outcome = 'FAILURE' WHERE id = 5")
    result = sink.verify()
    assert (result.ok, result.first_broken, result.checked) == (False, 5, 5)
    stores.database.execute_sql("DELETE FROM decentro_audit_event WHERE id = 5")
    assert sink.verify().ok
    assert sink.verify(anchor).reason == "the chain ends before the anchor (newest rows deleted)"
