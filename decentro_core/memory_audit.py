"""The in-memory audit sink: the embedded default and the contract tests' fake.

It links, verifies and re-signs exactly as :class:`decentro_adapters.sql.audit.PeeweeAuditSink`
does (:mod:`decentro_core.audit`'s rule), so the contract tests in ``tests/adapters`` hold it to
the same chain. Row ids count from 1.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .audit import AuditKeyring, ChainResign, ChainWalk, ResignReport, key_id_of
from .ports import AuditEvent, AuditHead, AuditVerification

__all__ = ["MemoryAuditSink"]


class MemoryAuditSink:
    """Append-only list with the same keyed chain as the database sink (row ids from 1).

    Without ``keyring`` it signs with an ephemeral key: the list lives no longer than the process.
    """

    def __init__(self, keyring: AuditKeyring | None = None) -> None:
        self.keyring = keyring or AuditKeyring.ephemeral()
        self.rows: list[tuple[AuditEvent, str]] = []
        self._guard = threading.Lock()

    def append(self, event: AuditEvent) -> None:
        with self._guard:
            previous = self.rows[-1][1] if self.rows else ""
            self.rows.append((event, self.keyring.link(previous, event)))

    def head(self) -> AuditHead:
        with self._guard:
            link = self.rows[-1][1] if self.rows else ""
            return AuditHead(count=len(self.rows), last_id=len(self.rows), link=link, key_id=key_id_of(link))

    @property
    def events(self) -> list[AuditEvent]:
        return [event for event, _ in self.rows]

    def verify(self, anchor: AuditHead | None = None) -> AuditVerification:
        walk = ChainWalk(self.keyring, anchor)
        with self._guard:
            rows = list(self.rows)
        for row_id, (event, stored) in enumerate(rows, start=1):
            broken = walk.visit(row_id, event, stored)
            if broken is not None:
                return broken
        return walk.finish()

    def resign(self, *, anchor: AuditHead | None = None, accept_legacy: bool = False,
               note: Callable[[int], AuditEvent] | None = None) -> ResignReport:
        """Re-sign every link under the signing key once the chain verifies (see the SQL sink)."""
        resign = ChainResign(self.keyring, anchor, accept_legacy=accept_legacy)
        with self._guard:  # appends wait, as they wait on the SQL sink's lock
            links: list[str] = []
            for row_id, (event, stored) in enumerate(self.rows, start=1):
                broken = resign.visit(row_id, event, stored)
                if broken is not None:
                    return resign.report(broken)
                links.append(resign.link)
            report = resign.report(resign.walk.finish())
            if not report.ok:
                return report
            self.rows[:] = [(event, link) for (event, _), link in zip(self.rows, links)]
            if note is not None and report.resigned:
                event = note(report.resigned)
                self.rows.append((event, self.keyring.link(resign.link, event)))
        return report
