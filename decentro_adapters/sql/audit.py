"""The append-only, hash-chained audit log in SQL (:class:`~decentro_core.ports.AuditSink`).

Each row stores sha256(previous row's hash + this row's fields), computed exactly as
:class:`decentro_core.memory.MemoryAuditSink` does, so both sinks give the same chain for the
same events. Appends take a write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``LOCK TABLE
... IN EXCLUSIVE MODE``) so that writers in several processes cannot fork the chain. An append
made inside a transaction already open on the same database (``PeeweeRecordStore.
apply_callback``) joins it, so the audit row commits or rolls back with the caller's writes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import peewee as pw

from decentro_core.audit import chain_hash
from decentro_core.ports import AuditEvent, AuditVerification

from .schema import Dialect, Models, execute, session

_COLUMNS = ("actor", "action", "subject", "outcome", "occurred_at", "operation_id", "reference_id", "row_hash")

__all__ = ["PeeweeAuditSink"]

_VERIFY_BATCH = 1000


class PeeweeAuditSink:
    """Audit events in ``decentro_audit_event``; :meth:`verify` walks the chain by row id."""

    def __init__(self, database: pw.Database, models: Models) -> None:
        self._db = database
        self._row = models.audit
        self._dialect = dialect = Dialect.of(database)
        table = models.audit._meta.table_name
        last = f'SELECT "row_hash" FROM "{table}" ORDER BY "id" DESC LIMIT 1'
        # PostgreSQL: the lock and the read go in one round trip (psycopg2 runs both and
        # returns the SELECT's rows). SQLite's BEGIN IMMEDIATE already holds the write lock.
        self._sql_last = last if dialect.sqlite else f'LOCK TABLE "{table}" IN EXCLUSIVE MODE; {last}'
        names = ", ".join(f'"{c}"' for c in _COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        self._sql_insert = dialect.sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks})')

    def append(self, event: AuditEvent) -> None:
        db = self._db
        with session(db):
            if db.in_transaction():  # the caller's transaction: commit or roll back with it
                self._append_locked(event)
                return
            with db.atomic("IMMEDIATE") if self._dialect.sqlite else db.atomic():
                self._append_locked(event)

    def _append_locked(self, event: AuditEvent) -> None:
        """Read the last hash and insert the next row; the caller holds the transaction."""
        found = execute(self._db, self._sql_last).fetchone()
        previous = found[0] if found is not None else ""
        execute(self._db, self._sql_insert, (
            event.actor,
            event.action,
            event.subject,
            event.outcome,
            event.occurred_at.isoformat(),
            event.operation_id,
            event.reference_id,
            chain_hash(previous, event),
        ))

    @property
    def events(self) -> list[AuditEvent]:
        """Every event in chain order (for admin screens and tests)."""
        with session(self._db):
            return [_event(r) for r in self._row.select().order_by(self._row.id)]

    def verify(self) -> AuditVerification:
        """Recompute the chain; an edited, deleted or reordered row breaks it at that row."""
        previous, checked, last_id = "", 0, 0
        with session(self._db):
            while True:
                rows = list(
                    self._row.select().where(self._row.id > last_id).order_by(self._row.id).limit(_VERIFY_BATCH)
                )
                if not rows:
                    return AuditVerification(ok=True, checked=checked)
                for r in rows:
                    checked += 1
                    reason = _check(previous, r)
                    if reason is not None:
                        return AuditVerification(ok=False, checked=checked, first_broken=r.id, reason=reason)
                    previous, last_id = r.row_hash, r.id


def _check(previous: str, r: Any) -> str | None:
    try:
        event = _event(r)
    except (TypeError, ValueError):  # a timestamp edited into something unreadable
        return "unreadable row"
    return None if chain_hash(previous, event) == r.row_hash else "hash mismatch"


def _event(r: Any) -> AuditEvent:
    return AuditEvent(
        actor=r.actor,
        action=r.action,
        subject=r.subject,
        outcome=r.outcome,
        occurred_at=datetime.fromisoformat(r.occurred_at),
        operation_id=r.operation_id,
        reference_id=r.reference_id,
    )
