"""Local verification of UIDAI's Aadhaar Paperless Offline e-KYC files.

:class:`UidaiOfflineVerifier` opens the share-code ZIP (or takes the XML), screens the XML,
checks UIDAI's signature against pinned keys only, checks freshness from ``referenceId``
and returns an :class:`~decentro_core.ports.AadhaarKyc` read from the signed content.
Every refusal is an :class:`~decentro_core.errors.AadhaarFileRejected` with a stable code
(see :mod:`decentro_adapters.aadhaar.errors`).

Example::

    verifier = UidaiOfflineVerifier.from_settings(settings)
    kyc = verifier.verify(zip_bytes, share_code, mobile="9800000002")
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from typing import Any

from lxml import etree

from decentro_core.errors import AadhaarFileRejected
from decentro_core.ports import AadhaarKyc

from .container import open_container
from .errors import (
    FILE_FROM_FUTURE,
    FILE_TOO_OLD,
    FORMAT_UNSUPPORTED,
    REFERENCE_INVALID,
    SIGNATURE_MISSING,
    reject,
)
from .keys import KeySource, PinnedKey, load_keys, load_shipped_keys
from .parsing import DEFAULT_LIMITS, XmlLimits, parse_xml
from .signature import DS_NS, verify_signature

__all__ = [
    "DEFAULT_MAX_BYTES",
    "IST",
    "UidaiOfflineVerifier",
    "XmlLimits",
    "contact_hash",
    "contact_matches",
    "parse_reference_time",
]

IST = timezone(timedelta(hours=5, minutes=30), "IST")
DEFAULT_MAX_AGE = timedelta(days=3)  # RBI's KYC Master Direction
DEFAULT_MAX_BYTES = 128 * 1024
"""About six times a genuine file (~20 KB of XML, a little less zipped); see docs/aadhaar.md."""
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
_REFERENCE = re.compile(r"[0-9]{21}")
_ROOT = "OfflinePaperlessKyc"


class UidaiOfflineVerifier:
    """Verifies offline e-KYC files against pinned UIDAI keys (see the module docstring).

    ``pinned_keys`` replaces the shipped UIDAI keys entirely (tests pin their own key);
    ``extra_keys`` adds operator keys to them. Keys are paths or PEM/DER bytes, certificate
    or bare public key. ``xml_limits`` caps the XML's shape while it is parsed (see
    :class:`~decentro_adapters.aadhaar.parsing.XmlLimits`).
    """

    def __init__(
        self,
        *,
        extra_keys: Iterable[KeySource] = (),
        pinned_keys: Iterable[KeySource] | None = None,
        max_age: timedelta = DEFAULT_MAX_AGE,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock_skew: timedelta = DEFAULT_CLOCK_SKEW,
        now: Callable[[], datetime] | None = None,
        xml_limits: XmlLimits = DEFAULT_LIMITS,
    ) -> None:
        base = load_shipped_keys() if pinned_keys is None else load_keys(pinned_keys)
        self.keys: tuple[PinnedKey, ...] = base + load_keys(extra_keys)
        if not self.keys:
            raise ValueError("at least one trusted key is needed")
        if max_bytes <= 0 or max_age <= timedelta(0):
            raise ValueError("max_bytes and max_age must be positive")
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.clock_skew = clock_skew
        self.xml_limits = xml_limits
        self._now = now or (lambda: datetime.now(timezone.utc))

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> UidaiOfflineVerifier:
        """Built from ``Settings`` (``uidai_certs``, ``aadhaar_max_age_hours``, ``aadhaar_max_bytes``)."""
        options: dict[str, Any] = {
            "extra_keys": tuple(settings.uidai_certs),
            "max_age": timedelta(hours=settings.aadhaar_max_age_hours),
            "max_bytes": settings.aadhaar_max_bytes,
        }
        options.update(overrides)
        return cls(**options)

    def verify(
        self,
        content: bytes,
        share_code: str,
        *,
        mobile: str | None = None,
        email: str | None = None,
    ) -> AadhaarKyc:
        """Check ``content`` (XML or share-code ZIP) and return what the signed file says.

        A refusal is raised with its traceback cut here and no chained exception, so an
        error kept by the caller (a log record, a retry queue) keeps nothing of the file
        alive: no unzipped XML, no partial tree.
        """
        try:
            return self._verify(content, share_code, mobile, email)
        except AadhaarFileRejected as error:
            rejected = error
        rejected.__context__ = rejected.__cause__ = None
        raise rejected.with_traceback(None)

    def _verify(self, content: bytes, share_code: str, mobile: str | None, email: str | None) -> AadhaarKyc:
        if isinstance(content, str):
            content = content.encode("utf-8")
        share_code = share_code if isinstance(share_code, str) else ""  # None opens nothing
        xml = open_container(bytes(content), share_code, max_bytes=self.max_bytes)
        root = parse_xml(xml, self.xml_limits)  # the one parse; screening happens during it
        _check_layout(root)
        signed, key = verify_signature(root, self.keys)
        fields = _read_fields(signed)
        generated_at = self._check_fresh(fields["reference"])
        last4 = fields["reference"][:4]
        return AadhaarKyc(
            aadhaar_last4=last4,
            generated_at=generated_at,
            name=fields["name"],
            date_of_birth=fields["dob"],
            gender=fields["gender"],
            address=fields["address"],
            photo_base64=fields["photo"],
            mobile_verified=_check_contact(fields["m"], _mobile_digits(mobile), share_code, last4),
            email_verified=_check_email(fields["e"], email, share_code, last4),
            signer=key.label,
        )

    def _check_fresh(self, reference: str) -> datetime:
        generated_at = parse_reference_time(reference)
        now = self._now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=timezone.utc)
        if generated_at - now > self.clock_skew:
            raise reject(FILE_FROM_FUTURE, "The file's generation time is in the future.")
        if now - generated_at > self.max_age:
            hours = self.max_age.total_seconds() / 3600
            raise reject(FILE_TOO_OLD, f"The file is older than {hours:g} hours; download a new one.")
        return generated_at


def parse_reference_time(reference: str) -> datetime:
    """The IST generation time in ``referenceId`` (4 digits, then yyyyMMddHHmmssSSS)."""
    if not _REFERENCE.fullmatch(reference):
        raise reject(REFERENCE_INVALID, "The file's referenceId is not 21 digits.")
    try:
        stamp = datetime.strptime(reference[4:18], "%Y%m%d%H%M%S")
    except ValueError:
        raise reject(REFERENCE_INVALID, "The file's referenceId holds no valid time.") from None
    millis = int(reference[18:21])
    return stamp.replace(microsecond=millis * 1000, tzinfo=IST)


def _check_layout(root: etree._Element) -> None:
    """Refuse what is not the current signed layout, before any cryptography runs."""
    if root.tag != _ROOT:
        raise reject(FORMAT_UNSUPPORTED, "This is not a UIDAI offline e-KYC XML file.")
    children = [child.tag for child in root]
    if not children:
        raise reject(
            FORMAT_UNSUPPORTED,
            "This is UIDAI's 2018 single-element format, which is not supported; "
            "download a new offline e-KYC file.",
        )
    if "UidData" not in children:
        raise reject(FORMAT_UNSUPPORTED, "The file has no UidData element.")
    if children.count(f"{{{DS_NS}}}Signature") != 1:
        raise reject(SIGNATURE_MISSING, "The file carries no UIDAI signature.")


def _read_fields(signed: etree._Element) -> dict[str, Any]:
    """Personal fields from the signed tree only."""
    if signed.tag != _ROOT:
        raise reject(FORMAT_UNSUPPORTED, "This is not a UIDAI offline e-KYC XML file.")
    poi = signed.find("UidData/Poi")
    poa = signed.find("UidData/Poa")
    photo = signed.find("UidData/Pht")
    if poi is None or poa is None:
        raise reject(FORMAT_UNSUPPORTED, "The file lacks its Poi or Poa element.")
    required = {name: poi.get(name) for name in ("name", "dob", "gender")}
    if any(value is None for value in required.values()):
        raise reject(FORMAT_UNSUPPORTED, "The file lacks a name, date of birth or gender.")
    return {
        **required,
        "reference": signed.get("referenceId") or "",
        "address": {str(k): str(v) for k, v in sorted(poa.attrib.items())},
        "photo": ((photo.text or "").strip() or None) if photo is not None else None,
        "m": (poi.get("m") or "").strip(),
        "e": (poi.get("e") or "").strip(),
    }


# -- mobile / e-mail hashes -----------------------------------------------------------------


def contact_hash(value: str, share_code: str, last_digit: int) -> str:
    """UIDAI's hash: SHA-256 of value+share code, re-hashed (as hex) up to ``last_digit`` times."""
    digest = hashlib.sha256((value + share_code).encode("utf-8")).hexdigest()
    for _ in range((last_digit or 1) - 1):
        digest = hashlib.sha256(digest.encode("ascii")).hexdigest()
    return digest


def contact_matches(expected_hex: str, candidate_hex: str) -> bool:
    return hmac.compare_digest(expected_hex.lower().encode(), candidate_hex.lower().encode())


def _check_contact(expected: str, value: str | None, share_code: str, last4: str) -> bool | None:
    if not value or not expected:
        return None
    return contact_matches(expected, contact_hash(value, share_code, int(last4[3])))


def _check_email(expected: str, email: str | None, share_code: str, last4: str) -> bool | None:
    # UIDAI's pages disagree on the e-mail hash: try the mobile scheme, then plain SHA-256.
    if not email or not expected:
        return None
    candidates = dict.fromkeys([email.strip(), email.strip().lower()])
    for candidate in candidates:
        if _check_contact(expected, candidate, share_code, last4):
            return True
        if contact_matches(expected, hashlib.sha256(candidate.encode("utf-8")).hexdigest()):
            return True
    return False


def _mobile_digits(mobile: str | None) -> str | None:
    """Ten digits, as UIDAI hashes them: separators and a +91/91 prefix are dropped."""
    if mobile is None:
        return None
    digits = re.sub(r"[\s()-]", "", mobile).removeprefix("+")
    if len(digits) == 12 and digits.startswith("91"):
        digits = digits[2:]
    return digits or None

