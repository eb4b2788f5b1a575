"""Consent text at rest: sealed by the vault, findable by a keyed fingerprint.

A consent's text is what the user was shown, and templates often carry the customer's own
name or PAN ("I, Ravi Kumar, PAN ABCDE1234F, agree..."): it is personal data, so every
:class:`~decentro_core.ports.ConsentStore` seals it with the vault like the client IP and user
agent. What must stay provable is *which notice* was shown: each record also keeps
:func:`text_fingerprint`, an HMAC-SHA256 of the exact text under the vault's fingerprint key
(derived from ``DECENTRO_ENCRYPTION_KEYS``), which :meth:`ConsentStore.for_text` finds again
from the notice's text. Keyed, so a table dump does not let anyone test guesses of a name or a
PAN against it.

:class:`MemoryConsentStore` is the in-memory store (the embedded default and the test fake).
"""

from __future__ import annotations

import threading
from dataclasses import replace

from .ports import ConsentListing, ConsentRecord, Vault

__all__ = ["MemoryConsentStore", "text_fingerprint"]

_DOMAIN = "consent-text|"  # the vault's fingerprints also key caches and idempotency: never the same input


def text_fingerprint(vault: Vault, text: str) -> str:
    """The keyed fingerprint of a consent text (64 hex digits), as the stores keep it."""
    return vault.fingerprint(_DOMAIN + text)


class MemoryConsentStore:
    """Consents in process memory, text (and IP, user agent) sealed with ``vault``."""

    def __init__(self, *, vault: Vault | None = None) -> None:
        if vault is None:
            from .memory import MemoryVault  # memory.py builds this store: imported when used

            vault = MemoryVault()
        self._vault = vault
        self._rows: list[tuple[ConsentRecord, str]] = []  # (sealed copy, text fingerprint)
        self._guard = threading.Lock()

    def record(self, consent: ConsentRecord) -> str:
        sealed = replace(consent, text=self._seal(consent.text) or "", client_ip=self._seal(consent.client_ip),
                         user_agent=self._seal(consent.user_agent))
        with self._guard:
            self._rows.append((sealed, text_fingerprint(self._vault, consent.text)))
            return str(len(self._rows))

    @property
    def records(self) -> list[ConsentRecord]:
        """Every record as given (opened), oldest first: for tests."""
        with self._guard:
            rows = list(self._rows)
        return [self._opened(sealed) for sealed, _ in rows]

    def for_user(self, user_id: str) -> list[ConsentRecord]:
        return [c for c in self.records if c.user_id == user_id]

    def consents_page(self, *, before: int | None = None, limit: int = 50) -> list[ConsentListing]:
        return self._listings(before, limit, None)

    def for_text(self, text: str, *, before: int | None = None, limit: int = 50) -> list[ConsentListing]:
        return self._listings(before, limit, text_fingerprint(self._vault, text))

    def _listings(self, before: int | None, limit: int, fingerprint: str | None) -> list[ConsentListing]:
        with self._guard:
            numbered = list(enumerate(self._rows, start=1))
        chosen = [(i, row) for i, row in reversed(numbered)
                  if (before is None or i < before) and (fingerprint is None or row[1] == fingerprint)]
        return [ConsentListing(id=i, user_id=c.user_id, operation=c.operation, purpose=c.purpose,
                               given_at=c.given_at, has_client_ip=c.client_ip is not None,
                               has_user_agent=c.user_agent is not None, text_fingerprint=fp)
                for i, (c, fp) in chosen[:limit]]

    def _seal(self, value: str | None) -> str | None:
        return None if value is None else self._vault.seal(value.encode("utf-8"))

    def _open(self, value: str | None) -> str | None:
        return None if value is None else self._vault.open(value).decode("utf-8")

    def _opened(self, sealed: ConsentRecord) -> ConsentRecord:
        return replace(sealed, text=self._open(sealed.text) or "", client_ip=self._open(sealed.client_ip),
                       user_agent=self._open(sealed.user_agent))
