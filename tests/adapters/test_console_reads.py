"""The operator console's reads: keyset pages newest first, audit trails by reference, consents
listed without opening what is sealed. Memory, SQLite (file) and PostgreSQL behave alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from decentro_adapters.sql.stores import open_stores
from decentro_adapters.vault.fernet import FernetVault
from decentro_core.memory import MemoryAuditSink, MemoryConsentStore, MemoryRecordStore
from decentro_core.ports import AuditEvent, ConsentRecord, OperationRecord, WebhookEvent

T0 = datetime(2024, 5, 1, 10, 30, 15, tzinfo=timezone.utc)
IP, AGENT = "203.0.113.7", "Mozilla/5.0 DecentroTest/1.0"


@dataclass
class Stores:
    records: Any
    consents: Any
    audit: Any


@pytest.fixture
def stores(store_url: str | None) -> Iterator[Stores]:
    if store_url is None:
        audit = MemoryAuditSink()
        yield Stores(MemoryRecordStore(audit=audit), MemoryConsentStore(), audit)
        return
    with open_stores(store_url, vault=FernetVault([FernetVault.generate_key()])) as opened:
        yield Stores(opened.records, opened.consents, opened.audit)


def operation(n: int, kind: str = "upi_payment") -> OperationRecord:
    at = T0 + timedelta(minutes=n)
    return OperationRecord(f"ref-{n}", kind, "PENDING", at, at, f"TXN-{n}", "user-1", "gAAAA-req", None)


def test_operations_come_newest_first_in_keyset_pages_and_filter_by_operation(stores: Stores) -> None:
    for n in range(5):
        stores.records.save_operation(operation(n, "upi_payment" if n % 2 == 0 else "pan"))
    stores.records.save_operation(operation(2))  # an update keeps the row (and its id)
    first = stores.records.operations_page(limit=2)
    assert [r.reference_id for _, r in first] == ["ref-4", "ref-3"]
    rest = stores.records.operations_page(before=first[-1][0], limit=10)
    assert [r.reference_id for _, r in rest] == ["ref-2", "ref-1", "ref-0"]
    payments = stores.records.operations_page(operation="upi_payment")
    assert [r.reference_id for _, r in payments] == ["ref-4", "ref-2", "ref-0"]
    assert payments[0][1] == operation(4)  # sealed fields come back as stored, unopened
    assert stores.records.operations_page(before=payments[-1][0]) == []


def test_webhook_events_page_by_state(stores: Stores) -> None:
    for n, state in enumerate(["processed", "failed", "received", "failed"]):
        stores.records.add_webhook_event(WebhookEvent(f"hook-{n}", "gAAAA-body", T0 + timedelta(seconds=n),
                                                      state, n, f"ref-{n}", "OperationNotFound" if state == "failed" else None))
    every = stores.records.webhook_events_page()
    assert [e.dedupe_key for _, e in every] == ["hook-3", "hook-2", "hook-1", "hook-0"]
    failed = stores.records.webhook_events_page(state="failed", limit=1)
    assert [(e.dedupe_key, e.attempts, e.last_error) for _, e in failed] == [("hook-3", 3, "OperationNotFound")]
    older = stores.records.webhook_events_page(state="failed", before=failed[0][0])
    assert [e.dedupe_key for _, e in older] == ["hook-1"]


def test_the_audit_trail_of_one_reference_oldest_first(stores: Stores) -> None:
    for n, (ref, outcome) in enumerate([("ref-a", "PENDING"), ("ref-b", "SUCCESS"), ("ref-a", "SUCCESS")]):
        stores.audit.append(AuditEvent("api", "upi_payment", "Demo****", outcome, T0 + timedelta(seconds=n),
                                       f"TXN-{ref}", ref))
    trail = stores.records.audit_trail("ref-a")
    assert [(e.outcome, e.occurred_at) for e in trail] == [("PENDING", T0), ("SUCCESS", T0 + timedelta(seconds=2))]
    assert stores.records.audit_trail("ref-a", limit=1)[0].outcome == "PENDING"
    assert stores.records.audit_trail("unknown") == []


def test_consents_are_listed_across_users_without_their_ip_or_user_agent(stores: Stores) -> None:
    for n in range(3):
        stores.consents.record(ConsentRecord(f"user-{n}", "pan", "I agree to a PAN check.", "onboarding",
                                             T0 + timedelta(seconds=n), IP if n != 1 else None, AGENT))
    page = stores.consents.consents_page(limit=2)
    assert [(c.user_id, c.has_client_ip, c.has_user_agent) for c in page] == [("user-2", True, True),
                                                                             ("user-1", False, True)]
    assert page[0].given_at == T0 + timedelta(seconds=2) and page[0].purpose == "onboarding"
    assert IP not in repr(page) and AGENT not in repr(page)
    assert [c.user_id for c in stores.consents.consents_page(before=page[-1].id)] == ["user-0"]
