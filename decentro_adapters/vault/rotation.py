"""Encryption keys: generate one, and re-seal stored data under the newest key.

Rotation, step by step (``docs/persistence.md`` has the commands):

1. generate a key and put it FIRST: ``DECENTRO_ENCRYPTION_KEYS=new,old``; deploy. New data
   is sealed with ``new``; old data still opens with ``old``;
2. run :func:`rotate_sealed_values` (``flask decentro rotate-keys``) until it reports
   ``complete`` with ``unreadable == 0``. It works in batches, each its own transaction, so
   it may be interrupted and simply run again: values already under ``new`` are skipped;
3. wait one cache TTL (cached results sealed with ``old`` expire), then drop ``old``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import peewee as pw

from decentro_core.errors import StoreError

from .fernet import FernetVault
from ..sql.schema import Dialect, Models, execute, session, write_transaction

__all__ = ["RotationReport", "generate_key", "rotate_sealed_values", "sealed_columns"]


class Tables(Protocol):
    """Where the sealed columns live: ``Stores``, or the service's ``PeeweeRecordStore``."""

    database: pw.Database
    models: Models


def generate_key() -> str:
    """A fresh Fernet key for ``DECENTRO_ENCRYPTION_KEYS``."""
    return FernetVault.generate_key()


@dataclass(frozen=True)
class RotationReport:
    """What one run did. ``unreadable`` values open with no configured key: do not drop keys."""

    rotated: int = 0
    current: int = 0
    unreadable: int = 0
    batches: int = 0
    complete: bool = True


def sealed_columns(models: Models) -> list[tuple[Any, tuple[str, ...]]]:
    """Every column that holds vault tokens (consent IP and user agent: when sealed; consent text:
    once sealed, so run ``flask decentro seal-consents`` first or its clear rows count as unreadable)."""
    return [
        (models.operation, ("sealed_request", "sealed_result")),
        (models.webhook, ("sealed_body",)),
        (models.consent, ("text", "client_ip", "user_agent")),
    ]


def rotate_sealed_values(
    stores: Tables, vault: FernetVault, *, batch_size: int = 200, max_batches: int | None = None
) -> RotationReport:
    """Re-seal every stored token under ``vault``'s first key, ``batch_size`` rows at a time.

    ``max_batches`` stops early (``complete=False``); running again continues the work.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    counts = {"rotated": 0, "current": 0, "unreadable": 0}
    batches = 0
    for model, columns in sealed_columns(stores.models):
        last_id = 0
        while True:
            if max_batches is not None and batches >= max_batches:
                return RotationReport(**counts, batches=batches, complete=False)
            last_id = _rotate_batch(stores.database, model, columns, vault, last_id, batch_size, counts)
            if last_id < 0:
                break
            batches += 1
    return RotationReport(**counts, batches=batches, complete=True)


def _rotate_batch(
    db: pw.Database,
    model: Any,
    columns: tuple[str, ...],
    vault: FernetVault,
    after_id: int,
    batch_size: int,
    counts: dict[str, int],
) -> int:
    """Rotate one batch in one transaction; return its last row id, or -1 when none was left.

    One ``SELECT`` and one write for the batch: PostgreSQL ``UPDATE ... FROM (VALUES ...)``,
    SQLite ``executemany``. Each column is replaced only if it still holds the token that was
    read (a writer that replaced it meanwhile sealed it with the newest key already).
    """
    dialect = Dialect.of(db)
    table = model._meta.table_name
    with session(db), write_transaction(db):
        rows = execute(db, _select_sql(dialect, table, columns), (after_id, batch_size)).fetchall()
        changed: list[tuple[int, list[tuple[str | None, str | None]]]] = []
        for row_id, *tokens in rows:
            pairs = [_rotated(token, vault, counts) for token in tokens]
            if any(old != new for old, new in pairs):
                changed.append((row_id, pairs))
        if changed:
            counts["rotated"] += (_write_sqlite if dialect.sqlite else _write_postgres)(db, table, columns, changed)
    return int(rows[-1][0]) if rows else -1


def _rotated(token: str | None, vault: FernetVault, counts: dict[str, int]) -> tuple[str | None, str | None]:
    """``(old, new)``: ``new`` is ``old`` when there is nothing to do (empty, current, unreadable)."""
    if token is None:
        return token, token
    if vault.is_current(token):
        counts["current"] += 1
        return token, token
    try:
        return token, vault.rotate(token)
    except StoreError:
        counts["unreadable"] += 1
        return token, token


@lru_cache(maxsize=64)
def _select_sql(dialect: Dialect, table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    return dialect.sql(f'SELECT "id", {names} FROM "{table}" WHERE "id" > ? ORDER BY "id" LIMIT ?')


@lru_cache(maxsize=64)
def _postgres_update_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    """``UPDATE ... FROM (VALUES ...)`` for ``rows`` rows, compiled once per batch length."""
    sets = ", ".join(f'"{c}" = CASE WHEN t."{c}" IS NOT DISTINCT FROM v.o{n} THEN v.n{n} ELSE t."{c}" END'
                     for n, c in enumerate(columns))
    rotated = ", ".join(f'(t."{c}" IS NOT DISTINCT FROM v.n{n} AND v.n{n} IS DISTINCT FROM v.o{n})'
                        for n, c in enumerate(columns))
    one = "(%s::bigint" + ", %s::text, %s::text" * len(columns) + ")"
    names = ", ".join(f"o{n}, n{n}" for n in range(len(columns)))
    return (f'UPDATE "{table}" AS t SET {sets} FROM (VALUES {", ".join([one] * rows)}) AS v(id, {names}) '
            f'WHERE t."id" = v.id RETURNING {rotated}')


def _write_postgres(db: pw.Database, table: str, columns: tuple[str, ...],
                    changed: list[tuple[int, list[tuple[str | None, str | None]]]]) -> int:
    params = [value for row_id, pairs in changed for value in (row_id, *(v for pair in pairs for v in pair))]
    returned = execute(db, _postgres_update_sql(table, columns, len(changed)), params).fetchall()
    return sum(bool(flag) for row in returned for flag in row)


def _write_sqlite(db: pw.Database, table: str, columns: tuple[str, ...],
                  changed: list[tuple[int, list[tuple[str | None, str | None]]]]) -> int:
    """``executemany``; the batch's ``BEGIN IMMEDIATE`` has held the write lock since the read, so
    no other writer can have replaced a value and every changed column is rotated."""
    sets = ", ".join(f'"{c}" = CASE WHEN "{c}" IS ? THEN ? ELSE "{c}" END' for c in columns)
    params = [(*(v for pair in pairs for v in pair), row_id) for row_id, pairs in changed]
    db.cursor().executemany(f'UPDATE "{table}" SET {sets} WHERE "id" = ?', params)  # type: ignore[no-untyped-call]
    return sum(old != new for _, pairs in changed for old, new in pairs)
