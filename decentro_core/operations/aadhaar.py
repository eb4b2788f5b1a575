"""Aadhaar: Decentro's OTP e-KYC flow, and UIDAI's offline e-KYC file verified here.

OTP flow (Decentro's Aadhaar e-KYC API, docs.decentro.tech): ``POST /v2/kyc/aadhaar/otp``
sends an OTP to the holder's linked mobile; ``POST /v2/kyc/aadhaar/otp/validate`` within 10
minutes returns the e-KYC data. Neither is repeated blindly: a start sends an SMS and a
validation spends an attempt, so both are writes.

The offline file (UIDAI's "Aadhaar Paperless Offline e-KYC", uidai.gov.in) is checked by the
:class:`~decentro_core.ports.AadhaarVerifier` port against UIDAI's pinned keys: nothing leaves
the process and nothing is billed. A refused file is never stored: its record keeps the
outcome, a digest and the size; an accepted file is sealed as the signed proof.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from marshmallow import ValidationError as MarshmallowError
from marshmallow import fields, post_load, pre_load, validate

from ..envelope import (
    Outcome,
    classify,
    data_of,
    failure,
    operation_id_of,
    provider_code_of,
    provider_codes_of,
    succeeded,
    to_envelope,
)
from ..errors import AadhaarFileRejected, OtpError, UnknownReference, UpstreamProtocolError
from ..masking import mask_aadhaar
from ..ports import AadhaarKyc, ConsentRecord, GatewayResponse
from ..retry import RetryMode
from ..validation import AADHAAR_RE, MobileField, StrictSchema, is_storable, is_valid_aadhaar
from .base import LocalOperation, Operation, Request

if TYPE_CHECKING:
    from ..runner import OperationRunner

__all__ = [
    "verify_otp",
    "AadhaarFileOptions",
    "AadhaarNumberSchema",
    "AadhaarOtpVerifySchema",
    "AadhaarXmlSchema",
    "OFFLINE_FILE",
    "OTP_START",
    "OTP_VERIFY",
    "check_session_owner",
    "verify_offline_file",
]

SIGNED_FILE = "_aadhaar_zip"

# -- OTP flow -----------------------------------------------------------------------------------

OTP_ERRORS = {
    "error_invalid_otp": "AADHAAR_OTP_INVALID",
    "error_otp_limit_exceeded": "AADHAAR_OTP_LIMIT_EXCEEDED",
    "error_aadhaar_otp_flooding": "AADHAAR_OTP_FLOODING",
    "error_no_mobile_found": "AADHAAR_NO_MOBILE_LINKED",
    "error_invalid_session": "AADHAAR_OTP_SESSION_EXPIRED",
}
OTP_MESSAGES = {
    "AADHAAR_OTP_INVALID": "The OTP is not correct.",
    "AADHAAR_OTP_LIMIT_EXCEEDED": "Too many OTP attempts for this Aadhaar.",
    "AADHAAR_OTP_FLOODING": "Too many OTP requests; try again later.",
    "AADHAAR_NO_MOBILE_LINKED": "No mobile number is linked to this Aadhaar.",
    "AADHAAR_OTP_SESSION_EXPIRED": "The OTP session has expired; start again.",
}


class AadhaarNumberSchema(StrictSchema):
    aadhaar_number = fields.String(required=True, metadata={
        "pattern": AADHAAR_RE.pattern,
        "description": "12 digits, the last a Verhoeff check digit; spaces and hyphens are ignored."})

    @pre_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        number = data.get("aadhaar_number")
        if isinstance(number, str):
            number = number.replace(" ", "").replace("-", "")
        return {**data, "aadhaar_number": number}

    @post_load
    def _check(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if not is_valid_aadhaar(data["aadhaar_number"]):
            raise MarshmallowError("Not a valid Aadhaar number.", "aadhaar_number")
        return data


class AadhaarOtpVerifySchema(StrictSchema):
    initiation_id = fields.String(required=True, validate=validate.Length(min=1, max=128))
    otp = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6}\Z", error="OTP must be 6 digits."))
    share_code = fields.String(
        load_default=None, validate=validate.Regexp(r"^[0-9]{4}\Z", error="Share code must be 4 digits.")
    )


def otp_start_body(request: Request, reference_id: str) -> dict[str, Any]:
    return {"reference_id": reference_id, "consent": True, "purpose": request["consent_purpose"],
            "aadhaar_number": request["aadhaar_number"]}


def otp_verify_body(request: Request, reference_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"reference_id": reference_id, "consent": True, "purpose": request["consent_purpose"],
                            "initiation_transaction_id": request["initiation_id"], "otp": request["otp"],
                            "generate_pdf": False, "generate_xml": False}
    if request.get("share_code"):
        body["share_code"] = request["share_code"]
    return body


def parse_otp(response: GatewayResponse, reference_id: str, request: Request) -> Outcome:
    """Both OTP answers (a validation's request has an ``initiation_id``). The error keys are
    read first: they come with HTTP 4xx, which the shared rules would otherwise read as a plain
    rejection. A success needs Decentro's own ``SUCCESS`` and what the answer promises: the
    session's transaction id, or the e-KYC data (and, with a share code, UIDAI's signed ZIP)."""
    for key in provider_codes_of(response.body):
        if key in OTP_ERRORS:
            code = OTP_ERRORS[key]
            raise OtpError(OTP_MESSAGES[code], code=code, provider_code=key, request_id=reference_id,
                           upstream_status=response.status_code)
    early = classify(response, request_id=reference_id)
    if early:
        return early
    body, data = response.body, data_of(response.body)
    txn = operation_id_of(body)
    if not succeeded(body, request_id=reference_id):
        return failure("REJECTED_BY_PROVIDER", operation_id=txn, provider_code=provider_code_of(body))
    if "initiation_id" not in request:
        if not txn:
            raise UpstreamProtocolError("Decentro's OTP answer lacks its transaction id", request_id=reference_id)
        return Outcome("SUCCESS", txn, {"initiation_id": txn, "otp_valid_for_seconds": 600})
    identity = data.get("proofOfIdentity")
    if not isinstance(identity, Mapping) or not identity:
        raise UpstreamProtocolError("Decentro's e-KYC answer lacks the identity data", request_id=reference_id)
    found = {"aadhaar_reference_number": data.get("aadhaarReferenceNumber"),
             "name": identity.get("name"), "date_of_birth": identity.get("dob"),
             "gender": identity.get("gender"), "address": data.get("proofOfAddress"),
             "photo": data.get("image"), "hashed_mobile": identity.get("hashedMobileNumber"),
             "hashed_email": identity.get("hashedEmail")}
    signed = data.get("aadhaarFile")
    if isinstance(signed, Mapping) and signed.get("aadhaarZip"):
        found[SIGNED_FILE] = signed["aadhaarZip"]  # taken out again by verify_signed_file
    elif request.get("share_code"):
        # The caller asked for UIDAI-signed data: unsigned data in its place is not a success.
        return failure("AADHAAR_SIGNED_FILE_MISSING", operation_id=txn)
    return Outcome("SUCCESS", txn, found)


def verify_signed_file(runner: OperationRunner, outcome: Outcome, request: Request) -> Outcome:
    """With a share code, Decentro's answer carries UIDAI's signed offline e-KYC ZIP (base64).
    It is checked here like an uploaded file (pinned UIDAI keys, the caller's share code): the
    e-KYC then rests on UIDAI's signature, not only on Decentro's word. A file that fails the
    check fails the call; the file and the share code are never stored (a digest is)."""
    found = dict(outcome.fields)
    encoded = found.pop(SIGNED_FILE, None)
    if encoded is None:
        return Outcome(outcome.status, outcome.operation_id, found)
    limit = runner.settings.aadhaar_max_bytes
    try:
        if not isinstance(encoded, str) or len(encoded) > (limit + 2) // 3 * 4:
            raise AadhaarFileRejected("The signed file is larger than the accepted size.", code="AADHAAR_FILE_TOO_LARGE")
        content = base64.b64decode(encoded, validate=True)
        kyc = runner.ports.aadhaar_verifier.verify(content, request.get("share_code") or "")
    except binascii.Error:
        return failure("AADHAAR_ZIP_INVALID", operation_id=outcome.operation_id)
    except AadhaarFileRejected as exc:
        return failure(exc.code, operation_id=outcome.operation_id)
    proof = {"signed_file_sha256": hashlib.sha256(content).hexdigest(), "signed_proof": True}
    return Outcome("SUCCESS", outcome.operation_id, {**found, **_verified_fields(kyc), **proof})


def last_four_only(operation: Operation, request: Request) -> dict[str, Any]:
    return {"last4": request["aadhaar_number"][-4:]}


def initiation_only(operation: Operation, request: Request) -> dict[str, Any]:
    return {"initiation_id": request["initiation_id"]}  # never the OTP or the share code


OTP_START = Operation(
    name="aadhaar_otp_start", method="POST", path="/v2/kyc/aadhaar/otp", module="kyc", mode=RetryMode.WRITE,
    schema=AadhaarNumberSchema(), body=otp_start_body, parse=parse_otp,
    subject=lambda request: mask_aadhaar(request["aadhaar_number"]), sealed_input=last_four_only, consent=True,
)
OTP_VERIFY = Operation(
    name="aadhaar_otp_verify", method="POST", path="/v2/kyc/aadhaar/otp/validate", module="kyc",
    mode=RetryMode.WRITE, schema=AadhaarOtpVerifySchema(), body=otp_verify_body, parse=parse_otp,
    subject=lambda request: f"initiation {request['initiation_id']}", sealed_input=initiation_only, consent=True,
    complete=verify_signed_file, budget="aadhaar_otp_timeout",
)


def verify_otp(runner: OperationRunner, request: Request, *, user_id: str | None, actor: str,
               consent: ConsentRecord | None) -> dict[str, Any]:
    """Validate an OTP at most once per (user, session, OTP), under its own time budget.

    Decentro took ~45 s to validate in a public integration, longer than a web request may
    wait, and a second validation of a spent OTP fails; Decentro publishes no look-up of a
    validation's result. So the reference id sent is derived from the session and the OTP:
    the same submission again (the client gave up, the user pressed again) answers the first
    call's stored result, or ``PENDING`` (``IN_FLIGHT``) while it still runs, and never spends
    the OTP twice. Another OTP for the session (a mistyped one) is a new call.
    """
    key = f"aadhaar-otp|{user_id or ''}|{request['initiation_id']}|{request['otp']}"
    reference = "otpv-" + runner.ports.vault.fingerprint(key)[:32]
    return runner.run_once(OTP_VERIFY, request, reference, user_id=user_id, actor=actor, consent=consent)


def check_session_owner(runner: OperationRunner, initiation_id: str, user_id: str | None) -> None:
    """An OTP session is completed only by the user who started it (and only if we started
    it): anyone else gets the same answer as for an unknown session, and nothing is sent."""
    started = runner.ports.records.find_by_operation_id(initiation_id) if is_storable(initiation_id) else None
    if started is None or started.operation != OTP_START.name or started.user_id != user_id:
        raise UnknownReference("No Aadhaar OTP session with this initiation id")


# -- the offline file, verified here ---------------------------------------------------------------



class AadhaarFileOptions(StrictSchema):
    """What comes with an offline e-KYC file, however the file itself is carried."""

    share_code = fields.String(
        required=True,
        validate=[
            validate.Length(min=4, max=64, error="Share code must be 4 to 64 characters."),
            validate.Regexp(r"^\S+\Z", error="Share code must not contain spaces."),
        ],
    )
    mobile = MobileField(load_default=None)
    email = fields.Email(load_default=None)


class AadhaarXmlSchema(AadhaarFileOptions):
    content = fields.Raw(required=True)
    max_bytes = fields.Integer(required=True, load_only=True)

    @post_load
    def _check_content(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        content = data["content"]
        if isinstance(content, str):
            content = content.encode("utf-8")
        if not isinstance(content, bytes) or not content:
            raise MarshmallowError("Content must be non-empty XML text or ZIP bytes.", "content")
        if len(content) > data.pop("max_bytes"):
            raise MarshmallowError("File is larger than the configured limit.", "content")
        return {**data, "content": content}


OFFLINE_FILE = LocalOperation(name="aadhaar_xml", schema=AadhaarXmlSchema())


def _verified_fields(kyc: AadhaarKyc) -> dict[str, Any]:
    return {
        "aadhaar_last4": kyc.aadhaar_last4, "masked_aadhaar": mask_aadhaar("0" * 8 + kyc.aadhaar_last4),
        "generated_at": kyc.generated_at.isoformat(), "name": kyc.name, "date_of_birth": kyc.date_of_birth,
        "gender": kyc.gender, "address": dict(kyc.address), "photo": kyc.photo_base64,
        "mobile_verified": kyc.mobile_verified, "email_verified": kyc.email_verified,
        "signature_verified": True, "signer": kyc.signer, "verified_locally": True,
    }


def file_digest(content: bytes) -> Mapping[str, Any]:
    """What a record keeps of a file before it is known to be genuine: no content at all."""
    return {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}


def verify_offline_file(runner: OperationRunner, request: Request, *, user_id: str | None,
                        actor: str) -> dict[str, Any]:
    """Verify an offline e-KYC file locally; a refused file is a FAILURE envelope with the
    refusal's code. The share code is never stored, a refused file is never stored."""
    content: bytes = request["content"]
    reference = runner.new_reference_id()
    operation_id = "LOCAL-" + reference.replace("-", "")[:20].upper()
    record = runner.open_record(reference, OFFLINE_FILE.name, user_id=user_id, sealed_input=file_digest(content))
    subject = "aadhaar offline file"
    try:
        kyc = runner.ports.aadhaar_verifier.verify(content, request["share_code"], mobile=request.get("mobile"),
                                                   email=request.get("email"))
    except AadhaarFileRejected as exc:
        outcome = failure(exc.code, operation_id=operation_id)
    else:
        outcome = Outcome("SUCCESS", operation_id, _verified_fields(kyc))
        subject = mask_aadhaar("0" * 8 + kyc.aadhaar_last4)
        proof = {**file_digest(content), "file_base64": base64.b64encode(content).decode()}
        record = replace(record, sealed_request=runner.seal_json(proof))
    envelope = to_envelope(outcome, reference_id=reference)
    runner.settle_outcome(record, outcome.status, actor=actor, action=OFFLINE_FILE.name, subject=subject,
                          outcome=outcome.error_code or outcome.status, operation_id=operation_id, result=envelope)
    return envelope
