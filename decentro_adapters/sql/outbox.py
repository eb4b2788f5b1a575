"""The outcome events' outbox in SQL (:class:`~decentro_core.ports.EventOutbox`).

Rows are inserted by :class:`~decentro_adapters.sql.stores.PeeweeRecordStore` inside the
transaction that changes an operation's status (:meth:`PeeweeOutbox.insert` joins it); the
unique ``event_key`` makes a second insert of the same transition a no-op. Dispatchers claim
due rows with a lease: PostgreSQL ``FOR UPDATE SKIP LOCKED``, so dispatchers in several
processes take disjoint rows without waiting on each other; SQLite a ``BEGIN IMMEDIATE``
transaction. Nothing here is personal data (ids, statuses, handler names), so nothing is sealed.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import peewee as pw

from decentro_core.errors import StoreError
from decentro_core.ports import EventState, OutcomeEvent

from .record_sql import marks
from .schema import Dialect, Models, execute, from_utc, session

__all__ = ["PeeweeOutbox"]

_COLUMNS = (
    "event_key", "type", "reference_id", "operation", "old_status", "new_status", "occurred_at", "operation_id",
    "user_id", "id", "state", "attempts", "next_attempt_at", "delivered_at", "delivered_to", "last_error",
)  # OutcomeEvent's field order, so a row unpacks straight into it
_INSERTED = (*(c for c in _COLUMNS if c != "id"), "leased_until")
_DUE = "\"state\" IN ('pending', 'retrying') AND \"next_attempt_at\" <= ? " \
       "AND (\"leased_until\" IS NULL OR \"leased_until\" <= ?)"


class PeeweeOutbox:
    """Outcome events in ``decentro_outcome_event`` (see the module docstring)."""

    def __init__(self, database: pw.Database, models: Models) -> None:
        self._db = database
        self._dialect = dialect = Dialect.of(database)
        sql = dialect.sql
        table = self.table = models.event._meta.table_name
        names = ", ".join(f'"{c}"' for c in _COLUMNS)
        inserted = ", ".join(f'"{c}"' for c in _INSERTED)
        self._select = f'SELECT {names} FROM "{table}"'
        insert = f'INSERT INTO "{table}" ({inserted}) VALUES ({marks(_INSERTED)}) ON CONFLICT ("event_key") DO NOTHING'
        self._sql_insert = sql(insert + ' RETURNING "id"')
        self.sql_insert = sql(insert)  # joined to a record store's write (no id read back)
        self._sql_get = sql(f'{self._select} WHERE "event_key" = ?')
        self._sql_due = f'SELECT "id" FROM "{table}" WHERE {_DUE}'
        self._sql_finish = sql(
            f'UPDATE "{table}" SET "state" = ?, "attempts" = "attempts" + 1, "delivered_to" = ?, "last_error" = ?, '
            '"next_attempt_at" = ?, "delivered_at" = COALESCE(?, "delivered_at"), "leased_until" = NULL '
            'WHERE "event_key" = ?'
        )
        # One string: an implicit transaction, in which SET LOCAL holds (PostgreSQL).
        self._sql_finish_async = "SET LOCAL synchronous_commit TO OFF; " + self._sql_finish + " RETURNING 1"
        self._sql_requeue = sql(
            f'UPDATE "{table}" SET "state" = \'pending\', "next_attempt_at" = ?, "leased_until" = NULL'
        )

    # -- written with a status change (the record store's transaction) -------------------------

    def insert(self, event: OutcomeEvent) -> OutcomeEvent | None:
        """Insert ``event`` on the connection's open transaction; ``None`` if its key exists."""
        rows = execute(self._db, self._sql_insert, self.values(event)).fetchall()
        return None if not rows else replace(event, id=int(rows[0][0]))

    def values(self, event: OutcomeEvent) -> tuple[Any, ...]:
        when = self._dialect.stored_time
        return (
            event.key, event.type, event.reference_id, event.operation, event.old_status, event.new_status,
            when(event.occurred_at), event.operation_id, event.user_id, event.state, event.attempts,
            when(event.next_attempt_at or event.occurred_at), None, "\n".join(event.delivered_to), event.last_error,
            when(event.leased_until) if event.leased_until is not None else None,
        )

    # -- delivery ------------------------------------------------------------------------------

    def claim(self, now: datetime, *, limit: int, lease: float, key: str | None = None,
              types: Collection[str] | None = None) -> list[OutcomeEvent]:
        if limit <= 0 or (types is not None and not types):
            return []
        when = self._dialect.stored_time
        where, params = self._sql_due, [when(now), when(now)]
        if key is not None:
            where, params = where + ' AND "event_key" = ?', [*params, key]
        if types is not None:
            where, params = where + f' AND "type" IN ({marks(tuple(types))})', [*params, *types]
        where += f' ORDER BY "id" LIMIT {int(limit)}'
        leased_until = now + timedelta(seconds=lease)
        until = when(leased_until)
        db, sql = self._db, self._dialect.sql
        with session(db):
            if self._dialect.sqlite:
                with db.atomic("IMMEDIATE"):
                    ids = [r[0] for r in execute(db, sql(where), params).fetchall()]
                    if not ids:
                        return []
                    execute(db, sql(f'UPDATE "{self.table}" SET "leased_until" = ? WHERE "id" IN ({marks(tuple(ids))})'),
                            [until, *ids])
                    rows = execute(db, sql(f'{self._select} WHERE "id" IN ({marks(tuple(ids))}) ORDER BY "id"'),
                                   ids).fetchall()
            else:
                claim = (f'UPDATE "{self.table}" SET "leased_until" = ? WHERE "id" IN ({where} FOR UPDATE SKIP LOCKED) '
                         f'RETURNING {", ".join(chr(34) + c + chr(34) for c in _COLUMNS)}')
                with db.atomic():
                    rows = execute(db, sql(claim), [until, *params]).fetchall()
                rows.sort(key=lambda r: r[_COLUMNS.index("id")])
        return [replace(_event(r), leased_until=leased_until) for r in rows]

    def finish(self, key: str, *, now: datetime, delivered_to: tuple[str, ...], error: str | None,
               retry_at: datetime | None) -> None:
        state: EventState = "delivered" if error is None else ("retrying" if retry_at is not None else "dead")
        when = self._dialect.stored_time
        values = (state, "\n".join(delivered_to), error, when(retry_at) if retry_at is not None else None,
                  when(now) if error is None else None, key)
        with session(self._db):
            if self._dialect.sqlite:
                changed = execute(self._db, self._sql_finish, values).rowcount
            else:
                # The record of a delivery need not wait for its WAL flush: lost in a crash, the
                # event is delivered again, which handlers already allow for (at least once).
                # One round trip; RETURNING says whether the row was there.
                changed = len(execute(self._db, self._sql_finish_async, values).fetchall())
        if changed == 0:
            raise StoreError("No outcome event with that key")

    def get(self, key: str) -> OutcomeEvent | None:
        with session(self._db):
            row = execute(self._db, self._sql_get, (key,)).fetchone()
        return None if row is None else _event(row)

    def events(self, *, state: EventState | None = None, after_id: int = 0, limit: int = 100) -> list[OutcomeEvent]:
        sql = f'{self._select} WHERE "id" > ?' + (' AND "state" = ?' if state is not None else "")
        params: list[Any] = [after_id] + ([state] if state is not None else [])
        with session(self._db):
            rows = execute(self._db, self._dialect.sql(sql + f' ORDER BY "id" LIMIT {max(0, int(limit))}'),
                           params).fetchall()
        return [_event(r) for r in rows]

    def requeue(self, key: str, *, now: datetime, all_handlers: bool = False) -> bool:
        sql = self._sql_requeue + (', "delivered_to" = \'\'' if all_handlers else "") + ' WHERE "event_key" = ?'
        with session(self._db):
            changed = execute(self._db, self._dialect.sql(sql), (self._dialect.stored_time(now), key)).rowcount
        return bool(changed)

    def purge_sql(self) -> str:
        """Delete events older than a cutoff, whatever their state (the record store's purge
        runs it: their operations go at the same age)."""
        return self._dialect.sql(f'DELETE FROM "{self.table}" WHERE "occurred_at" < ?')


def _event(row: Any) -> OutcomeEvent:
    values = dict(zip(_COLUMNS, row))
    return OutcomeEvent(
        key=values["event_key"], type=values["type"], reference_id=values["reference_id"],
        operation=values["operation"], old_status=values["old_status"], new_status=values["new_status"],
        occurred_at=from_utc(values["occurred_at"]), operation_id=values["operation_id"], user_id=values["user_id"],
        id=int(values["id"]), state=values["state"], attempts=int(values["attempts"]),
        next_attempt_at=_time(values["next_attempt_at"]), delivered_at=_time(values["delivered_at"]),
        delivered_to=tuple(n for n in (values["delivered_to"] or "").split("\n") if n),
        last_error=values["last_error"],
    )


def _time(value: datetime | str | None) -> datetime | None:
    return None if value is None else from_utc(value)
