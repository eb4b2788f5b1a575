"""The production :class:`~decentro_core.ports.Vault`: Fernet encryption with key rotation.

``FernetVault(keys)`` seals with the first key and opens with any of them (``MultiFernet``),
so a new key is put first, old data is re-sealed (see :mod:`decentro_adapters.vault.rotation`), and the
old key is then dropped. Fingerprints are HMAC-SHA256 with a key derived by HKDF from the
*last* listed key (the oldest): prepending a new key leaves every fingerprint (and so every
cache key) unchanged, and processes on ``[old]`` and on ``[new, old]`` agree during a rolling
deploy. Dropping that oldest key changes fingerprints once: cache entries become unreachable
and expire with their TTL (they are a cache, nothing is lost).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
from collections.abc import Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from decentro_core.demo import DEMO_LOG, warn_once
from decentro_core.errors import ConfigurationError, StoreError

__all__ = ["FernetVault"]

KEYS_VARIABLE = "DECENTRO_ENCRYPTION_KEYS"
_FINGERPRINT_INFO = b"decentro fingerprint v1"
# Demo warnings share one logger, so a command that does not serve can quiet them all at once.


class FernetVault:
    """Seals bytes with Fernet (AES-128-CBC + HMAC-SHA256); the first key encrypts.

    >>> vault = FernetVault([FernetVault.generate_key()])
    >>> vault.open(vault.seal(b"ABCDE1234F"))
    b'ABCDE1234F'
    """

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            raise TypeError("keys must be a sequence of key strings, not one string")
        if not keys:
            raise ConfigurationError(f"{KEYS_VARIABLE} needs at least one Fernet key")
        self._fernets = [_fernet(key, index) for index, key in enumerate(keys, start=1)]
        self._multi = MultiFernet(self._fernets)
        self._hash_key = _derive_fingerprint_key(keys[-1])

    @staticmethod
    def generate_key() -> str:
        """A fresh random key, in the text form ``DECENTRO_ENCRYPTION_KEYS`` expects."""
        return Fernet.generate_key().decode("ascii")

    @classmethod
    def from_settings(cls, settings: Any, *, logger: logging.Logger | None = None) -> FernetVault:
        """Build from ``settings.encryption_keys``; an ephemeral key only in mock mode."""
        keys = tuple(settings.encryption_keys)
        if keys:
            return cls(keys)
        if settings.use_mocks is False:
            raise ConfigurationError(
                f"USE_MOCKS=false needs {KEYS_VARIABLE}: generate one with FernetVault.generate_key()"
            )
        _warn_ephemeral_key(logger or DEMO_LOG)
        return cls([cls.generate_key()])

    def seal(self, plaintext: bytes) -> str:
        return self._multi.encrypt(plaintext).decode("ascii")

    def open(self, token: str) -> bytes:
        try:
            return self._multi.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError, TypeError) as exc:
            raise StoreError("Sealed value cannot be opened with the configured keys") from exc

    def fingerprint(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def rotate(self, token: str) -> str:
        """Re-seal ``token`` under the first key (it must open with one of the keys)."""
        try:
            return self._multi.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError, TypeError) as exc:
            raise StoreError("Sealed value cannot be rotated with the configured keys") from exc

    def is_current(self, token: str) -> bool:
        """Whether ``token`` was sealed with the first (newest) key."""
        try:
            self._fernets[0].decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError, TypeError):
            return False
        return True


def _warn_ephemeral_key(logger: logging.Logger) -> None:
    warn_once(
        "ephemeral-encryption-key",
        "%s is not set: using an EPHEMERAL encryption key. Everything sealed in this "
        "process (stored operations, webhook bodies, cached KYC results) will be "
        "unreadable after a restart. Set %s for anything but a demo.",
        KEYS_VARIABLE,
        KEYS_VARIABLE,
        logger=logger,
    )


def _fernet(key: str, index: int) -> Fernet:
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, binascii.Error, UnicodeEncodeError, TypeError, AttributeError):
        # The key itself must never reach a log or a traceback: name its position only.
        raise ConfigurationError(
            f"{KEYS_VARIABLE}: key #{index} is not a valid Fernet key "
            "(32 url-safe base64-encoded bytes)"
        ) from None


def _derive_fingerprint_key(key: str) -> bytes:
    material = base64.urlsafe_b64decode(key.strip().encode("ascii"))
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_FINGERPRINT_INFO).derive(material)
