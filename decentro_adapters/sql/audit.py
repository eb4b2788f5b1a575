"""The append-only, keyed audit chain in SQL (:class:`~decentro_core.ports.AuditSink`).

Each row's ``row_hash`` holds its link, ``<key id>:<HMAC-SHA256>`` made by
:class:`decentro_core.audit.AuditKeyring` over the previous row's link and this row's fields,
exactly as :class:`decentro_core.memory.MemoryAuditSink` does (rows written before audit keys
existed hold a plain SHA-256 link, accepted before the first keyed one). The key id lives in
the link, so the schema is unchanged: the 52-character link fits the 64-character column.

Appenders queue on one lock so that writers in several processes cannot fork the chain: SQLite
``BEGIN IMMEDIATE``; PostgreSQL a transaction-scoped advisory lock (``pg_advisory_xact_lock``)
that only other appenders wait on. No table is locked against anyone else: the ``ROW
EXCLUSIVE`` table lock taken first is the one every ``INSERT`` takes, compatible with itself
and with readers; it conflicts only with the ``EXCLUSIVE`` lock of releases up to 0.1.0, so
workers of both kinds still queue in one line during a rolling deploy. On PostgreSQL an append
of its own is two round trips (``BEGIN``, locks and the last link in one; the ``INSERT`` and
``COMMIT`` in the other), so the lock is held for about one round trip and the commit. An
append made inside a transaction already open on the same database
(``PeeweeRecordStore.apply_callback``) joins it, so the audit row commits or rolls back with
the caller's writes. :meth:`verify` reads
the table in id order through a plain cursor, a batch at a time, so memory stays flat however
long the log is. :meth:`resign` rewrites the links under the signing key in one transaction
(all or nothing), taking the appenders' lock before it reads the tail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import peewee as pw

from decentro_core.audit import AuditKeyring, ChainResign, ChainWalk, ResignReport, generate_audit_key, key_id_of
from decentro_core.ports import AuditEvent, AuditHead, AuditVerification

from .schema import Dialect, Models, execute, manual_transaction, session

_COLUMNS = ("actor", "action", "subject", "outcome", "occurred_at", "operation_id", "reference_id", "row_hash")

__all__ = ["PeeweeAuditSink", "audit_event", "generate_audit_key"]

log = logging.getLogger("decentro")
_VERIFY_BATCH = 1000
_UPDATE_BATCH = 300
"""Links rewritten per ``UPDATE`` when re-signing (three parameters each: under SQLite's 999)."""
APPEND_LOCK_KEY = 0x0DEC_E471_0000_0002
"""The ``pg_advisory_xact_lock`` key audit appenders queue on (one per database: advisory locks
are scoped to the database they are taken in)."""


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
        # PostgreSQL: the locks and the read go in one round trip (psycopg2 runs them in order
        # and returns the last SELECT's rows). The read is its own statement, after the lock, so
        # its snapshot sees every row committed by the appender it waited for. SQLite's BEGIN
        # IMMEDIATE already holds the write lock.
        locks = f'LOCK TABLE "{table}" IN ROW EXCLUSIVE MODE; SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY}); '
        self._sql_last = last if dialect.sqlite else locks + last
        self.database = database
        self.sql_locks = "" if dialect.sqlite else locks  # for a record store's settle that appends too
        self.sql_last_link = last
        self.sql_begin_last = "BEGIN; " + self._sql_last  # an append's first round trip (PostgreSQL)
        names = ", ".join(f'"{c}"' for c in _COLUMNS)
        marks = ", ".join("?" for _ in _COLUMNS)
        self._sql_insert = self.sql_insert = dialect.sql(f'INSERT INTO "{table}" ({names}) VALUES ({marks})')
        self._sql_insert_commit = self._sql_insert + "; COMMIT"
        # One statement, so the count and the newest row come from the same snapshot.
        self._sql_head = f'SELECT (SELECT COUNT(*) FROM "{table}"), "id", "row_hash" FROM "{table}" ' \
                         'ORDER BY "id" DESC LIMIT 1'
        self._sql_batch = dialect.sql(
            f'SELECT "id", {names} FROM "{table}" WHERE "id" > ? ORDER BY "id" LIMIT {_VERIFY_BATCH}'
        )
        self._table = table

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
            elif self._dialect.sqlite:
                with db.atomic("IMMEDIATE"):
                    self._append_locked(event)
            else:
                self._append_in_two_round_trips(event)

    def _append_locked(self, event: AuditEvent) -> None:
        """Read the last link and insert the next row; the caller holds the transaction."""
        found = execute(self._db, self._sql_last).fetchone()
        execute(self._db, self._sql_insert, self._values(found, event))

    def _append_in_two_round_trips(self, event: AuditEvent) -> None:
        """PostgreSQL, no open transaction: ``BEGIN`` + locks + read, then ``INSERT`` + ``COMMIT``.

        Peewee's connections are in autocommit mode and it does not see this transaction, so it is
        ended here on every path: a failure rolls it back before the connection returns to the pool.
        """
        db = self._db
        with manual_transaction(db):
            found = execute(db, self.sql_begin_last).fetchone()
            execute(db, self._sql_insert_commit, self._values(found, event))

    def _values(self, found: tuple[Any, ...] | None, event: AuditEvent) -> tuple[Any, ...]:
        return self.values(found[0] if found is not None else None, event)

    def values(self, previous: str | None, event: AuditEvent) -> tuple[Any, ...]:
        """The new row's values, linked to ``previous`` (the last row's link; ``None``: first row)."""
        previous = previous or ""
        return (
            event.actor,
            event.action,
            event.subject,
            event.outcome,
            event.occurred_at.isoformat(),
            event.operation_id,
            event.reference_id,
            self.keyring.link(previous, event),
        )

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
            return [audit_event(r) for r in self._row.select().order_by(self._row.id)]

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

    def resign(self, *, anchor: AuditHead | None = None, accept_legacy: bool = False,
               note: Callable[[int], AuditEvent] | None = None) -> ResignReport:
        """Walk the chain under every key (and, with ``accept_legacy``, plain SHA-256 links before
        the first keyed one) and against ``anchor``; if it holds, rewrite each link under the
        signing key and append ``note(rewritten)`` at the tail. One transaction: a break, or an
        interruption, leaves every row as it was, and a second run finds nothing to rewrite.

        PostgreSQL reads and rewrites the rows there are without blocking appenders (they insert,
        linked to the committed tail), then takes their lock, re-signs what they appended
        meanwhile and commits: appends wait only for that last stretch. SQLite's ``BEGIN
        IMMEDIATE`` holds its one write lock throughout."""
        resign = ChainResign(self.keyring, anchor, accept_legacy=accept_legacy)
        db = self._db
        try:
            with session(db), self._resign_transaction():
                broken = self._resign_rows(resign)
                if broken is None and not self._dialect.sqlite:
                    execute(db, self.sql_locks.strip())  # from here no append links to a link we change
                    broken = self._resign_rows(resign)
                report = resign.report(broken or resign.walk.finish())
                if not report.ok:
                    raise _Unchanged(report)  # rolls back the links rewritten so far
                if note is not None and report.resigned:
                    execute(db, self._sql_insert, self.values(resign.link, note(report.resigned)))
        except _Unchanged as unchanged:
            return unchanged.report
        return report

    @contextmanager
    def _resign_transaction(self) -> Iterator[None]:
        """SQLite: ``BEGIN IMMEDIATE``, its one write lock; PostgreSQL: a plain transaction whose
        appenders' lock :meth:`resign` takes only for the last stretch."""
        with self._db.atomic("IMMEDIATE") if self._dialect.sqlite else self._db.atomic():
            yield

    def _resign_rows(self, resign: ChainResign) -> AuditVerification | None:
        """Re-sign the rows after ``resign``'s place, a batch at a time; a result if one breaks."""
        while True:
            rows = execute(self._db, self._sql_batch, (resign.walk.last_id,)).fetchall()
            changes: list[tuple[int, str]] = []
            for row in rows:
                broken = resign.visit(row[0], _readable(row[1:-1]), row[-1])
                if broken is not None:
                    return broken
                if resign.link != row[-1]:
                    changes.append((row[0], resign.link))
            for start in range(0, len(changes), _UPDATE_BATCH):
                self._write_links(changes[start:start + _UPDATE_BATCH])
            if len(rows) < _VERIFY_BATCH:
                return None

    def _write_links(self, changes: list[tuple[int, str]]) -> None:
        cases = " ".join("WHEN ? THEN ?" for _ in changes)
        marks = ", ".join("?" for _ in changes)
        sql = f'UPDATE "{self._table}" SET "row_hash" = CASE "id" {cases} END WHERE "id" IN ({marks})'
        params = [value for change in changes for value in change] + [row_id for row_id, _ in changes]
        execute(self._db, self._dialect.sql(sql), params)


class _Unchanged(Exception):
    """A re-signing that found a break: raised to roll its transaction back."""

    def __init__(self, report: ResignReport) -> None:
        super().__init__(report.verification.reason)
        self.report = report


def _readable(fields: tuple[Any, ...]) -> AuditEvent | None:
    """The event a row holds, or ``None`` when a field was edited into something unreadable."""
    actor, action, subject, outcome, occurred_at, operation_id, reference_id = fields
    try:
        return AuditEvent(actor, action, subject, outcome, datetime.fromisoformat(occurred_at),
                          operation_id, reference_id)
    except (TypeError, ValueError):
        return None


def audit_event(r: Any) -> AuditEvent:
    """An audit row as the port's :class:`AuditEvent`."""
    return AuditEvent(
        actor=r.actor,
        action=r.action,
        subject=r.subject,
        outcome=r.outcome,
        occurred_at=datetime.fromisoformat(r.occurred_at),
        operation_id=r.operation_id,
        reference_id=r.reference_id,
    )
