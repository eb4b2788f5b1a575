"""The scenario table: which inputs make the emulator answer what.

One table, used by the in-process :class:`~decentro_adapters.gateway.mock.MockGateway` and by
the sandbox HTTP server alike, so both behave the same. Two kinds of entries:

* Decentro's own sandbox values (:data:`DECENTRO_SANDBOX`), mirrored so that code tested
  here behaves the same against Decentro's staging host.
* Our magic values (:data:`MAGIC_DIGITS`, :data:`MAGIC_AMOUNTS`, :data:`MAGIC_EMAIL_LOCAL_PARTS`),
  chosen by four digits of the document: the PAN's digits (``ABCDE0404F``), the last four of a
  bank account, phone or Aadhaar number, the amount of a UPI payment, the e-mail local part.

=====================  ==================================================================
Four digits            Answer
=====================  ==================================================================
``0000``               invalid document: PAN / PAN_DETAILED 200 ``idStatus INVALID``; bank 200
                       ``accountStatus invalid``; CKYC 200 FAILURE ``E00016``;
                       SMS 200 FAILURE; Aadhaar OTP start 422 ``error_no_mobile_found``
``0404``               no record: PAN 200 ``kycStatus UNKNOWN`` + ``error.E00026``;
                       CKYC 200 FAILURE ``E00026``
``0429``               HTTP 429 (Aadhaar OTP start: 400 ``error_aadhaar_otp_flooding``)
``0500`` / ``0503``    HTTP 500 / HTTP 503
``0408``               timeout (:data:`~decentro_sandbox.TIMEOUT`, no answer)
=====================  ==================================================================

UPI amounts: 10 settles SUCCESS, 20 FAILURE, 30 stays PENDING, any other amount SUCCESS;
5.00 → 500, 5.03 → 503, 4.29 → 429, 4.08 → timeout. E-mail local parts: ``fail`` → FAILURE,
``timeout`` → timeout, ``error500`` → 500. Aadhaar OTPs: ``123456`` succeeds, ``000000``
``error_invalid_otp``, ``111111`` ``error_otp_limit_exceeded``, ``222222``
``error_invalid_session``; any other OTP is ``error_invalid_otp``. CKYC answers the same on
``/v2/kyc/ckyc/search`` and Decentro's ``/testbed/v2/kyc/ckyc/search``.

Faults (429, 5xx, timeout) do not use up the ``reference_id``: they stand for a refusal in
front of Decentro's API, so a retry with the same reference meets the same fault again.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Final

__all__ = [
    "AADHAAR_OTPS",
    "DECENTRO_SANDBOX",
    "FAULT_DIGITS",
    "FICTIONAL_NAMES",
    "MAGIC_AMOUNTS",
    "MAGIC_DIGITS",
    "MAGIC_EMAIL_LOCAL_PARTS",
    "PLACEHOLDER_JPEG",
    "SANDBOX_EMAIL",
    "SANDBOX_MOBILE",
    "UPI_AMOUNT_STATUS",
    "synthetic_digits",
    "synthetic_name",
]

# Faults shared by every path that has magic digits: HTTP status, or "timeout".
FAULT_DIGITS: Final[dict[str, int | str]] = {
    "0429": 429,
    "0500": 500,
    "0503": 503,
    "0408": "timeout",
}

# Business outcomes by the four digits (see the module docstring for each path's shape).
MAGIC_DIGITS: Final[dict[str, str]] = {"0000": "invalid", "0404": "no_record"}

MAGIC_AMOUNTS: Final[dict[Decimal, int | str]] = {
    Decimal("5.00"): 500,
    Decimal("5.03"): 503,
    Decimal("4.29"): 429,
    Decimal("4.08"): "timeout",
}

MAGIC_EMAIL_LOCAL_PARTS: Final[dict[str, int | str]] = {
    "fail": "failure",
    "timeout": "timeout",
    "error500": 500,
}

# Decentro's documented sandbox amounts: the status a UPI payment settles to.
UPI_AMOUNT_STATUS: Final[dict[Decimal, str]] = {
    Decimal("10"): "SUCCESS",
    Decimal("20"): "FAILURE",
    Decimal("30"): "PENDING",
}

AADHAAR_OTPS: Final[dict[str, str]] = {
    "123456": "success_aadhaar_fetched",
    "000000": "error_invalid_otp",
    "111111": "error_otp_limit_exceeded",
    "222222": "error_invalid_session",
}

DECENTRO_SANDBOX: Final[dict[str, object]] = {
    "vpa_valid": {"charles.babbage@okhdfc": "Charles Babbage"},
    "vpa_invalid": frozenset({"alan.turing@oksbi"}),
    "bank_success": ("123456789011", "SBIN0001077"),
    "bank_failure": ("123456789013", "HDFC0001234"),
    "ckyc_pan": "ABCDE1234A",
    "ckyc_age": "25",  # docs.decentro.tech "CKYC Sandbox": the testbed PAN's record says "25"
}

# The contact details every synthetic Aadhaar resident has: UIDAI's hashes in the offline
# e-KYC file are of these (so a verifier given them reports the mobile/e-mail as verified).
SANDBOX_MOBILE: Final = "9800000002"
SANDBOX_EMAIL: Final = "sandbox.resident@example.com"

# A 1x1 white JPEG: the photo slot is never empty, and never anybody's face.
PLACEHOLDER_JPEG: Final = (
    "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////"
    "////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgB"
    "AQABPxA="
)

# Obviously fictional people: no real person can be named by the emulator.
FICTIONAL_NAMES: Final[tuple[str, ...]] = (
    "Aarav Sandboxwala",
    "Diya Testkumari",
    "Kabir Emulatorprasad",
    "Meera Fixturekar",
    "Rohan Placeholder",
    "Saanvi Mockbhai",
    "Vikram Dummysingh",
    "Ananya Specimenrao",
)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def synthetic_name(key: str) -> str:
    """A fictional name that is always the same for the same ``key``."""
    return FICTIONAL_NAMES[_digest(key)[0] % len(FICTIONAL_NAMES)]


def synthetic_digits(key: str, length: int) -> str:
    """``length`` digits derived from ``key`` (bank references, CKYC numbers, ...)."""
    number = int.from_bytes(_digest(key), "big")
    return str(number)[-length:].rjust(length, "0")
