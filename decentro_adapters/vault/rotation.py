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
from typing import Any, Protocol

import peewee as pw

from decentro_core.errors import StoreError

from .fernet import FernetVault
from ..sql.schema import Models, session, write_transaction

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
    """Every column that holds vault tokens (consent IP and user agent: when sealed)."""
    return [
        (models.operation, ("sealed_request", "sealed_result")),
        (models.webhook, ("sealed_body",)),
        (models.consent, ("client_ip", "user_agent")),
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
    """Rotate one batch in one transaction; return its last row id, or -1 when none was left."""
    fields = [getattr(model, c) for c in columns]
    with session(db), write_transaction(db):
        rows = list(model.select(model.id, *fields).where(model.id > after_id).order_by(model.id).limit(batch_size))
        for row in rows:
            _rotate_row(model, row, columns, vault, counts)
    return rows[-1].id if rows else -1


def _rotate_row(
    model: Any, row: Any, columns: tuple[str, ...], vault: FernetVault, counts: dict[str, int]
) -> None:
    changes: dict[str, tuple[str, str]] = {}
    for column in columns:
        token = getattr(row, column)
        if token is None:
            continue
        if vault.is_current(token):
            counts["current"] += 1
            continue
        try:
            changes[column] = (token, vault.rotate(token))
        except StoreError:
            counts["unreadable"] += 1
    if not changes:
        return
    condition = model.id == row.id
    for column, (old, _) in changes.items():
        # A writer that replaced the value meanwhile sealed it with the newest key already.
        condition &= getattr(model, column) == old
    updated = model.update({getattr(model, c): new for c, (_, new) in changes.items()}).where(condition).execute()
    counts["rotated"] += len(changes) if updated else 0
