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

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import peewee as pw

from decentro_core.errors import StoreError
from decentro_core.ports import ConsentRecord, OperationRecord, Vault, WebhookEvent, WebhookState

from .peewee_audit import PeeweeAuditSink
from .peewee_schema import Models, build_models, connect, ensure_schema, from_utc, session, to_utc

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
        self.database.close_all()

    def __enter__(self) -> Stores:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_stores(url: str = "", *, vault: Vault | None = None) -> Stores:
    """Connect to ``url`` (``sqlite:///path``, ``postgresql://...``; empty: the default file).

    Creates missing tables, and raises :class:`~decentro_core.errors.ConfigurationError` for
    an unsupported URL or a schema newer than this library.
    """
    database = connect(url)
    models = build_models(database)
    try:
        ensure_schema(database, models)
    except BaseException:
        database.close_all()
        raise
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
        self._row = models.consent
        self._vault = vault

    def record(self, consent: ConsentRecord) -> str:
        with session(self._db):
            row = self._row.create(
                user_id=consent.user_id,
                operation=consent.operation,
                text=consent.text,
                purpose=consent.purpose,
                given_at=to_utc(consent.given_at),
                client_ip=self._seal(consent.client_ip),
                user_agent=self._seal(consent.user_agent),
            )
            return str(row.id)

    def for_user(self, user_id: str) -> list[ConsentRecord]:
        with session(self._db):
            rows = list(self._row.select().where(self._row.user_id == user_id).order_by(self._row.id))
        return [
            ConsentRecord(
                user_id=r.user_id,
                operation=r.operation,
                text=r.text,
                purpose=r.purpose,
                given_at=from_utc(r.given_at),
                client_ip=self._open(r.client_ip),
                user_agent=self._open(r.user_agent),
            )
            for r in rows
        ]

    def _seal(self, value: str | None) -> str | None:
        if value is None or self._vault is None:
            return value
        return self._vault.seal(value.encode("utf-8"))

    def _open(self, value: str | None) -> str | None:
        if value is None or self._vault is None:
            return value
        return self._vault.open(value).decode("utf-8")


class PeeweeRecordStore:
    """Operations (``decentro_operation``) and webhook events (``decentro_webhook_event``)."""

    def __init__(self, database: pw.Database, models: Models) -> None:
        self._db = database
        self._op = models.operation
        self._hook = models.webhook

    def save_operation(self, record: OperationRecord) -> None:
        op = self._op
        values = {
            op.reference_id: record.reference_id,
            op.operation: record.operation,
            op.status: record.status,
            op.operation_id: record.operation_id,
            op.user_id: record.user_id,
            op.sealed_request: record.sealed_request,
            op.sealed_result: record.sealed_result,
            op.created_at: to_utc(record.created_at),
            op.updated_at: to_utc(record.updated_at),
        }
        replaced = [field for field in values if field is not op.reference_id]
        with session(self._db):
            # One statement, so two writers of the same reference id cannot both insert.
            op.insert(values).on_conflict(conflict_target=[op.reference_id], preserve=replaced).execute()

    def get_operation(self, reference_id: str) -> OperationRecord | None:
        return self._first_operation(self._op.reference_id == reference_id)

    def find_by_operation_id(self, operation_id: str) -> OperationRecord | None:
        return self._first_operation(self._op.operation_id == operation_id)

    def _first_operation(self, condition: pw.Expression) -> OperationRecord | None:
        with session(self._db):
            row = self._op.select().where(condition).order_by(self._op.id).first()
        return None if row is None else _operation(row)

    def add_webhook_event(self, event: WebhookEvent) -> bool:
        with session(self._db):
            try:
                with self._db.atomic():
                    self._hook.create(
                        dedupe_key=event.dedupe_key,
                        sealed_body=event.sealed_body,
                        received_at=to_utc(event.received_at),
                        state=event.state,
                        attempts=event.attempts,
                        reference_id=event.reference_id,
                        last_error=event.last_error,
                    )
            except pw.IntegrityError:
                # The unique dedupe_key settles races between processes: the loser sees this.
                return False
        return True

    def get_webhook_event(self, dedupe_key: str) -> WebhookEvent | None:
        with session(self._db):
            row = self._hook.get_or_none(self._hook.dedupe_key == dedupe_key)
        return None if row is None else _webhook(row)

    def update_webhook_event(
        self, dedupe_key: str, *, state: WebhookState, attempts: int, last_error: str | None
    ) -> None:
        hook = self._hook
        with session(self._db):
            changed = (
                hook.update(state=state, attempts=attempts, last_error=last_error)
                .where(hook.dedupe_key == dedupe_key)
                .execute()
            )
        if changed == 0:
            raise StoreError("No webhook event with that dedupe key")

    def webhook_events(self, *, state: WebhookState | None = None) -> Iterator[WebhookEvent]:
        hook = self._hook
        query = hook.select().order_by(hook.received_at, hook.id)
        if state is not None:
            query = query.where(hook.state == state)
        with session(self._db):
            rows = list(query)
        return iter([_webhook(r) for r in rows])

    def purge_before(self, cutoff: datetime) -> int:
        limit = to_utc(cutoff)
        with session(self._db), self._db.atomic():
            ops = self._op.delete().where(self._op.updated_at < limit).execute()
            hooks = self._hook.delete().where(self._hook.received_at < limit).execute()
        return int(ops) + int(hooks)


def _operation(r: Any) -> OperationRecord:
    return OperationRecord(
        reference_id=r.reference_id,
        operation=r.operation,
        status=r.status,
        created_at=from_utc(r.created_at),
        updated_at=from_utc(r.updated_at),
        operation_id=r.operation_id,
        user_id=r.user_id,
        sealed_request=r.sealed_request,
        sealed_result=r.sealed_result,
    )


def _webhook(r: Any) -> WebhookEvent:
    return WebhookEvent(
        dedupe_key=r.dedupe_key,
        sealed_body=r.sealed_body,
        received_at=from_utc(r.received_at),
        state=r.state,
        attempts=r.attempts,
        reference_id=r.reference_id,
        last_error=r.last_error,
    )
