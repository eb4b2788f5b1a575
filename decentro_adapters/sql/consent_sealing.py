"""Seal the consent texts stored in clear before schema version 3 (``flask decentro seal-consents``).

Schema version 3 adds ``decentro_consent.text_fingerprint``; rows written before it hold their
text in clear and no fingerprint. A migration holds no vault key, so sealing them is this
explicit step, run once every worker serves the new code (an older worker still writes clear
rows):

1. ``flask decentro db upgrade`` (the column; serving code refuses an older schema);
2. deploy the new code everywhere;
3. ``flask decentro seal-consents`` until it reports ``complete=True`` and ``remaining=0``.

Each batch is one transaction. A row is rewritten only while its fingerprint is still NULL, in
the same statement, so two runs at once, or a run interrupted and started again, never seal a
text twice; ``--refresh`` also recomputes fingerprints that are not the current key's (after a
key rotation dropped the oldest ``DECENTRO_ENCRYPTION_KEYS`` entry, from which the fingerprint
key is derived).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import peewee as pw

from decentro_core.consents import text_fingerprint
from decentro_core.ports import Vault

from .schema import Dialect, Models, execute, session, write_transaction

__all__ = ["ConsentSealReport", "seal_consent_texts"]


class Tables(Protocol):
    database: pw.Database
    models: Models


@dataclass(frozen=True)
class ConsentSealReport:
    """What one run did; ``remaining`` counts clear texts still there when it stopped."""

    sealed: int = 0
    refreshed: int = 0
    batches: int = 0
    remaining: int = 0
    complete: bool = True


def seal_consent_texts(stores: Tables, vault: Vault, *, batch_size: int = 200, max_batches: int | None = None,
                       refresh: bool = False) -> ConsentSealReport:
    """Seal every clear consent text (and fingerprint it), ``batch_size`` rows per transaction.

    ``max_batches`` stops early (``complete=False``); running again continues where it stopped.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    db, table = stores.database, stores.models.consent._meta.table_name
    sql = _Sql(Dialect.of(db), table)
    counts, batches, last_id = {"sealed": 0, "refreshed": 0}, 0, 0
    while max_batches is None or batches < max_batches:
        with session(db), write_transaction(db):
            rows = execute(db, sql.select_all if refresh else sql.select_clear, (last_id, batch_size)).fetchall()
            for row_id, text, fingerprint in rows:
                _seal_row(db, sql, vault, row_id, text, fingerprint, counts)
        if not rows:
            break
        batches, last_id = batches + 1, int(rows[-1][0])
    with session(db):
        remaining = int(execute(db, sql.count_clear).fetchone()[0])
    stopped = max_batches is not None and batches >= max_batches
    complete = not stopped or (not refresh and remaining == 0)
    return ConsentSealReport(**counts, batches=batches, remaining=remaining, complete=complete)


def _seal_row(db: pw.Database, sql: _Sql, vault: Vault, row_id: int, text: str, fingerprint: str | None,
              counts: dict[str, int]) -> None:
    if fingerprint is None:
        params: tuple[Any, ...] = (vault.seal(text.encode("utf-8")), text_fingerprint(vault, text), row_id)
        counts["sealed"] += execute(db, sql.seal, params).rowcount
        return
    current = text_fingerprint(vault, vault.open(text).decode("utf-8"))
    if current != fingerprint:
        counts["refreshed"] += execute(db, sql.refresh, (current, row_id, fingerprint)).rowcount


class _Sql:
    def __init__(self, dialect: Dialect, table: str) -> None:
        page = 'AND "id" > ? ORDER BY "id" LIMIT ?'
        self.select_clear = dialect.sql(
            f'SELECT "id", "text", "text_fingerprint" FROM "{table}" WHERE "text_fingerprint" IS NULL {page}')
        self.select_all = dialect.sql(f'SELECT "id", "text", "text_fingerprint" FROM "{table}" WHERE 1 = 1 {page}')
        # Only while still clear: a concurrent run that sealed it first wins, nothing is sealed twice.
        self.seal = dialect.sql(
            f'UPDATE "{table}" SET "text" = ?, "text_fingerprint" = ? WHERE "id" = ? AND "text_fingerprint" IS NULL')
        self.refresh = dialect.sql(f'UPDATE "{table}" SET "text_fingerprint" = ? WHERE "id" = ? AND "text_fingerprint" = ?')
        self.count_clear = f'SELECT count(*) FROM "{table}" WHERE "text_fingerprint" IS NULL'
