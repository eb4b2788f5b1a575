"""The record store's SQL, written by hand and compiled once per store for its dialect.

The hot store methods run these strings directly (``schema.execute``): peewee's query builder
cost several times what SQLite spends executing the statement. The operation upsert merges
field by field in the database (see :func:`merge_assignments`).
"""

from __future__ import annotations

from decentro_core.ports import SETTLED_STATUSES, UNRESOLVED_STATUS

from .schema import Dialect, Models

__all__ = ["OPERATION_COLUMNS", "RecordSql", "WEBHOOK_COLUMNS", "marks", "merge_assignments"]

OPERATION_COLUMNS = (
    "reference_id", "operation", "status", "created_at", "updated_at",
    "operation_id", "user_id", "sealed_request", "sealed_result",
)  # OperationRecord's field order, so a row unpacks straight into it
WEBHOOK_COLUMNS = ("dedupe_key", "sealed_body", "received_at", "state", "attempts", "reference_id", "last_error")


def marks(columns: tuple[str, ...]) -> str:
    return ", ".join("?" for _ in columns)


def merge_assignments(table: str) -> str:
    """The upsert's SET clause: a field-wise merge, so no write undoes a newer one.

    Evaluated by the database on the locked row (PostgreSQL) or under the write lock (SQLite),
    so there is no read-modify-write race. ``stored`` is the row, ``new`` the written record:

    * a settled status (``SETTLED_STATUSES``) is final, and ``UNRESOLVED_STATUS`` yields only to
      a settled one;
    * a write whose status differs from a settled stored one (a stale copy: the creating
      call's late answer, a status check) changes no value the settled record has: its
      ``operation_id``, ``sealed_result`` and the rest survive; it only fills what is still
      NULL (the creating call's answer after a callback that settled the row first);
    * otherwise a non-null field is never replaced by NULL (``COALESCE``);
    * ``created_at`` is the first write's; ``updated_at`` never goes backwards.
    """
    final = ", ".join(f"'{status}'" for status in sorted(SETTLED_STATUSES))
    stored = f'"{table}"'
    # ports.replaces_status, in SQL: a settled status is final, an unresolved one yields only
    # to a settled one
    frozen = (f'(excluded."status" <> {stored}."status" AND ({stored}."status" IN ({final}) OR '
              f'({stored}."status" = \'{UNRESOLVED_STATUS}\' AND excluded."status" NOT IN ({final}))))')

    def merged(column: str) -> str:
        if column == "created_at":
            return f'{stored}."{column}"'
        if column == "updated_at":  # SQLite compares peewee's ISO text, which sorts by time
            return (f'CASE WHEN excluded."{column}" > {stored}."{column}" '
                    f'THEN excluded."{column}" ELSE {stored}."{column}" END')
        new = f'excluded."{column}"'
        if column not in _NULLABLE:
            return f"CASE WHEN {frozen} THEN {stored}.\"{column}\" ELSE {new} END"
        kept = f'COALESCE({stored}."{column}", {new})'
        return f"CASE WHEN {frozen} THEN {kept} ELSE COALESCE({new}, {stored}.\"{column}\") END"

    return ", ".join(f'"{c}" = {merged(c)}' for c in OPERATION_COLUMNS if c != "reference_id")


_NULLABLE = frozenset({"operation_id", "user_id", "sealed_request", "sealed_result"})


class RecordSql:
    """The record store's statements, compiled once per store for its database's dialect."""

    def __init__(self, dialect: Dialect, models: Models) -> None:
        op, hook = models.operation._meta.table_name, models.webhook._meta.table_name
        sql = dialect.sql
        ops = ", ".join(f'"{c}"' for c in OPERATION_COLUMNS)
        hooks = ", ".join(f'"{c}"' for c in WEBHOOK_COLUMNS)
        replaced = merge_assignments(op)
        # SQLite has no row locks; its BEGIN IMMEDIATE already excludes every other writer.
        lock = "" if dialect.sqlite else " FOR UPDATE"
        self.upsert = sql(
            f'INSERT INTO "{op}" ({ops}) VALUES ({marks(OPERATION_COLUMNS)}) '
            f'ON CONFLICT ("reference_id") DO UPDATE SET {replaced}'
        )
        self.by_reference = sql(f'SELECT {ops} FROM "{op}" WHERE "reference_id" = ?')
        self.by_operation_id = sql(f'SELECT {ops} FROM "{op}" WHERE "operation_id" = ? ORDER BY "id" LIMIT 1')
        self.by_reference_locked = self.by_reference + lock
        self.status_locked = sql(f'SELECT "status" FROM "{op}" WHERE "reference_id" = ?{lock}')
        # PostgreSQL's settle in two round trips (PeeweeRecordStore.save_outcome): lock the row,
        # then (after the audit locks) read its status with the chain's last link.
        self.begin_lock_row = sql(f'BEGIN; SELECT 1 FROM "{op}" WHERE "reference_id" = ? FOR UPDATE; ')
        self._status_of = sql(f'(SELECT "status" FROM "{op}" WHERE "reference_id" = ?)')
        # ... and a callback's, in the documented lock order: the operation, then the event.
        self.begin_lock_callback = sql(
            f'BEGIN; SELECT 1 FROM "{op}" WHERE "reference_id" = ? FOR UPDATE; '
            f'SELECT 1 FROM "{hook}" WHERE "dedupe_key" = ? FOR UPDATE; '
        )
        self._callback_read = sql(
            f'SELECT {ops}, (SELECT "state" FROM "{hook}" WHERE "dedupe_key" = ?), ({{last}}) '
            f'FROM "{op}" WHERE "reference_id" = ?'
        )
        self.unsettled = sql(f'SELECT {ops} FROM "{op}" WHERE "operation" = ? AND "status" = \'PENDING\' '
                             'AND "created_at" < ?')
        self.unsettled_after = sql(' AND ("created_at" > ? OR ("created_at" = ? AND "reference_id" > ?))')
        self.unsettled_order = ' ORDER BY "created_at", "reference_id"'
        self.by_operation_id_locked = self.by_operation_id + lock
        self.add_hook = sql(
            f'INSERT INTO "{hook}" ({hooks}) VALUES ({marks(WEBHOOK_COLUMNS)}) ON CONFLICT ("dedupe_key") DO NOTHING'
        )
        self.get_hook = sql(f'SELECT {hooks} FROM "{hook}" WHERE "dedupe_key" = ?')
        self.update_hook = sql(f'UPDATE "{hook}" SET "state" = ?, "attempts" = ?, "last_error" = ? WHERE "dedupe_key" = ?')
        self.hook_processed = sql(
            f'UPDATE "{hook}" SET "state" = \'processed\', "attempts" = "attempts" + 1, "last_error" = NULL '
            'WHERE "dedupe_key" = ?'
        )
        # PostgreSQL: both writes in one round trip (psycopg2 sends the two statements together).
        self.save_and_mark = None if dialect.sqlite else f"{self.upsert}; {self.hook_processed}"
        self.hook_state = sql(f'SELECT "state" FROM "{hook}" WHERE "dedupe_key" = ?')
        # Keyset pages for webhook_events: (received_at, id) after the last row seen, on the
        # received_at index, so a page costs the same at the start and at the end of the table.
        listed = f'SELECT {hooks}, "received_at", "id" FROM "{hook}"'
        after = '("received_at" > ? OR ("received_at" = ? AND "id" > ?))'
        page = ' ORDER BY "received_at", "id" LIMIT ?'
        self.hooks_page = sql(f"{listed} WHERE {after}{page}")
        self.hooks_page_in_state = sql(f'{listed} WHERE "state" = ? AND {after}{page}')
        self.hooks_first_page = sql(f"{listed}{page}")
        self.hooks_first_page_in_state = sql(f'{listed} WHERE "state" = ?{page}')
        self.hook_position = sql(f'SELECT "received_at", "id" FROM "{hook}" WHERE "dedupe_key" = ?')
        self.purge_ops = sql(f'DELETE FROM "{op}" WHERE "updated_at" < ?')
        self.purge_hooks = sql(f'DELETE FROM "{hook}" WHERE "received_at" < ?')

    def status_and_link(self, last_link: str) -> str:
        """One row: the stored status of a reference id (one parameter) and ``last_link``'s value."""
        return f"SELECT {self._status_of}, ({last_link})"

    def callback_read(self, last_link: str) -> str:
        """The operation's row, the event's state and ``last_link``'s value (two parameters)."""
        return self._callback_read.replace("{last}", last_link)
