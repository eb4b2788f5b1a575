"""Emulated Aadhaar OKYC by OTP: start (send the OTP) and validate (fetch the e-KYC data).

The start answer's ``decentroTxnId`` is the ``initiation_transaction_id`` of the session; a
session lasts 10 minutes and ends after one successful validation. Sessions keep the
Aadhaar number's last four digits and a hash only, never the number. Numbers are checked for
shape (12 digits, not starting 0 or 1), not for their Verhoeff check digit, so any ending
works as a magic value.

With a ``share_code``, the answer also carries UIDAI's offline e-KYC ZIP of the same synthetic
resident, signed by the sandbox's key (:mod:`decentro_sandbox.uidai`), as
``data.aadhaarFile{aadhaarZip (base64), shareCode}``. Decentro documents that key only for its
older captcha flow (``decentro-in/decentro-in-kyc-sdk-go`` ``api/openapi.yaml``,
``AadhaarxmlValidateOtpResponse``); that the OTP flow uses the same key is our guess. The
file's mobile and e-mail hashes are UIDAI's, of :data:`SANDBOX_MOBILE` and :data:`SANDBOX_EMAIL`.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .scenarios import AADHAAR_OTPS, PLACEHOLDER_JPEG, SANDBOX_EMAIL, SANDBOX_MOBILE, synthetic_digits, synthetic_name
from .uidai import contact_hash
from .wire import (
    IST,
    Fault,
    Refused,
    Reply,
    Runtime,
    digits_fault,
    failure,
    require_consent_true,
    require_reference,
    require_str,
    success,
)

__all__ = ["SANDBOX_EMAIL", "SANDBOX_MOBILE", "SESSION_LIFETIME", "otp_start", "otp_validate"]

SESSION_LIFETIME = timedelta(minutes=10)
_OTP_ERRORS = {
    "error_invalid_otp": "The OTP entered is invalid.",
    "error_otp_limit_exceeded": "OTP attempts exceeded. Please start again.",
    "error_invalid_session": "The session is invalid or has expired.",
}


@dataclass
class _Session:
    last4: str
    key: str
    started_at: datetime
    used: bool = False


def otp_start(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    require_reference(body)
    require_consent_true(body)
    require_str(body, "purpose", max_len=500)
    number = require_str(body, "aadhaar_number", pattern=r"[2-9][0-9]{11}", min_len=12, max_len=12)
    txn = rt.new_id()
    last4 = number[-4:]
    if last4 == "0000":
        return 422, failure(txn, "No mobile number is linked to this Aadhaar.", code="E00009",
                            key="error_no_mobile_found")
    if last4 == "0429":
        return 400, failure(txn, "Too many OTP requests for this Aadhaar. Try later.", code="E00009",
                            key="error_aadhaar_otp_flooding")
    fault = digits_fault(last4, txn)
    if fault is not None:
        return fault
    key = hashlib.sha256(number.encode()).hexdigest()
    rt.sessions[txn] = _Session(last4=last4, key=key, started_at=rt.now())
    return 200, success(txn, "OTP sent to the mobile number linked with Aadhaar.",
                        key="success_otp_generated", data={})


def otp_validate(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    require_reference(body)
    require_consent_true(body)
    require_str(body, "purpose", max_len=500)
    initiation = require_str(body, "initiation_transaction_id", max_len=100)
    otp = require_str(body, "otp", pattern=r"[0-9]{6}", min_len=6, max_len=6)
    share_code = body.get("share_code")
    if share_code is not None and (not isinstance(share_code, str) or not share_code.isdigit()
                                   or len(share_code) != 4):
        raise Refused("share_code must be 4 digits.")
    txn = rt.new_id()
    session = rt.sessions.get(initiation)
    expired = session is None or session.used or rt.now() - session.started_at > SESSION_LIFETIME
    outcome = "error_invalid_session" if expired else AADHAAR_OTPS.get(otp, "error_invalid_otp")
    if outcome != "success_aadhaar_fetched":
        return 400, failure(txn, _OTP_ERRORS[outcome], code="E00009", key=outcome)
    assert session is not None  # expired covers the missing session
    session.used = True
    data = _ekyc(session, rt.now())
    if share_code is not None:
        _attach_offline_file(rt, data, share_code)
    return 200, success(txn, "Aadhaar data retrieved successfully.", key=outcome, data=data)


def _attach_offline_file(rt: Runtime, data: dict[str, Any], share_code: str) -> None:
    """Add UIDAI's signed share-code ZIP; the JSON hashes become the file's (UIDAI's scheme)."""
    last_digit = int(data["aadhaarReferenceNumber"][3])
    identity = data["proofOfIdentity"]
    identity["hashedMobileNumber"] = contact_hash(SANDBOX_MOBILE, share_code, last_digit)
    identity["hashedEmail"] = contact_hash(SANDBOX_EMAIL, share_code, last_digit)
    archive = rt.uidai.offline_ekyc_zip(data, share_code, mobile=SANDBOX_MOBILE, email=SANDBOX_EMAIL)
    data["aadhaarFile"] = {"aadhaarZip": base64.b64encode(archive).decode("ascii"), "shareCode": share_code}


def _ekyc(session: _Session, now: datetime) -> dict[str, Any]:
    key = session.key
    local = now.astimezone(IST)  # UIDAI's referenceId time is IST
    stamp = local.strftime("%Y%m%d%H%M%S") + f"{local.microsecond // 1000:03d}"
    return {
        "aadhaarReferenceNumber": session.last4 + stamp,
        "proofOfIdentity": {
            "dob": f"{1 + int(synthetic_digits('d' + key, 2)) % 28:02d}-0{1 + int(key[0], 16) % 9}-1990",
            "gender": "F" if int(key[1], 16) % 2 else "M",
            "name": synthetic_name(key),
            "hashedEmail": hashlib.sha256(("email" + key).encode()).hexdigest(),
            "hashedMobileNumber": hashlib.sha256(("mobile" + key).encode()).hexdigest(),
        },
        "proofOfAddress": {
            "careOf": "C/O " + synthetic_name("careof" + key),
            "country": "India",
            "district": "Sandbox District",
            "house": synthetic_digits("h" + key, 3),
            "landmark": "Near Test Park",
            "locality": "Emulator Nagar",
            "pincode": "560" + synthetic_digits("p" + key, 3),
            "postOffice": "Sandbox PO",
            "state": "Karnataka",
            "street": "Fixture Road",
            "subDistrict": "Sandbox Taluk",
            "vtc": "Mocktown",
        },
        "image": PLACEHOLDER_JPEG,
    }
