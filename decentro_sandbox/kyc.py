"""Emulated KYC and bank-account endpoints: PAN (and PAN_DETAILED), CKYC search, account validation.

Each handler takes the runtime and the request body and returns Decentro's raw answer, or
raises :class:`~decentro_sandbox.wire.Refused`. Scenarios: see
:mod:`decentro_sandbox.scenarios`. Shapes follow Decentro's KYC spec
(``decentro-in/decentro-in-kyc-sdk-go`` ``api/openapi.yaml``, ``/kyc/public_registry/validate``)
and docs.decentro.tech ("Validate & Fetch", "CKYC Sandbox").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .scenarios import DECENTRO_SANDBOX, MAGIC_DIGITS, PLACEHOLDER_JPEG, synthetic_digits, synthetic_name
from .wire import (
    Fault,
    Refused,
    Reply,
    Runtime,
    digits_fault,
    failure,
    ist_timestamp,
    optional_int,
    require_consent_true,
    require_reference,
    require_str,
)

__all__ = ["ckyc_search", "pan_validate", "validate_account"]

PAN_PATTERN = r"[A-Z]{5}[0-9]{4}[A-Z]"
IFSC_PATTERN = r"[A-Z]{4}0[A-Z0-9]{6}"
NO_RECORD = "No records found for the given ID."
VALIDATION_TYPES = frozenset({"penniless", "pennydrop", "hybrid"})
CKYC_DOCUMENT_TYPES = frozenset({"PAN", "AADHAAR", "PASSPORT", "VOTER_ID", "DRIVING_LICENCE", "CKYC"})
# Decentro's current docs (docs.decentro.tech, business verification and the validate API
# reference): ``document_type`` is capitals and underscores only ("Only special character allowed
# is underscore"), so PAN_DETAILED is accepted and the older spec's PAN-DETAILED is not.
PAN_DOCUMENT_TYPES = frozenset({"PAN", "PAN_DETAILED"})  # the emulated ones, spelled exactly
# Valid for Decentro (its E00016 message; docs.decentro.tech "Validate & Fetch") but not emulated here.
NOT_EMULATED_TYPES = frozenset({
    "GSTIN", "GSTIN_DETAILED", "VOTERID", "AADHAAR", "DRIVING_LICENSE", "RC", "RC_DETAILED", "CIN", "DIN",
    "FCRN", "FLLPIN", "LLPIN", "FSSAI", "UDYOG_AADHAAR", "PASSPORT",
})
INVALID_DOCUMENT_TYPE = (  # Decentro's 400 E00016 message (KYC SDK spec), in the current docs' spellings
    "Invalid Identity Document. Valid document types are PAN, PAN_DETAILED, GSTIN, GSTIN_DETAILED, "
    "VOTERID, AADHAAR, DRIVING_LICENSE, RC, RC_DETAILED, CIN, DIN, FCRN, FLLPIN, LLPIN, FSSAI and UDYOG_AADHAAR."
)


def pan_validate(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    """``/kyc/public_registry/validate`` for PAN and PAN_DETAILED; every 400 says ``kycStatus UNKNOWN``."""
    try:
        detailed, pan = _pan_request(body)
    except Refused as refused:
        refusal = failure(rt.new_id(), refused.message, code=refused.code, key=refused.key)
        return refused.status, {**refusal, "kycStatus": "UNKNOWN", **_timestamps(rt)}
    txn = rt.new_id()
    fault = digits_fault(pan[5:9], txn)
    if fault is not None:
        return fault
    outcome = MAGIC_DIGITS.get(pan[5:9])
    base = {"decentroTxnId": txn, "status": "SUCCESS", "responseCode": "S00000", **_timestamps(rt)}
    if outcome == "no_record":
        error = {"message": NO_RECORD, "responseCode": "E00026"}
        return 200, {**base, "kycStatus": "UNKNOWN", "message": NO_RECORD, "error": error}
    valid = outcome != "invalid"
    result = _pan_detailed(pan, valid) if detailed else _pan_result(pan, valid)
    message = "KYC Details for PAN retrieved successfully" if valid else "The ID is invalid."
    return 200, {**base, "kycStatus": "SUCCESS", "message": message, "kycResult": result}


def _pan_request(body: Mapping[str, Any]) -> tuple[bool, str]:
    """(detailed?, PAN), checked in the order of Decentro's examples; raises :class:`Refused`."""
    require_reference(body)
    document_type = body.get("document_type")
    if isinstance(document_type, str) and document_type in NOT_EMULATED_TYPES:
        raise Refused(f"The offline sandbox does not emulate document_type {document_type}; "
                      "Decentro's staging host does.", status=501, code="E00000", key="error_not_emulated")
    if not isinstance(document_type, str) or document_type not in PAN_DOCUMENT_TYPES:
        raise Refused(INVALID_DOCUMENT_TYPE, code="E00016", key="error_invalid_document_type")
    pan = require_str(body, "id_number", pattern=PAN_PATTERN, min_len=10, max_len=10)
    consent = body.get("consent")
    if consent is None or consent == "":
        raise Refused("User consent cannot be empty. Hint: consent (string)", key="error_empty_consent")
    if consent != "Y":
        raise Refused("Invalid consent. Hint: consent must be 'Y'.", key="error_invalid_consent_type")
    purpose = body.get("consent_purpose")
    if purpose is None or purpose == "":
        raise Refused("Consent purpose cannot be empty. Hint: consent_purpose (string).", key="error_empty_purpose")
    if not isinstance(purpose, str) or len(purpose.strip()) <= 20:
        raise Refused("consent_purpose must be longer than 20 characters.", key="error_short_purpose_length")
    return document_type == "PAN_DETAILED", pan


def _pan_result(pan: str, valid: bool) -> dict[str, str]:
    return {"idNumber": pan, "idStatus": "VALID" if valid else "INVALID", "name": synthetic_name(pan) if valid else ""}


def _pan_detailed(pan: str, valid: bool) -> dict[str, str]:
    """PAN-Detailed's fields (all strings), synthetic: the same fictional person as plain PAN."""
    first, last = synthetic_name(pan).split(" ", 1) if valid else ("", "")
    return {
        "idNumber": pan,
        "idStatus": "VALID" if valid else "INVALID",
        "panStatus": "VALID" if valid else "INVALID",
        "firstName": first,
        "lastName": last,
        "fullName": f"{first} {last}".strip(),
        "aadhaarSeedingStatus": "Y" if valid else "NA",
    }


def _timestamps(rt: Runtime) -> dict[str, str]:
    stamp = ist_timestamp(rt.now())
    return {"requestTimestamp": stamp, "responseTimestamp": stamp}


def ckyc_search(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    """``/v2/kyc/ckyc/search`` and Decentro's ``/testbed/...`` twin: ``data{kycStatus, kycResult, message}``."""
    require_reference(body)
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
    return 200, {
        "decentroTxnId": txn,
        "status": "SUCCESS",
        "responseCode": "S00000",
        "data": {
            "kycStatus": "SUCCESS",
            "kycResult": _ckyc_record(id_number, str(doc_type)),
            "message": "KYC Details for CKYC retrieved successfully.",
        },
        "responseKey": "success_ckyc_search",
    }


def _ckyc_record(id_number: str, doc_type: str) -> dict[str, Any]:
    """Decentro's sandbox record: ``age`` a string, identity status ``"03"``; fictional person."""
    name = synthetic_name(id_number)
    age = (str(DECENTRO_SANDBOX["ckyc_age"]) if id_number == DECENTRO_SANDBOX["ckyc_pan"]
           else str(20 + int(synthetic_digits("age" + id_number, 2)) % 50))
    return {
        "ckycId": synthetic_digits("ckyc" + id_number, 14),
        "fullName": name,
        "age": age,
        "kycDate": "01-01-2020",
        "updatedDate": "14-04-2020",
        "fathersFullName": synthetic_name("father" + id_number),
        "imageType": "JPG",
        "photo": PLACEHOLDER_JPEG,
        "identityDetails": {"identity": [{"status": "03", "type": doc_type}]},
    }


def validate_account(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    require_reference(body)
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
