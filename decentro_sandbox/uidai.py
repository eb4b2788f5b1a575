"""UIDAI-style signed offline e-KYC files for the sandbox, signed by a SANDBOX key.

With a ``share_code``, Decentro's Aadhaar OTP validation returns UIDAI's Paperless Offline
e-KYC ZIP in base64. The sandbox returns the same kind of file for its synthetic residents:
UIDAI's layout (``OfflinePaperlessKyc/UidData/Poi,Poa,Pht``), an enveloped XML signature made
the way UIDAI makes it (RSA-SHA1 over a SHA-256 digest, inclusive C14N 1.0, ``Reference URI=""``,
``Signature`` in the default xmldsig namespace, the signer certificate in ``KeyInfo``), inside
a ZIP encrypted with the share code (ZipCrypto). Sources: uidai.gov.in ("Aadhaar Paperless
Offline e-KYC") and UIDAI's published sample files.

The key is NOT UIDAI's: it is generated on first use (or loaded from a PEM file) and its
certificate is published by the sandbox (``GET /_sandbox/uidai-cert``, ``--uidai-cert-out``),
so a verifier trusts it only when told to (``DECENTRO_UIDAI_CERT``). Never trust it in
production: whoever runs a sandbox holds its private key.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from .zipcrypto import encrypted_zip

__all__ = ["SandboxUidaiSigner", "canonical_signed_info", "contact_hash"]

DS = "http://www.w3.org/2000/09/xmldsig#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SUBJECT = "Decentro sandbox offline e-KYC signer (synthetic, not UIDAI)"
# JSON e-KYC address keys (Decentro) -> UIDAI's Poa attributes
POA_ATTRIBUTES = {
    "careOf": "careof", "country": "country", "district": "dist", "house": "house",
    "landmark": "landmark", "locality": "loc", "pincode": "pc", "postOffice": "po",
    "state": "state", "street": "street", "subDistrict": "subdist", "vtc": "vtc",
}


def contact_hash(value: str, share_code: str, last_digit: int) -> str:
    """UIDAI's mobile/e-mail hash: SHA-256 of value + share code, re-hashed per the last digit."""
    digest = hashlib.sha256((value + share_code).encode()).hexdigest()
    for _ in range(max(last_digit, 1) - 1):
        digest = hashlib.sha256(digest.encode()).hexdigest()
    return digest


class SandboxUidaiSigner:
    """The sandbox's offline e-KYC signing key and certificate; thread-safe, key made lazily."""

    def __init__(self, key_pem: bytes | None = None) -> None:
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None
        self._cert: x509.Certificate | None = None
        if key_pem is not None:
            key = serialization.load_pem_private_key(key_pem, password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError("the sandbox UIDAI key must be an RSA private key")
            self._key = key

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> SandboxUidaiSigner:
        """Load the key at ``path``, or make one and save it there (mode 0600) for the next run."""
        try:
            with open(path, "rb") as handle:
                return cls(handle.read())
        except FileNotFoundError:
            signer = cls()
            pem = signer._private_key().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(pem)
            return signer

    def certificate_pem(self) -> bytes:
        """The certificate to trust (``DECENTRO_UIDAI_CERT``) for files this sandbox signs."""
        return self._certificate().public_bytes(serialization.Encoding.PEM)

    def spki_sha256(self) -> str:
        der = self._private_key().public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()

    def offline_ekyc_zip(self, ekyc: Mapping[str, Any], share_code: str, *, mobile: str, email: str) -> bytes:
        """UIDAI's share-code ZIP for Decentro-shaped e-KYC ``data`` (synthetic identity)."""
        reference = str(ekyc["aadhaarReferenceNumber"])
        document = self.sign(_unsigned_xml(ekyc, share_code, mobile=mobile, email=email))
        return encrypted_zip(f"offlineaadhaar{reference[4:]}.xml", document, share_code)

    def sign(self, document: bytes) -> bytes:
        """Sign ``document`` as UIDAI does: enveloped, default-namespace ``Signature``."""
        root = etree.fromstring(document, parser=etree.XMLParser(resolve_entities=False, no_network=True))
        digest = hashlib.sha256(etree.tostring(root, method="c14n")).digest()
        signed_info = canonical_signed_info(base64.b64encode(digest).decode())
        value = self._private_key().sign(signed_info.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
        cert = self._certificate()
        der = cert.public_bytes(serialization.Encoding.DER)
        signature = (
            f'<Signature xmlns="{DS}">'
            + signed_info.replace(f' xmlns="{DS}"', "", 1)
            + f"<SignatureValue>{base64.b64encode(value).decode()}</SignatureValue>"
            + "<KeyInfo><X509Data>"
            + f"<X509SubjectName>{escape(cert.subject.rfc4514_string())}</X509SubjectName>"
            + f"<X509Certificate>{base64.b64encode(der).decode()}</X509Certificate>"
            + "</X509Data></KeyInfo></Signature>"
        )
        # No whitespace around the signature: the enveloped transform must give back ``document``.
        head, tail = document.rsplit(b"</OfflinePaperlessKyc>", 1)
        return head + signature.encode() + b"</OfflinePaperlessKyc>" + tail

    def _private_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return self._key

    def _certificate(self) -> x509.Certificate:
        key = self._private_key()
        with self._lock:
            if self._cert is None:
                name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SUBJECT)])
                start = datetime(2024, 1, 1, tzinfo=timezone.utc)
                self._cert = (
                    x509.CertificateBuilder().subject_name(name).issuer_name(name)
                    .public_key(key.public_key()).serial_number(x509.random_serial_number())
                    .not_valid_before(start).not_valid_after(start + timedelta(days=3650))
                    .sign(key, hashes.SHA256())
                )
            return self._cert


def _unsigned_xml(ekyc: Mapping[str, Any], share_code: str, *, mobile: str, email: str) -> bytes:
    reference = str(ekyc["aadhaarReferenceNumber"])
    identity, address = ekyc["proofOfIdentity"], ekyc["proofOfAddress"]
    last_digit = int(reference[3])
    poi = {
        "dob": identity["dob"], "e": contact_hash(email, share_code, last_digit), "gender": identity["gender"],
        "m": contact_hash(mobile, share_code, last_digit), "name": identity["name"],
    }
    poa = {attribute: str(address.get(key, "")) for key, attribute in POA_ATTRIBUTES.items()}
    body = (
        f"<OfflinePaperlessKyc referenceId={quoteattr(reference)}>\n"
        " <UidData>\n"
        f"  <Poi {_attributes(poi)}/>\n"
        f"  <Poa {_attributes(poa)}/>\n"
        f"  <Pht>{escape(str(ekyc['image']))}</Pht>\n"
        " </UidData>\n"
        "</OfflinePaperlessKyc>"
    )
    return b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + body.encode("utf-8")


def _attributes(values: Mapping[str, str]) -> str:
    return " ".join(f"{name}={quoteattr(str(value))}" for name, value in sorted(values.items()))


def canonical_signed_info(digest_b64: str) -> str:
    # Written as inclusive C14N 1.0 renders it: the in-scope default namespace on
    # SignedInfo, empty elements expanded, no whitespace between elements.
    return (
        f'<SignedInfo xmlns="{DS}">'
        f'<CanonicalizationMethod Algorithm="{C14N_10}"></CanonicalizationMethod>'
        f'<SignatureMethod Algorithm="{RSA_SHA1}"></SignatureMethod>'
        '<Reference URI="">'
        f'<Transforms><Transform Algorithm="{ENVELOPED}"></Transform></Transforms>'
        f'<DigestMethod Algorithm="{SHA256}"></DigestMethod>'
        f"<DigestValue>{digest_b64}</DigestValue>"
        "</Reference></SignedInfo>"
    )
