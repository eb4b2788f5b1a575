"""Emulated KYC and bank-account endpoints: PAN, CKYC search, account validation.

Each handler takes the runtime and the request body and returns Decentro's raw answer, or
raises :class:`~decentro_adapters.emulator.wire.Refused`. Scenarios: see
:mod:`decentro_adapters.emulator.scenarios`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .scenarios import DECENTRO_SANDBOX, MAGIC_DIGITS, synthetic_digits, synthetic_name
from .wire import (
    Fault,
    Refused,
    Reply,
    Runtime,
    digits_fault,
    failure,
    optional_int,
    require_consent_true,
    require_str,
    success,
)

__all__ = ["ckyc_search", "pan_validate", "validate_account"]

PAN_PATTERN = r"[A-Z]{5}[0-9]{4}[A-Z]"
IFSC_PATTERN = r"[A-Z]{4}0[A-Z0-9]{6}"
NO_RECORD = "No records found for the given ID."
VALIDATION_TYPES = frozenset({"penniless", "pennydrop", "hybrid"})
CKYC_DOCUMENT_TYPES = frozenset({"PAN", "AADHAAR", "PASSPORT", "VOTER_ID", "DRIVING_LICENCE", "CKYC"})


def pan_validate(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    require_str(body, "reference_id", max_len=100)
    if body.get("document_type") != "PAN":
        raise Refused("document_type must be PAN.", code="E00016", key="error_invalid_document_type")
    pan = require_str(body, "id_number", pattern=PAN_PATTERN, min_len=10, max_len=10)
    if body.get("consent") != "Y":
        raise Refused("Consent is required.", code="E00016", key="error_invalid_consent")
    purpose = body.get("consent_purpose")
    if not isinstance(purpose, str) or len(purpose.strip()) <= 20:
        raise Refused("consent_purpose must be longer than 20 characters.")
    txn = rt.new_id()
    fault = digits_fault(pan[5:9], txn)
    if fault is not None:
        return fault
    outcome = MAGIC_DIGITS.get(pan[5:9])
    base = {"decentroTxnId": txn, "status": "SUCCESS", "responseCode": "S00000"}
    if outcome == "no_record":
        error = {"message": NO_RECORD, "responseCode": "E00026"}
        return 200, {**base, "kycStatus": "UNKNOWN", "message": NO_RECORD, "error": error}
    valid = outcome != "invalid"
    result = {
        "idNumber": pan,
        "idStatus": "VALID" if valid else "INVALID",
        "name": synthetic_name(pan) if valid else "",
    }
    message = "KYC details retrieved successfully." if valid else "The ID is invalid."
    return 200, {**base, "kycStatus": "SUCCESS", "message": message, "kycResult": result}


def ckyc_search(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    require_str(body, "reference_id", max_len=100)
    doc_type = body.get("document_type")
    if doc_type not in CKYC_DOCUMENT_TYPES:
        raise Refused("document_type is not supported.", code="E00016", key="error_invalid_document_type")
    pattern = PAN_PATTERN if doc_type == "PAN" else r"[A-Za-z0-9]{4,20}"
    id_number = require_str(body, "id_number", pattern=pattern, max_len=20)
    require_consent_true(body)
    require_str(body, "consent_purpose", max_len=500)
    txn = rt.new_id()
    digits = id_number[5:9] if doc_type == "PAN" else id_number[-4:]
    fault = digits_fault(digits, txn)
    if fault is not None:
        return fault
    outcome = None if id_number == DECENTRO_SANDBOX["ckyc_pan"] else MAGIC_DIGITS.get(digits)
    if outcome == "no_record":
        return 200, failure(txn, NO_RECORD, code="E00026", key="error_no_records_found")
    if outcome == "invalid":
        return 200, failure(txn, "The ID is invalid.", code="E00016", key="error_invalid_id_number")
    return 200, success(txn, "CKYC search successful.", key="success_ckyc_search", data={
        "kycStatus": "SUCCESS",
        "kycResult": _ckyc_record(id_number, doc_type),
    })


def _ckyc_record(id_number: str, doc_type: str) -> dict[str, Any]:
    name = synthetic_name(id_number)
    return {
        "ckycId": synthetic_digits("ckyc" + id_number, 14),
        "fullName": name.upper(),
        "age": 20 + int(synthetic_digits("age" + id_number, 2)) % 50,
        "kycDate": "01-01-2020",
        "fathersFullName": synthetic_name("father" + id_number).upper(),
        "photo": "",
        "identityDetails": {"identity": [{"type": doc_type, "status": "VERIFIED"}]},
    }


def validate_account(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    require_str(body, "reference_id", max_len=100)
    require_str(body, "purpose_message", pattern=r"[A-Za-z0-9 ]+", min_len=5, max_len=255)
    validation_type = body.get("validation_type", "penniless")
    if validation_type not in VALIDATION_TYPES:
        raise Refused("validation_type must be penniless, pennydrop or hybrid.")
    optional_int(body, "transfer_amount", low=1, high=100)
    details = body.get("beneficiary_details")
    if not isinstance(details, Mapping):
        raise Refused("beneficiary_details is required.")
    account = require_str(details, "account_number", pattern=r"[0-9]{9,18}", max_len=18)
    ifsc = require_str(details, "ifsc", pattern=IFSC_PATTERN, min_len=11, max_len=11)
    txn = rt.new_id()
    fault = digits_fault(account[-4:], txn)
    if fault is not None:
        return fault
    invalid = (account, ifsc) == DECENTRO_SANDBOX["bank_failure"] or MAGIC_DIGITS.get(account[-4:]) == "invalid"
    answer: dict[str, Any] = {
        "decentroTxnId": txn,
        "status": "failure" if invalid else "success",
        "responseCode": "E00000" if invalid else "S00000",
        "message": "Account validation failed." if invalid else "Account validation successful.",
        "accountStatus": "invalid" if invalid else "valid",
        "beneficiaryName": "" if invalid else synthetic_name(account + ifsc),
        "bankReferenceNumber": synthetic_digits("bank" + txn, 12),
        "validationType": validation_type,
        "transactionStatus": "failure" if invalid else "success",
    }
    if invalid:
        answer["providerMessage"] = "NPCIERROR:INVALID ACCOUNT"
    return 200, answer
