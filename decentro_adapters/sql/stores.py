"""Consent and record stores in SQLite or PostgreSQL through Peewee, and :func:`open_stores`.

>>> stores = open_stores("sqlite:///instance/decentro.sqlite3", vault=vault)  # doctest: +SKIP
>>> stores.records.get_operation("ref-1")                                     # doctest: +SKIP
>>> stores.close()                                                            # doctest: +SKIP

Consent text is what the user was shown, and often carries their name or PAN: it is sealed
with the vault, next to its keyed fingerprint (``text_fingerprint``,
:func:`decentro_core.consents.text_fingerprint`) that :meth:`PeeweeConsentStore.for_text`
finds; a consent store without a vault refuses to record. Rows from before schema version 3
hold their text in clear (``text_fingerprint`` NULL) until ``flask decentro seal-consents``
seals them. The purpose is the library's caller's own wording, stored as it is. The client IP
address and user agent identify a person's device, so they are treated as personal data:
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

from decentro_core.consents import text_fingerprint
from decentro_core.errors import ConfigurationError, StoreError
from decentro_core.events import transition
from decentro_core.ports import (
    AuditEvent,
    AuditSink,
    CallbackUpdate,
    ConsentListing,
    ConsentRecord,
    ConsentStore,
    OperationRecord,
    OutcomeEvent,
    Vault,
    WebhookEvent,
    WebhookState,
)

from .audit import PeeweeAuditSink, audit_event
from .migrations import SchemaMode, prepare_schema
from .outbox import PeeweeOutbox
from .record_sql import OPERATION_COLUMNS, WEBHOOK_COLUMNS, RecordSql, marks
from .schema import Dialect, Models, build_models, close_pool, connect, execute, from_utc, manual_transaction, session

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
        self._model = models.consent
        table = models.consent._meta.table_name
        names = ", ".join(f'"{c}"' for c in _CONSENT)
        insert = f'INSERT INTO "{table}" ({names}) VALUES ({marks(_CONSENT)})'
        self._sql_insert = dialect.sql(insert if dialect.sqlite else insert + ' RETURNING "id"')
        self.sql_insert_plain = dialect.sql(insert)  # for a record store joining it to its own write
        self._sql_for_user = dialect.sql(f'SELECT {names} FROM "{table}" WHERE "user_id" = ? ORDER BY "id"')

    def record(self, consent: ConsentRecord) -> str:
        with session(self._db):
            cursor = execute(self._db, self._sql_insert, self.values(consent))
            return str(cursor.lastrowid if self._dialect.sqlite else cursor.fetchone()[0])

    def values(self, consent: ConsentRecord) -> tuple[Any, ...]:
        """The row's values: text sealed with its fingerprint, client IP and user agent sealed."""
        vault = self._required_vault()
        return (
            consent.user_id,
            consent.operation,
            vault.seal(consent.text.encode("utf-8")),
            consent.purpose,
            self._dialect.stored_time(consent.given_at),
            self._seal(consent.client_ip),
            self._seal(consent.user_agent),
            text_fingerprint(vault, consent.text),
        )

    def _required_vault(self) -> Vault:
        if self._vault is None:
            raise ConfigurationError("A consent store needs a vault: consent text is sealed "
                                     "(open_stores(url, vault=...))")
        return self._vault

    def for_user(self, user_id: str) -> list[ConsentRecord]:
        with session(self._db):
            rows = execute(self._db, self._sql_for_user, (user_id,)).fetchall()
        return [
            ConsentRecord(
                user_id=user,
                operation=operation,
                text=text if fingerprint is None else self._required_vault().open(text).decode("utf-8"),
                purpose=purpose,
                given_at=from_utc(given_at),
                client_ip=self._open(client_ip),
                user_agent=self._open(user_agent),
            )
            # fingerprint NULL: a row from before schema version 3, text still in clear
            for user, operation, text, purpose, given_at, client_ip, user_agent, fingerprint in rows
        ]

    def consents_page(self, *, before: int | None = None, limit: int = 50) -> list[ConsentListing]:
        """Newest first; the sealed text, IP address and user agent are not opened."""
        return self._listings(before, limit, None)

    def for_text(self, text: str, *, before: int | None = None, limit: int = 50) -> list[ConsentListing]:
        """The consents given to exactly ``text``: one indexed lookup of its fingerprint."""
        return self._listings(before, limit, text_fingerprint(self._required_vault(), text))

    def _listings(self, before: int | None, limit: int, fingerprint: str | None) -> list[ConsentListing]:
        c = self._model
        query = c.select(c.id, c.user_id, c.operation, c.purpose, c.given_at,
                         c.client_ip.is_null(False), c.user_agent.is_null(False), c.text_fingerprint)
        if fingerprint is not None:
            query = query.where(c.text_fingerprint == fingerprint)
        if before is not None:
            query = query.where(c.id < before)
        with session(self._db):
            rows = list(query.order_by(c.id.desc()).limit(limit).tuples())
        return [ConsentListing(id=int(i), user_id=user, operation=operation, purpose=purpose,
                               given_at=from_utc(given_at), has_client_ip=bool(ip), has_user_agent=bool(agent),
                               text_fingerprint=found)
                for i, user, operation, purpose, given_at, ip, agent, found in rows]

    def _seal(self, value: str | None) -> str | None:
        if value is None or self._vault is None:
            return value
        return self._vault.seal(value.encode("utf-8"))

    def _open(self, value: str | None) -> str | None:
        if value is None or self._vault is None:
            return value
        return self._vault.open(value).decode("utf-8")


_CONSENT = ("user_id", "operation", "text", "purpose", "given_at", "client_ip", "user_agent", "text_fingerprint")
class PeeweeRecordStore:
    """Operations (``decentro_operation``) and webhook events (``decentro_webhook_event``)."""

    def __init__(self, database: pw.Database, models: Models) -> None:
        self._db = self.database = database  # public for maintenance (key rotation)
        self.models = models
        self._dialect = Dialect.of(database)
        self._sql = RecordSql(self._dialect, models)
        self._outbox = PeeweeOutbox(database, models)
        self._sql_purge_events = self._outbox.purge_sql()

    @property
    def outbox(self) -> PeeweeOutbox:
        return self._outbox

    def _transaction(self) -> Any:
        return self._db.atomic("IMMEDIATE") if self._dialect.sqlite else self._db.atomic()

    def _own_audit(self, audit: AuditSink) -> PeeweeAuditSink | None:
        """``audit`` when it is this database's SQL sink (its rows can join our transactions)."""
        return audit if isinstance(audit, PeeweeAuditSink) and audit.database is self._db else None

    def _own_consents(self, consents: ConsentStore) -> PeeweeConsentStore | None:
        """``consents`` when it is this database's SQL store (its rows can join our transactions)."""
        return consents if isinstance(consents, PeeweeConsentStore) and consents._db is self._db else None

    def write_ahead(self, record: OperationRecord, *, consent: ConsentRecord | None,
                    consents: ConsentStore) -> None:
        """The consent (if any) and the PENDING record before a call is sent. On PostgreSQL, with
        this database's consent store, both go in one round trip and one implicit transaction."""
        own = self._own_consents(consents)
        if consent is not None and not self._dialect.sqlite and own is not None:
            with session(self._db):
                execute(self._db, f"{own.sql_insert_plain}; {self._sql.upsert}",
                        (*own.values(consent), *self._operation_values(record)))
            return
        if consent is not None:
            consents.record(consent)
        self.save_operation(record)

    def record_access(self, audit_event: AuditEvent, *, audit: AuditSink, consent: ConsentRecord | None,
                      consents: ConsentStore) -> None:
        """The consent (if any) and the audit event of an answer served from the cache, in one
        transaction. On PostgreSQL, with this database's audit sink and consent store, in two round
        trips and one commit: ``BEGIN``, the audit locks and the chain's last link; then the
        consent row, the audit row and ``COMMIT``."""
        db, own_audit, own_consents = self._db, self._own_audit(audit), self._own_consents(consents)
        if own_audit is None or (consent is not None and own_consents is None):
            if consent is not None:
                consents.record(consent)
            audit.append(audit_event)
            return
        statements: list[str] = []
        params: list[Any] = []
        if consent is not None:
            assert own_consents is not None  # else the calls above recorded both
            statements.append(own_consents.sql_insert_plain)
            params += own_consents.values(consent)
        with session(db):
            if self._dialect.sqlite:
                with self._transaction():
                    if statements:  # the consent row
                        execute(db, statements[0], params)
                    own_audit.append(audit_event)  # joins the transaction
                return
            with manual_transaction(db):
                found = execute(db, own_audit.sql_begin_last).fetchone()
                self._write_and_commit(statements, params, None, own_audit, found[0] if found else None,
                                       audit_event)

    def save_outcome(self, record: OperationRecord, *, audit: AuditSink, audit_event: AuditEvent | None,
                     event: OutcomeEvent | None) -> OutcomeEvent | None:
        """One transaction: lock the stored record, merge ``record``, write the outcome event
        if the status really changed, append the audit event (last: see :meth:`apply_callback`).

        On PostgreSQL with this database's audit sink it takes two round trips: ``BEGIN``, the
        row lock, the audit locks and one read of the stored status and the chain's last link;
        then the upsert, the outbox row, the audit row and ``COMMIT``."""
        own_audit = self._own_audit(audit)
        if not self._dialect.sqlite and audit_event is not None and own_audit is not None:
            return self._save_outcome_in_two_round_trips(record, own_audit, audit_event, event)
        db, sql = self._db, self._sql
        with session(db), self._transaction():
            emitted = None
            if event is None:
                execute(db, sql.upsert, self._operation_values(record))
            else:
                found = execute(db, sql.status_locked, (record.reference_id,)).fetchone()
                execute(db, sql.upsert, self._operation_values(record))
                emitted = self._emit(found[0] if found is not None else None, record, event)
            if audit_event is not None:
                audit.append(audit_event)
        return emitted

    def _save_outcome_in_two_round_trips(self, record: OperationRecord, audit: PeeweeAuditSink,
                                         audit_event: AuditEvent, event: OutcomeEvent | None) -> OutcomeEvent | None:
        db, sql = self._db, self._sql
        with session(db), manual_transaction(db):
            found = execute(db, sql.begin_lock_row + audit.sql_locks + sql.status_and_link(audit.sql_last_link),
                            (record.reference_id, record.reference_id)).fetchone()
            old, last_link = found if found is not None else (None, None)
            emitted = transition(event, old, record.status)
            self._write_and_commit([sql.upsert], list(self._operation_values(record)), emitted,
                                   audit, last_link, audit_event)
        return emitted

    def _write_and_commit(self, statements: list[str], params: list[Any], emitted: OutcomeEvent | None,
                          audit: PeeweeAuditSink, last_link: str | None, audit_event: AuditEvent) -> None:
        """The second round trip of a fast path: ``statements``, the outcome event's row, the audit
        row linked to ``last_link`` and ``COMMIT``, in one string."""
        if emitted is not None:
            statements.append(self._outbox.sql_insert)
            params += self._outbox.values(emitted)
        statements.append(audit.sql_insert)
        params += audit.values(last_link, audit_event)
        execute(self._db, "; ".join([*statements, "COMMIT"]), params)

    def _emit(self, old: str | None, record: OperationRecord, event: OutcomeEvent | None) -> OutcomeEvent | None:
        """Insert ``event`` when ``record``'s status replaced a different stored one (in the transaction)."""
        emitted = transition(event, old, record.status)
        return None if emitted is None else self._outbox.insert(emitted)

    def unsettled(self, operation: str, *, created_before: datetime, limit: int,
                  after: OperationRecord | None = None) -> list[OperationRecord]:
        when = self._dialect.stored_time
        params: list[Any] = [operation, when(created_before)]
        sql = self._sql.unsettled
        if after is not None:
            sql += self._sql.unsettled_after
            params += [when(after.created_at), when(after.created_at), after.reference_id]
        with session(self._db):
            rows = execute(self._db, sql + self._sql.unsettled_order + f" LIMIT {max(0, int(limit))}",
                           params).fetchall()
        return [_operation(r) for r in rows]

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
        It is appended last: the audit chain's lock is the one every appender queues on, so it is
        held for the fewest statements, and a failing foreign sink rolls the writes back.
        """
        own_audit = self._own_audit(audit)
        if reference_id and not self._dialect.sqlite and own_audit is not None:
            applied = self._apply_callback_in_two_round_trips(dedupe_key, reference_id, decide, own_audit)
            if applied is not _NOT_FOUND or not operation_id:
                return None if applied is _NOT_FOUND else applied  # type: ignore[return-value]
        db, sql = self._db, self._sql
        with session(db), self._transaction():
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
            emitted = self._emit(row[2], update.record, update.event) if update.record is not None else None
            audit.append(update.audit)
        return replace(update, event=emitted)

    def _apply_callback_in_two_round_trips(self, dedupe_key: str, reference_id: str,
                                           decide: Callable[[OperationRecord], CallbackUpdate],
                                           audit: PeeweeAuditSink) -> CallbackUpdate | object:
        """PostgreSQL, found by reference id: ``BEGIN``, the operation's and the event's row locks,
        the audit locks and one read (the operation, the event's state, the chain's last link);
        then the writes and ``COMMIT``. :data:`_NOT_FOUND` (rolled back) when no operation has
        that reference id, so the caller may look it up by Decentro's id instead."""
        db, sql = self._db, self._sql
        with session(db), manual_transaction(db):
            row = execute(db, sql.begin_lock_callback + audit.sql_locks + sql.callback_read(audit.sql_last_link),
                          (reference_id, dedupe_key, dedupe_key, reference_id)).fetchone()
            if row is None:
                execute(db, "ROLLBACK")
                return _NOT_FOUND
            *columns, state, last_link = row
            update = decide(_operation(columns))
            if state == "processed":  # applied by another processor while we waited for the row
                execute(db, "ROLLBACK")
                return CallbackUpdate(audit=replace(update.audit, outcome="duplicate"))
            statements: list[str] = []
            params: list[Any] = []
            emitted = None
            if update.record is not None:
                statements.append(sql.upsert)
                params += self._operation_values(update.record)
                emitted = transition(update.event, columns[2], update.record.status)
            statements.append(sql.hook_processed)
            params.append(dedupe_key)
            self._write_and_commit(statements, params, emitted, audit, last_link, update.audit)
        return replace(update, event=emitted)

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
            events = execute(self._db, self._sql_purge_events, (limit,)).rowcount
        return int(ops) + int(hooks) + int(events)


    # -- reads for operator screens (not on any hot path: peewee's query builder is fine) ----

    def operations_page(
        self, *, before: int | None = None, limit: int = 50, operation: str | None = None
    ) -> list[tuple[int, OperationRecord]]:
        model = self.models.operation
        rows = self._page(model, OPERATION_COLUMNS, None if operation is None else model.operation == operation,
                          before, limit)
        return [(int(row[0]), _operation(row[1:])) for row in rows]

    def webhook_events_page(
        self, *, before: int | None = None, limit: int = 50, state: WebhookState | None = None
    ) -> list[tuple[int, WebhookEvent]]:
        model = self.models.webhook
        rows = self._page(model, WEBHOOK_COLUMNS, None if state is None else model.state == state, before, limit)
        return [(int(row[0]), _webhook(row[1:])) for row in rows]

    def _page(self, model: Any, columns: tuple[str, ...], where: Any, before: int | None, limit: int) -> list[Any]:
        """Rows ``(id, *columns)`` matching ``where``, newest first, ids below ``before``."""
        query = model.select(model.id, *(getattr(model, c) for c in columns))
        if where is not None:
            query = query.where(where)
        if before is not None:
            query = query.where(model.id < before)
        with session(self._db):
            return list(query.order_by(model.id.desc()).limit(limit).tuples())

    def audit_trail(self, reference_id: str, *, limit: int = 200) -> list[AuditEvent]:
        """This database's audit rows for ``reference_id``, oldest first."""
        row = self.models.audit
        query = row.select().where(row.reference_id == reference_id).order_by(row.id).limit(limit)
        with session(self._db):
            return [audit_event(r) for r in query]


WEBHOOK_PAGE = 500
"""Rows per query when :meth:`PeeweeRecordStore.webhook_events` streams the table."""


_NOT_FOUND = object()


def _operation(row: Any) -> OperationRecord:
    reference_id, operation, status, created_at, updated_at, *rest = row
    return OperationRecord(reference_id, operation, status, from_utc(created_at), from_utc(updated_at), *rest)


def _webhook(row: Any) -> WebhookEvent:
    dedupe_key, sealed_body, received_at, state, attempts, reference_id, last_error = row
    return WebhookEvent(dedupe_key, sealed_body, from_utc(received_at), state, attempts, reference_id, last_error)
