"""The append-only, keyed audit chain in SQL (:class:`~decentro_core.ports.AuditSink`).

Each row's ``row_hash`` holds its link, ``<key id>:<HMAC-SHA256>`` made by
:class:`decentro_core.audit.AuditKeyring` over the previous row's link and this row's fields,
exactly as :class:`decentro_core.memory.MemoryAuditSink` does (rows written before audit keys
existed hold a plain SHA-256 link, accepted before the first keyed one). The key id lives in
the link, so the schema is unchanged: the 52-character link fits the 64-character column.

Appends take a write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``LOCK TABLE ... IN
EXCLUSIVE MODE``) so that writers in several processes cannot fork the chain. An append made
inside a transaction already open on the same database (``PeeweeRecordStore.apply_callback``)
joins it, so the audit row commits or rolls back with the caller's writes. :meth:`verify` reads
the table in id order through a plain cursor, a batch at a time, so memory stays flat however
long the log is.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import peewee as pw

from decentro_core.audit import AuditKeyring, ChainWalk, generate_audit_key, key_id_of
from decentro_core.ports import AuditEvent, AuditHead, AuditVerification

from .schema import Dialect, Models, execute, session

_COLUMNS = ("actor", "action", "subject", "outcome", "occurred_at", "operation_id", "reference_id", "row_hash")

__all__ = ["PeeweeAuditSink", "generate_audit_key"]

log = logging.getLogger("decentro")
_VERIFY_BATCH = 1000


class PeeweeAuditSink:
    """Audit events in ``decentro_audit_event``; :meth:`verify` walks the chain by row id.

    ``keyring`` comes from ``DECENTRO_AUDIT_KEYS`` (the composition root passes it). Without
    one, an ephemeral key is made on first use, with a WARNING: its links do not verify in
    another process.
    """

    def __init__(self, database: pw.Database, models: Models, keyring: AuditKeyring | None = None) -> None:
        self._db = database
        self._row = models.audit
        self._keyring = keyring
        self._dialect = dialect = Dialect.of(database)
        table = models.audit._meta.table_name
        last = f'SELECT "row_hash" FROM "{table}" ORDER BY "id" DESC LIMIT 1'
        # PostgreSQL: the lock and the read go in one round trip (psycopg2 runs both and
        # returns the SELECT's rows). SQLite's BEGIN IMMEDIATE already holds the write lock.
        self._sql_last = last if dialect.sqlite else f'LOCK TABLE "{table}" IN EXCLUSIVE MODE; {last}'
        names = ", ".join(f'"{c}"' for c in _COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        self._sql_insert = dialect.sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks})')
        # One statement, so the count and the newest row come from the same snapshot.
        self._sql_head = f'SELECT (SELECT COUNT(*) FROM "{table}"), "id", "row_hash" FROM "{table}" ' \
                         'ORDER BY "id" DESC LIMIT 1'
        self._sql_batch = dialect.sql(
            f'SELECT "id", {names} FROM "{table}" WHERE "id" > ? ORDER BY "id" LIMIT {_VERIFY_BATCH}'
        )

    @property
    def keyring(self) -> AuditKeyring:
        if self._keyring is None:
            log.warning("decentro: this audit sink has no DECENTRO_AUDIT_KEYS; signing with an EPHEMERAL key "
                        "whose links will not verify in another process")
            self._keyring = AuditKeyring.ephemeral()
        return self._keyring

    def append(self, event: AuditEvent) -> None:
        db = self._db
        with session(db):
            if db.in_transaction():  # the caller's transaction: commit or roll back with it
                self._append_locked(event)
                return
            with db.atomic("IMMEDIATE") if self._dialect.sqlite else db.atomic():
                self._append_locked(event)

    def _append_locked(self, event: AuditEvent) -> None:
        """Read the last link and insert the next row; the caller holds the transaction."""
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
            self.keyring.link(previous, event),
        ))

    def head(self) -> AuditHead:
        """The newest row's id and link, and how many rows there are: an anchor to keep elsewhere."""
        with session(self._db):
            found = execute(self._db, self._sql_head).fetchone()
        if found is None:
            return AuditHead(count=0, last_id=0, link="", key_id="")
        count, last_id, link = found
        return AuditHead(count=int(count), last_id=int(last_id), link=link, key_id=key_id_of(link))

    @property
    def events(self) -> list[AuditEvent]:
        """Every event in chain order (for admin screens and tests)."""
        with session(self._db):
            return [_event(r) for r in self._row.select().order_by(self._row.id)]

    def verify(self, anchor: AuditHead | None = None) -> AuditVerification:
        """Recompute the chain; an edited, deleted, reordered or (against ``anchor``) cut chain
        breaks at that row. Reads ``_VERIFY_BATCH`` rows at a time."""
        walk = ChainWalk(self.keyring, anchor)
        with session(self._db):
            while True:
                rows = execute(self._db, self._sql_batch, (walk.last_id,)).fetchall()
                for row in rows:
                    broken = walk.visit(row[0], _readable(row[1:-1]), row[-1])
                    if broken is not None:
                        return broken
                if len(rows) < _VERIFY_BATCH:
                    return walk.finish()


def _readable(fields: tuple[Any, ...]) -> AuditEvent | None:
    """The event a row holds, or ``None`` when a field was edited into something unreadable."""
    actor, action, subject, outcome, occurred_at, operation_id, reference_id = fields
    try:
        return AuditEvent(actor, action, subject, outcome, datetime.fromisoformat(occurred_at),
                          operation_id, reference_id)
    except (TypeError, ValueError):
        return None


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
