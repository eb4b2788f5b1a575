"""Consent and record stores in SQLite or PostgreSQL through Peewee, and :func:`open_stores`.

>>> stores = open_stores("sqlite:///instance/decentro.sqlite3", vault=vault)  # doctest: +SKIP
>>> stores.records.get_operation("ref-1")                                     # doctest: +SKIP
>>> stores.close()                                                            # doctest: +SKIP

Consent text and purpose are the library's own wording and are stored as they are. The client
IP address and user agent identify a person's device, so they are treated as personal data:
sealed with the vault when the stores have one (``open_stores(url, vault=...)``, which the
composition root always does), stored as given only when no vault is passed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType
from typing import Any

import peewee as pw

from decentro_core.errors import StoreError
from decentro_core.ports import (
    AuditSink,
    CallbackUpdate,
    ConsentRecord,
    OperationRecord,
    Vault,
    WebhookEvent,
    WebhookState,
)

from .audit import PeeweeAuditSink
from .migrations import SchemaMode, prepare_schema
from .record_sql import RecordSql, marks
from .schema import Dialect, Models, build_models, close_pool, connect, execute, from_utc, session

__all__ = ["PeeweeConsentStore", "PeeweeRecordStore", "Stores", "open_stores"]


@dataclass(frozen=True)
class Stores:
    """The three SQL-backed ports on one database; close it when the application stops."""

    database: pw.Database
    models: Models
    consents: PeeweeConsentStore
    audit: PeeweeAuditSink
    records: PeeweeRecordStore

    def close(self) -> None:
        """Close every pooled connection (those of other threads too)."""
        close_pool(self.database)

    def __enter__(self) -> Stores:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_stores(url: str = "", *, vault: Vault | None = None, schema: SchemaMode = "auto") -> Stores:
    """Connect to ``url`` (``sqlite:///path``, ``postgresql://...``; empty: the default file).

    ``schema`` says what may happen to the schema (``migrations.prepare_schema``): ``"check"``
    (serving: one read of the version, no DDL, ``ConfigurationError`` when the database is
    behind or ahead), ``"auto"`` (the default: create the embedded demo SQLite default or an
    empty SQLite file, check everything else, PostgreSQL always) or ``"upgrade"`` (scripts and
    tests that own the database). Also raises ``ConfigurationError`` for an unsupported URL.
    """
    database = connect(url)
    try:
        prepare_schema(database, url, schema)
    except BaseException:
        close_pool(database)
        raise
    models = build_models(database)
    return Stores(
        database=database,
        models=models,
        consents=PeeweeConsentStore(database, models, vault=vault),
        audit=PeeweeAuditSink(database, models),
        records=PeeweeRecordStore(database, models),
    )


class PeeweeConsentStore:
    """Consent records in ``decentro_consent`` (see the module docstring on IP and user agent)."""

    def __init__(self, database: pw.Database, models: Models, *, vault: Vault | None = None) -> None:
        self._db = database
        self._dialect = dialect = Dialect.of(database)
        self._vault = vault
        table = models.consent._meta.table_name
        names = ", ".join(f'"{c}"' for c in _CONSENT)
        insert = f'INSERT INTO "{table}" ({names}) VALUES ({marks(_CONSENT)})'
        self._sql_insert = dialect.sql(insert if dialect.sqlite else insert + ' RETURNING "id"')
        self._sql_for_user = dialect.sql(f'SELECT {names} FROM "{table}" WHERE "user_id" = ? ORDER BY "id"')

    def record(self, consent: ConsentRecord) -> str:
        values = (
            consent.user_id,
            consent.operation,
            consent.text,
            consent.purpose,
            self._dialect.stored_time(consent.given_at),
            self._seal(consent.client_ip),
            self._seal(consent.user_agent),
        )
        with session(self._db):
            cursor = execute(self._db, self._sql_insert, values)
            return str(cursor.lastrowid if self._dialect.sqlite else cursor.fetchone()[0])

    def for_user(self, user_id: str) -> list[ConsentRecord]:
        with session(self._db):
            rows = execute(self._db, self._sql_for_user, (user_id,)).fetchall()
        return [
            ConsentRecord(
                user_id=user,
                operation=operation,
                text=text,
                purpose=purpose,
                given_at=from_utc(given_at),
                client_ip=self._open(client_ip),
                user_agent=self._open(user_agent),
            )
            for user, operation, text, purpose, given_at, client_ip, user_agent in rows
        ]

    def _seal(self, value: str | None) -> str | None:
        if value is None or self._vault is None:
            return value
        return self._vault.seal(value.encode("utf-8"))

    def _open(self, value: str | None) -> str | None:
        if value is None or self._vault is None:
            return value
        return self._vault.open(value).decode("utf-8")


_CONSENT = ("user_id", "operation", "text", "purpose", "given_at", "client_ip", "user_agent")
class PeeweeRecordStore:
    """Operations (``decentro_operation``) and webhook events (``decentro_webhook_event``)."""

    def __init__(self, database: pw.Database, models: Models) -> None:
        self._db = self.database = database  # public for maintenance (key rotation)
        self.models = models
        self._dialect = Dialect.of(database)
        self._sql = RecordSql(self._dialect, models)

    def save_operation(self, record: OperationRecord) -> None:
        with session(self._db):
            # One statement, so two writers of the same reference id cannot both insert.
            execute(self._db, self._sql.upsert, self._operation_values(record))

    def get_operation(self, reference_id: str) -> OperationRecord | None:
        return self._first_operation(self._sql.by_reference, reference_id)

    def find_by_operation_id(self, operation_id: str) -> OperationRecord | None:
        return self._first_operation(self._sql.by_operation_id, operation_id)

    def _first_operation(self, sql: str, key: str) -> OperationRecord | None:
        with session(self._db):
            row = execute(self._db, sql, (key,)).fetchone()
        return None if row is None else _operation(row)

    def apply_callback(
        self,
        dedupe_key: str,
        *,
        reference_id: str | None,
        operation_id: str | None,
        decide: Callable[[OperationRecord], CallbackUpdate],
        audit: AuditSink,
    ) -> CallbackUpdate | None:
        """One transaction: lock the operation, save ``decide``'s update, mark the event, audit.

        ``audit`` joins the transaction when it is this database's :class:`PeeweeAuditSink`.
        It is appended last: the audit table lock is the one every worker queues on, so it is
        held for the fewest statements, and a failing foreign sink rolls the writes back.
        """
        db, sql = self._db, self._sql
        with session(db), db.atomic("IMMEDIATE") if self._dialect.sqlite else db.atomic():
            row = execute(db, sql.by_reference_locked, (reference_id,)).fetchone() if reference_id else None
            if row is None and operation_id:
                row = execute(db, sql.by_operation_id_locked, (operation_id,)).fetchone()
            if row is None:
                return None
            update = decide(_operation(row))
            # Under the operation's row lock: another processor (a late retry, a replay) may
            # have applied this same event while we waited for it. Then nothing is written.
            state = execute(db, sql.hook_state, (dedupe_key,)).fetchone()
            if state is not None and state[0] == "processed":
                return CallbackUpdate(audit=replace(update.audit, outcome="duplicate"))
            if update.record is None:
                execute(db, sql.hook_processed, (dedupe_key,))
            elif sql.save_and_mark is not None:
                execute(db, sql.save_and_mark, (*self._operation_values(update.record), dedupe_key))
            else:
                execute(db, sql.upsert, self._operation_values(update.record))
                execute(db, sql.hook_processed, (dedupe_key,))
            audit.append(update.audit)
        return update

    def _operation_values(self, record: OperationRecord) -> tuple[Any, ...]:
        when = self._dialect.stored_time
        return (
            record.reference_id, record.operation, record.status, when(record.created_at), when(record.updated_at),
            record.operation_id, record.user_id, record.sealed_request, record.sealed_result,
        )

    def add_webhook_event(self, event: WebhookEvent) -> bool:
        values = (
            event.dedupe_key, event.sealed_body, self._dialect.stored_time(event.received_at),
            event.state, event.attempts, event.reference_id, event.last_error,
        )
        with session(self._db):
            # The unique dedupe_key settles races between processes: the loser inserts nothing.
            return bool(execute(self._db, self._sql.add_hook, values).rowcount == 1)

    def get_webhook_event(self, dedupe_key: str) -> WebhookEvent | None:
        with session(self._db):
            row = execute(self._db, self._sql.get_hook, (dedupe_key,)).fetchone()
        return None if row is None else _webhook(row)

    def update_webhook_event(
        self, dedupe_key: str, *, state: WebhookState, attempts: int, last_error: str | None
    ) -> None:
        with session(self._db):
            changed = execute(self._db, self._sql.update_hook, (state, attempts, last_error, dedupe_key)).rowcount
        if changed == 0:
            raise StoreError("No webhook event with that dedupe key")

    def webhook_events(
        self, *, state: WebhookState | None = None, after: str | None = None, limit: int | None = None
    ) -> Iterator[WebhookEvent]:
        """Oldest first, read ``WEBHOOK_PAGE`` rows at a time (a connection held per page only),
        so listing a large table keeps memory flat. ``after``: start past that event's key
        (``KeyError`` if there is none); ``limit``: stop after that many."""
        sql, db = self._sql, self._db
        position: tuple[Any, ...] | None = None
        if after is not None:
            with session(db):
                position = execute(db, sql.hook_position, (after,)).fetchone()
            if position is None:
                raise KeyError(after)
        return self._hook_pages(state, position, limit)

    def _hook_pages(self, state: WebhookState | None, position: tuple[Any, ...] | None,
                    limit: int | None) -> Iterator[WebhookEvent]:
        sql, db = self._sql, self._db
        left = limit
        while left is None or left > 0:
            size = WEBHOOK_PAGE if left is None else min(left, WEBHOOK_PAGE)
            chosen: tuple[Any, ...] = () if state is None else (state,)
            if position is None:
                text = sql.hooks_first_page if state is None else sql.hooks_first_page_in_state
                params = (*chosen, size)
            else:
                text = sql.hooks_page if state is None else sql.hooks_page_in_state
                params = (*chosen, position[0], position[0], position[1], size)
            with session(db):
                rows = execute(db, text, params).fetchall()
            for row in rows:
                yield _webhook(row[:-2])
            if len(rows) < size:
                return
            position = rows[-1][-2:]
            if left is not None:
                left -= len(rows)

    def purge_before(self, cutoff: datetime) -> int:
        limit = self._dialect.stored_time(cutoff)
        with session(self._db), self._db.atomic():
            ops = execute(self._db, self._sql.purge_ops, (limit,)).rowcount
            hooks = execute(self._db, self._sql.purge_hooks, (limit,)).rowcount
        return int(ops) + int(hooks)


WEBHOOK_PAGE = 500
"""Rows per query when :meth:`PeeweeRecordStore.webhook_events` streams the table."""


def _operation(row: Any) -> OperationRecord:
    reference_id, operation, status, created_at, updated_at, *rest = row
    return OperationRecord(reference_id, operation, status, from_utc(created_at), from_utc(updated_at), *rest)


def _webhook(row: Any) -> WebhookEvent:
    dedupe_key, sealed_body, received_at, state, attempts, reference_id, last_error = row
    return WebhookEvent(dedupe_key, sealed_body, from_utc(received_at), state, attempts, reference_id, last_error)
