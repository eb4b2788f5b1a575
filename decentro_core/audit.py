"""The audit log's chain rule: each entry's hash covers the previous hash and its own fields.

Every :class:`~decentro_core.ports.AuditSink` (the in-memory one and the SQL one) links its
entries with :func:`chain_hash`, so one verification walks any of them, and an entry edited
or removed in the middle breaks every link after it.
"""

from __future__ import annotations

import hashlib

from .ports import AuditEvent

__all__ = ["chain_hash"]


def chain_hash(previous: str, event: AuditEvent) -> str:
    """The audit chain's link: sha256 over the previous hash and this event's fields."""
    parts = [
        previous,
        event.actor,
        event.action,
        event.subject,
        event.outcome,
        event.occurred_at.isoformat(),
        event.operation_id or "",
        event.reference_id or "",
    ]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
