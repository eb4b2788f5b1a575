"""Audit anchors kept outside the database: the port, and the run that writes them.

A database writer without ``DECENTRO_AUDIT_KEYS`` cannot forge a link, but can still delete
the newest rows, or every row, and leave a chain that verifies on its own. An anchor (the
chain's :class:`~decentro_core.ports.AuditHead`) written somewhere that writer cannot reach
pins the chain: :func:`anchor_chain` verifies the chain against the newest anchor *before* it
writes the next one, so a scheduled run never blesses a cut chain, and ``verify-audit`` reads
the newest anchor from the same place. :mod:`decentro_adapters.audit_anchor` has the sinks (a
file, or an object store through fsspec).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from .ports import AuditHead, AuditSink, AuditVerification

__all__ = ["ANCHOR_URL_VARIABLE", "AnchorRun", "AnchorSink", "anchor_chain"]

ANCHOR_URL_VARIABLE = "DECENTRO_AUDIT_ANCHOR_URL"
log = logging.getLogger("decentro")


class AnchorSink(Protocol):
    """Append-only storage for anchors, outside the database (and out of its writers' reach)."""

    description: str
    """Where anchors go, for messages: a scheme and path, never credentials."""

    def write(self, head: AuditHead) -> None:
        """Keep ``head`` as the newest anchor (a ``StoreError`` if it cannot be kept)."""
        ...

    def latest(self) -> AuditHead | None:
        """The newest anchor kept, or ``None`` before the first."""
        ...


@dataclass(frozen=True)
class AnchorRun:
    """One anchoring: the chain's verification against ``previous`` (the newest anchor before),
    and the head ``written`` (``None`` when the chain broke, is empty, or has not moved)."""

    verification: AuditVerification
    previous: AuditHead | None
    written: AuditHead | None


def anchor_chain(audit: AuditSink, anchors: AnchorSink) -> AnchorRun:
    """Verify the chain against the newest anchor, then write its head as the next one.

    The head is read first, so every row it covers is walked by the verification. A broken
    chain gets no new anchor (that would pin the break as the truth) and an ERROR is logged."""
    previous = anchors.latest()
    head = audit.head()
    result = audit.verify(previous)
    if not result.ok:
        log.error("decentro audit: chain BROKEN at event %s (%s); no anchor written to %s",
                  result.first_broken, result.reason, anchors.description)
        return AnchorRun(result, previous, None)
    if head.count == 0 or head == previous:
        return AnchorRun(result, previous, None)
    anchors.write(head)
    return AnchorRun(result, previous, head)
