"""The offline e-KYC verifier of mock mode (``USE_MOCKS=true``): no cryptography at all.

Any content succeeds with the same synthetic person, as the guide's
``verify_aadhaar_xml(b"xml_content", "1234")`` expects, except for documented magic values:

==============================  =================================
content contains ``tampered``   ``AADHAAR_SIGNATURE_INVALID``
content contains ``expired``    ``AADHAAR_FILE_TOO_OLD``
share code is ``0000``          ``AADHAAR_SHARE_CODE_WRONG``
==============================  =================================

A real signed file (XML or ZIP) is NOT checked here either: it also yields the synthetic
person. Only :class:`~decentro_adapters.aadhaar.offline.UidaiOfflineVerifier` verifies.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from decentro_core.ports import AadhaarKyc

from .errors import FILE_TOO_OLD, SHARE_CODE_WRONG, SIGNATURE_INVALID, reject

__all__ = ["MOCK_SHARE_CODE_WRONG", "MockAadhaarVerifier"]

MOCK_SHARE_CODE_WRONG = "0000"

_ADDRESS = {
    "country": "India",
    "dist": "Mock District",
    "house": "1",
    "pc": "000000",
    "state": "Mock State",
    "street": "Mock Street",
    "vtc": "Mockville",
}


class MockAadhaarVerifier:
    """Returns a synthetic :class:`AadhaarKyc` for any file; see the module docstring."""

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(timezone.utc))

    def verify(
        self,
        content: bytes,
        share_code: str,
        *,
        mobile: str | None = None,
        email: str | None = None,
    ) -> AadhaarKyc:
        raw = content.encode("utf-8") if isinstance(content, str) else bytes(content)
        if share_code == MOCK_SHARE_CODE_WRONG:
            raise reject(SHARE_CODE_WRONG, "The share code does not open this ZIP file.")
        if b"tampered" in raw:
            raise reject(SIGNATURE_INVALID, "The file was changed after it was signed.")
        if b"expired" in raw:
            raise reject(FILE_TOO_OLD, "The file is older than 72 hours; download a new one.")
        return AadhaarKyc(
            aadhaar_last4="0000",
            generated_at=self._now(),
            name="Mock Aadhaar Holder",
            date_of_birth="01-01-1990",
            gender="F",
            address=dict(_ADDRESS),
            photo_base64=None,
            mobile_verified=None if mobile is None else True,
            email_verified=None if email is None else True,
            signer="mock",
        )
