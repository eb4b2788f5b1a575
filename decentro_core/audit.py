"""The audit log's chain rule: each link is an HMAC over the previous link and the entry's fields.

Every :class:`~decentro_core.ports.AuditSink` (the in-memory one and the SQL one) links its
entries with :meth:`AuditKeyring.link` and walks them with :class:`ChainWalk`, so one rule
verifies any of them. The key lives outside the database (``DECENTRO_AUDIT_KEYS``): someone who
can write to the table but does not hold the key cannot recompute the links after an edit,
which a plain hash allowed. A link reads ``<key id>:<MAC>``, so verification knows which key
made it, and keys rotate like the encryption keys (the first signs, all verify).

Links written before keys existed are plain SHA-256 (:func:`chain_hash`, 64 hex digits). Anyone
can recompute those, so verification refuses them: a log rewritten as plain SHA-256 by someone
without the key must not read "intact". :class:`ChainResign` re-signs a chain under the signing
key after walking it under the old rules (``accept_legacy``: plain links only before the first
keyed one), which is how legacy rows are migrated and how a retired key's links are replaced.
Deleting the newest rows leaves a valid shorter chain: only an anchor
(:class:`~decentro_core.ports.AuditHead` kept elsewhere, :mod:`decentro_core.anchors`) finds that.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .demo import warn_once
from .errors import ConfigurationError
from .ports import AuditEvent, AuditHead, AuditVerification

if TYPE_CHECKING:
    from .settings import Settings

__all__ = [
    "AUDIT_KEYS_VARIABLE",
    "LEGACY_KEY_ID",
    "MIN_AUDIT_KEY_LENGTH",
    "UNKEYED_LINK",
    "AuditKeyring",
    "ChainResign",
    "ChainWalk",
    "ResignReport",
    "chain_hash",
    "generate_audit_key",
    "key_id_of",
    "resign_event",
]

AUDIT_KEYS_VARIABLE = "DECENTRO_AUDIT_KEYS"
LEGACY_KEY_ID = "sha256"
"""The key id reported for a plain SHA-256 link (written before audit keys existed)."""
MIN_AUDIT_KEY_LENGTH = 32
"""Characters; :func:`generate_audit_key` gives 43 (32 random bytes, URL-safe base64)."""


def _message(previous: str, event: AuditEvent) -> bytes:
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
    return "\x1f".join(parts).encode()


def chain_hash(previous: str, event: AuditEvent) -> str:
    """The legacy link: plain sha256 over the same fields. Anyone can recompute it, which is why
    links are keyed; only a re-signing walk (``accept_legacy``) accepts it, before the first keyed link."""
    return hashlib.sha256(_message(previous, event)).hexdigest()


def generate_audit_key() -> str:
    """A new key for ``DECENTRO_AUDIT_KEYS``: 32 random bytes as URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def key_id_of(link: str) -> str:
    """Which key made a stored link: its prefix, or :data:`LEGACY_KEY_ID` for a plain hash."""
    if not link:
        return ""
    return link.split(":", 1)[0] if ":" in link else LEGACY_KEY_ID


def _derive(key: str, purpose: bytes) -> bytes:
    return hmac.new(key.encode(), b"decentro audit " + purpose, hashlib.sha256).digest()


class AuditKeyring:
    """The audit keys: the first signs new links, every one verifies the links it made.

    Each key is known by an 8-hex-digit id derived from it (an HMAC of a constant, which says
    nothing about the key); the MAC key is derived separately. Keys are never in ``repr``.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ConfigurationError(f"{AUDIT_KEYS_VARIABLE} is empty: give at least one key")
        for number, key in enumerate(keys, start=1):
            if len(key) < MIN_AUDIT_KEY_LENGTH:
                raise ConfigurationError(
                    f"{AUDIT_KEYS_VARIABLE}: key number {number} is shorter than {MIN_AUDIT_KEY_LENGTH} "
                    "characters (make one with `flask decentro gen-key --audit`)"
                )
        derived = [(_derive(key, b"key id").hex()[:8], _derive(key, b"chain link")) for key in keys]
        self._keys = dict(derived)
        if len(self._keys) != len(derived):
            raise ConfigurationError(f"{AUDIT_KEYS_VARIABLE} lists the same key twice")
        self.signing_key_id = derived[0][0]

    @classmethod
    def ephemeral(cls) -> AuditKeyring:
        """A random key for this process only: links it makes do not verify after a restart."""
        return cls([generate_audit_key()])

    @classmethod
    def from_settings(cls, settings: Settings) -> AuditKeyring:
        """``DECENTRO_AUDIT_KEYS``; in mock mode without keys, an ephemeral key and a WARNING."""
        if settings.audit_keys:
            return cls(settings.audit_keys)
        if not settings.use_mocks:
            raise ConfigurationError(f"USE_MOCKS=false needs {AUDIT_KEYS_VARIABLE}")
        warn_once(
            "ephemeral-audit-key",
            "%s is not set: audit links are signed with an EPHEMERAL key, so the stored audit chain will "
            "NOT verify after a restart. Set a key (`flask decentro gen-key --audit`) for anything but a demo.",
            AUDIT_KEYS_VARIABLE,
        )
        return cls.ephemeral()

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def link(self, previous: str, event: AuditEvent) -> str:
        """The next link, made under the signing key: ``<key id>:<base64url HMAC-SHA256>``."""
        return self._link(self.signing_key_id, self._keys[self.signing_key_id], previous, event)

    def check(self, previous: str, event: AuditEvent, stored: str) -> str | None:
        """``None`` if ``stored`` is the right link for ``event`` after ``previous``; else why not."""
        key_id = key_id_of(stored)
        if key_id == LEGACY_KEY_ID:
            expected = chain_hash(previous, event)
        elif key_id in self._keys:
            expected = self._link(key_id, self._keys[key_id], previous, event)
        else:
            return "made under a key not in DECENTRO_AUDIT_KEYS"
        return None if hmac.compare_digest(expected.encode(), stored.encode()) else "hash mismatch"

    @staticmethod
    def _link(key_id: str, key: bytes, previous: str, event: AuditEvent) -> str:
        mac = hmac.new(key, _message(previous, event), hashlib.sha256).digest()
        return f"{key_id}:{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    def __repr__(self) -> str:
        return f"AuditKeyring(key_ids={self.key_ids!r})"


class ChainWalk:
    """One verification, row by row in id order, so a sink can feed it in batches.

    Plain SHA-256 links fail, unless ``accept_legacy`` (a re-signing walk), and then only before
    the first keyed one. With an ``anchor``, the row with the anchor's id must be there, be the
    ``count``-th, and hold the anchor's link; a chain that ends before it was cut.
    """

    def __init__(self, keyring: AuditKeyring, anchor: AuditHead | None = None, *,
                 accept_legacy: bool = False) -> None:
        self._keyring = keyring
        self._anchor = anchor if anchor is not None and anchor.count > 0 else None
        self._accept_legacy = accept_legacy
        self._previous = ""
        self._keyed = False
        self.checked = 0
        self.legacy = 0
        self.last_id = 0

    def visit(self, row_id: int, event: AuditEvent | None, stored: str) -> AuditVerification | None:
        """Check one row (``event`` is ``None`` when the row cannot be read); a result if it breaks."""
        anchor = self._anchor
        if anchor is not None and self.last_id < anchor.last_id < row_id:
            return self._broken(anchor.last_id, "the anchored row is missing")
        self.checked += 1
        legacy = key_id_of(stored) == LEGACY_KEY_ID
        if event is None:
            reason: str | None = "unreadable row"
        elif legacy and self._keyed:
            reason = "a plain SHA-256 link after a keyed link"
        elif legacy and not self._accept_legacy:
            reason = UNKEYED_LINK
        else:
            reason = self._keyring.check(self._previous, event, stored)
        if reason is None and anchor is not None and row_id == anchor.last_id:
            same = hmac.compare_digest(stored.encode(), anchor.link.encode())
            reason = None if same and self.checked == anchor.count else "does not match the anchor"
        if reason is not None:
            return self._broken(row_id, reason)
        self.legacy += legacy
        self._keyed = self._keyed or not legacy
        self._previous, self.last_id = stored, row_id
        return None

    def finish(self) -> AuditVerification:
        """After the last row: intact, unless the chain ends before the anchor (rows deleted)."""
        if self._anchor is not None and self.last_id < self._anchor.last_id:
            return self._broken(self._anchor.last_id, "the chain ends before the anchor (newest rows deleted)")
        return AuditVerification(ok=True, checked=self.checked, legacy=self.legacy)

    def _broken(self, row_id: int, reason: str) -> AuditVerification:
        return AuditVerification(ok=False, checked=self.checked, first_broken=row_id, reason=reason,
                                 legacy=self.legacy)


UNKEYED_LINK = ("an unkeyed (plain SHA-256) link: rows from before DECENTRO_AUDIT_KEYS need "
                "`flask decentro migrate-audit-legacy`; otherwise the log was rewritten without the key")


@dataclass(frozen=True)
class ResignReport:
    """What a re-signing did: ``verification`` of the chain as it was (nothing is written unless
    it is ok), how many links changed, and the key that signs them now."""

    verification: AuditVerification
    resigned: int
    key_id: str

    @property
    def ok(self) -> bool:
        return self.verification.ok


class ChainResign:
    """Re-sign a chain row by row: each stored link is checked first (:class:`ChainWalk`, the
    keyring's every key, legacy links only with ``accept_legacy``), then replaced by the signing
    key's link over the *new* previous link. Feed rows in id order; :attr:`link` is the row's
    new link after :meth:`visit`, and the chain's new tail after the last row."""

    def __init__(self, keyring: AuditKeyring, anchor: AuditHead | None = None, *,
                 accept_legacy: bool = False) -> None:
        self.walk = ChainWalk(keyring, anchor, accept_legacy=accept_legacy)
        self._keyring = keyring
        self.link = ""
        self.resigned = 0

    def visit(self, row_id: int, event: AuditEvent | None, stored: str) -> AuditVerification | None:
        """Check the row under the old rules; a result if it breaks, else :attr:`link` is its new link."""
        broken = self.walk.visit(row_id, event, stored)
        if broken is not None or event is None:
            return broken
        self.link = self._keyring.link(self.link, event)
        self.resigned += self.link != stored
        return None

    def report(self, verification: AuditVerification) -> ResignReport:
        resigned = self.resigned if verification.ok else 0
        return ResignReport(verification=verification, resigned=resigned, key_id=self._keyring.signing_key_id)


def resign_event(action: str, *, key_id: str, resigned: int, at: datetime) -> AuditEvent:
    """The audit row a re-signing run appends about itself (``action``: which command ran)."""
    return AuditEvent(actor="cli", action=action, subject="audit-chain", outcome="SUCCESS", occurred_at=at,
                      operation_id=f"key:{key_id}", reference_id=f"resigned:{resigned}")
