"""Self-made UIDAI-style offline e-KYC files for tests: synthetic people, our own keys.

The signer reproduces UIDAI's layout independently of signxml: the canonical ``SignedInfo``
is written out by hand (inclusive C14N 1.0, ``Signature`` in the default xmldsig
namespace), signed RSA-SHA1, over a SHA-256 digest of the document without its signature.
The ZIP writer implements traditional PKWARE encryption (ZipCrypto), which the standard
library can read but not write. Test code only: never used by the package.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from xml.sax.saxutils import quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from decentro_sandbox.uidai import canonical_signed_info  # UIDAI's signing, shared with the sandbox
from decentro_sandbox.zipcrypto import ZipCryptoCipher

IST = timezone(timedelta(hours=5, minutes=30))
DS = "http://www.w3.org/2000/09/xmldsig#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

SHARE_CODE = "Lock@487"
MOBILE = "9800000002"
EMAIL = "asha.testperson@example.com"
# A tiny JPEG-looking payload (SOI, JFIF marker, EOI): enough for a photo field.
PHOTO = base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00synthetic\xff\xd9").decode()
ADDRESS = {
    "careof": "C/O Test Guardian",
    "country": "India",
    "dist": "Sample District",
    "house": "12",
    "landmark": "Near Example Park",
    "loc": "Test Colony",
    "pc": "110001",
    "po": "Sample Post",
    "state": "Example State",
    "street": "Fiction Street",
    "subdist": "Sample Tehsil",
    "vtc": "Sampleville",
}


def genuine_size_photo(jpeg_bytes: int = 24 * 1024) -> str:
    """Base64 of a synthetic JPEG-shaped blob as large as a real ``Pht`` (tens of KB).

    UIDAI's offline file carries the enrolment photo as a small JPEG; with its base64 text
    a genuine file is tens of kilobytes. Deterministic, so figures are repeatable.
    """
    filler = hashlib.shake_256(b"synthetic photo").digest(max(jpeg_bytes - 24, 0))
    return base64.b64encode(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + filler + b"\xff\xd9").decode()


@dataclass(frozen=True)
class Signer:
    """An RSA key and a self-signed certificate that expired before the tests run."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@lru_cache(maxsize=None)
def signer(label: str = "test-uidai") -> Signer:
    """A cached signer per label (RSA generation is the slow part of these tests)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"DS {label} (synthetic)")])
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365))  # long expired, as UIDAI's often are
        .sign(key, hashes.SHA256())
    )
    return Signer(key, cert)


def hash_contact(value: str, share_code: str, last_digit: int) -> str:
    """UIDAI's mobile/e-mail hash, written independently of the adapter."""
    digest = hashlib.sha256((value + share_code).encode()).hexdigest()
    for _ in range(max(last_digit, 1) - 1):
        digest = hashlib.sha256(digest.encode()).hexdigest()
    return digest


def reference_id(last4: str, generated_at: datetime) -> str:
    local = generated_at.astimezone(IST)
    return last4 + local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"


def unsigned_xml(
    *,
    generated_at: datetime,
    last4: str = "1234",
    name: str = "Asha Testperson",
    share_code: str = SHARE_CODE,
    mobile: str | None = MOBILE,
    email: str | None = EMAIL,
    reference: str | None = None,
    e_hash: str | None = None,
    photo: str = PHOTO,
) -> bytes:
    """The document in UIDAI's layout, without a signature (attributes in canonical order).

    ``e_hash`` overrides the e-mail hash (UIDAI's pages also describe plain SHA-256);
    ``photo`` the base64 ``Pht`` text (see :func:`genuine_size_photo`).
    """
    n = int(last4[-1])
    m = hash_contact(mobile, share_code, n) if mobile else ""
    e = hash_contact(email, share_code, n) if email else ""
    if e_hash is not None:
        e = e_hash
    ref = reference if reference is not None else reference_id(last4, generated_at)
    poa = " ".join(f"{k}={quoteattr(v)}" for k, v in sorted(ADDRESS.items()))
    body = (
        f"<OfflinePaperlessKyc referenceId={quoteattr(ref)}>\n"
        " <UidData>\n"
        f'  <Poi dob="01-01-1990" e="{e}" gender="F" m="{m}" name={quoteattr(name)}/>\n'
        f"  <Poa {poa}/>\n"
        f"  <Pht>{photo}</Pht>\n"
        " </UidData>\n"
        "</OfflinePaperlessKyc>"
    )
    return b'<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n' + body.encode()


def sign(document: bytes, by: Signer, *, embed_cert: bool = True) -> bytes:
    """Sign ``document`` as UIDAI does: enveloped, default-namespace ``Signature``."""
    root = etree.fromstring(document)
    digest = hashlib.sha256(etree.tostring(root, method="c14n")).digest()
    signed_info = canonical_signed_info(base64.b64encode(digest).decode())
    value = by.key.sign(signed_info.encode(), padding.PKCS1v15(), hashes.SHA1())
    key_info = ""
    if embed_cert:
        der = by.cert.public_bytes(serialization.Encoding.DER)
        key_info = (
            "<KeyInfo><X509Data>"
            f"<X509SubjectName>{by.cert.subject.rfc4514_string()}</X509SubjectName>"
            f"<X509Certificate>{base64.b64encode(der).decode()}</X509Certificate>"
            "</X509Data></KeyInfo>"
        )
    signature = (
        f'<Signature xmlns="{DS}">'
        + signed_info.replace(f' xmlns="{DS}"', "", 1)
        + f"<SignatureValue>{base64.b64encode(value).decode()}</SignatureValue>"
        + key_info
        + "</Signature>"
    )
    # No whitespace around the signature: removing it must give back ``document`` exactly.
    head, tail = document.rsplit(b"</OfflinePaperlessKyc>", 1)
    return head + signature.encode() + b"</OfflinePaperlessKyc>" + tail


def signed_xml(*, by: Signer | None = None, embed_cert: bool = True, **fields: object) -> bytes:
    """A signed file; ``fields`` go to :func:`unsigned_xml` (``generated_at`` required)."""
    return sign(unsigned_xml(**fields), by or signer(), embed_cert=embed_cert)  # type: ignore[arg-type]


# -- ZipCrypto (traditional PKWARE encryption), write side ----------------------------------

def zip_file(
    content: bytes,
    share_code: str | None,
    *,
    name: str = "offlineaadhaar20250101120000000.xml",
    declared_size: int | None = None,
    extra_entries: int = 0,
    compress: bool = True,
) -> bytes:
    """A deflated ZIP holding ``content``, ZipCrypto-encrypted when ``share_code`` is set.

    ``declared_size`` lies about the uncompressed size in the headers (ZIP-bomb tests);
    ``extra_entries`` adds that many more copies under other names; ``compress=False``
    stores the entry as it is (every byte of it then has to be decrypted).
    """
    entries = [(name, content)] + [(f"extra{i}.xml", content) for i in range(extra_entries)]
    body, central = bytearray(), bytearray()
    for entry_name, data in entries:
        crc = zlib.crc32(data)
        if compress:
            packer = zlib.compressobj(9, zlib.DEFLATED, -15)
            payload = packer.compress(data) + packer.flush()
        else:
            payload = data
        flags = 0
        if share_code is not None:
            flags = 1
            cipher = ZipCryptoCipher(share_code.encode())
            header = os.urandom(11) + bytes([crc >> 24])
            payload = cipher.encrypt(header + payload)
        size = len(data) if declared_size is None else declared_size
        raw_name = entry_name.encode()
        method = 8 if compress else 0
        fields = struct.pack("<HHHHHIII", 20, flags, method, 0, 0x21, crc, len(payload), size)
        offset = len(body)
        body += b"PK\x03\x04" + fields + struct.pack("<HH", len(raw_name), 0) + raw_name + payload
        central += (
            b"PK\x01\x02" + struct.pack("<H", 20) + fields
            + struct.pack("<HHHHHII", len(raw_name), 0, 0, 0, 0, 0, offset) + raw_name
        )
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(central), len(body), 0)
    return bytes(body + central + end)
