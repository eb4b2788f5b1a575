"""Stable rejection codes of the offline e-KYC verifier, and one way to raise them.

Every message here is written by this library and names no personal data: a rejected file
may belong to someone other than the caller, and messages end up in logs and responses.
"""

from __future__ import annotations

from decentro_core.errors import AadhaarFileRejected

__all__ = [
    "FILE_FROM_FUTURE",
    "FILE_TOO_LARGE",
    "FILE_TOO_OLD",
    "FORMAT_UNSUPPORTED",
    "REFERENCE_INVALID",
    "REJECTION_CODES",
    "SHARE_CODE_WRONG",
    "SIGNATURE_INVALID",
    "SIGNATURE_MISSING",
    "XML_MALFORMED",
    "XML_UNSAFE",
    "ZIP_INVALID",
    "reject",
]

FILE_TOO_LARGE = "AADHAAR_FILE_TOO_LARGE"
ZIP_INVALID = "AADHAAR_ZIP_INVALID"
SHARE_CODE_WRONG = "AADHAAR_SHARE_CODE_WRONG"
XML_UNSAFE = "AADHAAR_XML_UNSAFE"
XML_MALFORMED = "AADHAAR_XML_MALFORMED"
FORMAT_UNSUPPORTED = "AADHAAR_FORMAT_UNSUPPORTED"
SIGNATURE_MISSING = "AADHAAR_SIGNATURE_MISSING"
SIGNATURE_INVALID = "AADHAAR_SIGNATURE_INVALID"
REFERENCE_INVALID = "AADHAAR_REFERENCE_INVALID"
FILE_TOO_OLD = "AADHAAR_FILE_TOO_OLD"
FILE_FROM_FUTURE = "AADHAAR_FILE_FROM_FUTURE"

REJECTION_CODES = frozenset(
    {
        FILE_TOO_LARGE,
        ZIP_INVALID,
        SHARE_CODE_WRONG,
        XML_UNSAFE,
        XML_MALFORMED,
        FORMAT_UNSUPPORTED,
        SIGNATURE_MISSING,
        SIGNATURE_INVALID,
        REFERENCE_INVALID,
        FILE_TOO_OLD,
        FILE_FROM_FUTURE,
    }
)


def reject(code: str, message: str) -> AadhaarFileRejected:
    """The exception for ``code``; raise it (``raise reject(...) from None``)."""
    return AadhaarFileRejected(message, code=code)
