"""UIDAI's signing keys: the shipped set pinned by fingerprint, plus operator extras.

A key is trusted because its fingerprint is written in this file (shipped keys) or because
an operator configured it (``DECENTRO_UIDAI_CERT``); never because a file embeds it.
Certificate validity dates are not enforced: UIDAI keeps signing after their printed expiry.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.x509.oid import NameOID

from decentro_core.errors import ConfigurationError

__all__ = ["SHIPPED_KEYS", "KeySource", "PinnedKey", "load_key", "load_keys", "load_shipped_keys"]

KeySource = str | os.PathLike[str] | bytes
"""A path to a PEM/DER certificate or public key, or the PEM/DER bytes themselves."""

# file name -> (what the fingerprint covers, SHA-256 from AADHAAR.md, label)
SHIPPED_KEYS: dict[str, tuple[str, str, str]] = {
    "uidai_offline_publickey_26022021.cer": (
        "certificate",
        "e0f0f869d32efc7e80fae2223717a56dcf8b616f820b542a49e5bd5abf1c0f7d",
        "uidai-ds05-2021",
    ),
    "uidai_offline_2024-2026_ds05.pub.pem": (
        "spki",
        "91ddf442fcce4ff0fedce529e101e9ce0d7ebbb6f046246c265fce2c6a6f48ba",
        "uidai-ds05-2024",
    ),
    "uidai_offline_2026-2029_ds06.pub.pem": (
        "spki",
        "5e74a86a0ce6ff94ce3ac0d6acf8489906bcaada00e1a412bf737190919bcab1",
        "uidai-ds06-2026",
    ),
}

# signxml checks signatures against a certificate, not a bare key. Each pinned key is
# therefore wrapped in a local "carrier" certificate whose only job is to hold the key:
# its own signature and dates mean nothing, and the verifier pins a time inside them.
CARRIER_VALID_FROM = datetime(2000, 1, 1, tzinfo=timezone.utc)
CARRIER_CHECK_TIME = CARRIER_VALID_FROM + timedelta(days=1)


@dataclass(frozen=True)
class PinnedKey:
    """One trusted RSA public key: a short ``label`` and the SHA-256 of its SPKI."""

    label: str
    spki_sha256: str
    public_key: rsa.RSAPublicKey
    carrier: x509.Certificate


def _spki_der(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _carrier(key: rsa.RSAPublicKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinned UIDAI key carrier")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key)
        .serial_number(1)
        .not_valid_before(CARRIER_VALID_FROM)
        .not_valid_after(CARRIER_VALID_FROM + timedelta(days=365 * 200))
        .sign(ed25519.Ed25519PrivateKey.generate(), None)
    )


def _pin(key: object, label: str | None) -> PinnedKey:
    if not isinstance(key, rsa.RSAPublicKey):
        raise ConfigurationError(f"UIDAI key {label or 'given as bytes'!r} is not an RSA public key")
    fingerprint = hashlib.sha256(_spki_der(key)).hexdigest()
    return PinnedKey(label or f"key-{fingerprint[:12]}", fingerprint, key, _carrier(key))


def _parse(data: bytes) -> tuple[object, x509.Certificate | None]:
    """(public key, certificate or None) from PEM or DER, certificate or bare key."""
    for load_cert in (x509.load_pem_x509_certificate, x509.load_der_x509_certificate):
        try:
            cert = load_cert(data)
        except ValueError:
            continue
        return cert.public_key(), cert
    for load_public in (serialization.load_pem_public_key, serialization.load_der_public_key):
        try:
            return load_public(data), None
        except (ValueError, TypeError):
            continue
    raise ConfigurationError("not a PEM or DER certificate or public key")


def load_key(source: KeySource, *, label: str | None = None) -> PinnedKey:
    """Pin one operator-supplied key; a path's file name becomes its label."""
    if isinstance(source, bytes):
        key, _ = _parse(source)
        return _pin(key, label)
    path = os.fspath(source)
    try:
        with open(path, "rb") as handle:
            data = handle.read(1024 * 1024)
    except OSError as exc:
        raise ConfigurationError(f"cannot read UIDAI key file {path!r}: {exc.strerror}") from None
    try:
        key, _ = _parse(data)
    except ConfigurationError as exc:
        raise ConfigurationError(f"UIDAI key file {path!r}: {exc}") from None
    return _pin(key, label or os.path.basename(path))


def load_shipped_keys() -> tuple[PinnedKey, ...]:
    """UIDAI's keys as shipped in the wheel, each checked against its fingerprint."""
    folder = resources.files(__package__ or "decentro_adapters.aadhaar").joinpath("uidai")
    pinned = []
    for name, (kind, expected, label) in SHIPPED_KEYS.items():
        key, cert = _parse(folder.joinpath(name).read_bytes())
        if kind == "certificate":
            if cert is None:
                raise ConfigurationError(f"shipped UIDAI file {name} is not a certificate")
            covered = cert.public_bytes(serialization.Encoding.DER)
        else:
            covered = _spki_der(key)  # type: ignore[arg-type]
        if hashlib.sha256(covered).hexdigest() != expected:
            raise ConfigurationError(f"shipped UIDAI file {name} does not match its pinned fingerprint")
        pinned.append(_pin(key, label))
    return tuple(pinned)


def load_keys(sources: Iterable[KeySource]) -> tuple[PinnedKey, ...]:
    """Pin each of ``sources`` (see :func:`load_key`)."""
    return tuple(load_key(source) for source in sources)

