"""KYC look-ups: PAN, Central KYC (CKYC) search and bank-account validation.

Paths and shapes follow Decentro's KYC and banking API references (docs.decentro.tech) and
the OpenAPI spec of Decentro's Go KYC SDK (``decentro-in/decentro-in-kyc-sdk-go``,
``api/openapi.yaml``). All three are reads: a retry cannot verify twice in a way that
matters, so attempts are retried with a fresh reference id.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from marshmallow import fields, pre_load, validate

from ..envelope import Outcome, classify, data_of, failure, names_match, operation_id_of, provider_code_of, succeeded
from ..errors import UpstreamProtocolError
from ..masking import mask_account, mask_pan
from ..ports import GatewayResponse
from ..retry import RetryMode
from ..validation import ACCOUNT_RE, IFSC_RE, NAME_RE, PAN_RE, StrictSchema, upper_strip
from .base import Operation, Request

__all__ = ["BANK_ACCOUNT", "BankSchema", "CKYC", "CkycSchema", "PAN", "PanSchema"]

INVALID_ID_CODES = frozenset({"E00016", "error_invalid_id_number"})
PAN_DETAILED = "PAN_DETAILED"
"""Decentro's business-verification docs (docs.decentro.tech): ``document_type`` takes capitals
and underscores only ("Only special character allowed is underscore")."""


def missing_fields(what: str, *, request_id: str) -> NoReturn:
    raise UpstreamProtocolError(f"Decentro's {what} answer lacks expected fields", request_id=request_id)


# -- PAN --------------------------------------------------------------------------------------


class PanSchema(StrictSchema):
    pan = fields.String(required=True, validate=validate.Regexp(PAN_RE, error="Not a valid PAN (AAAAA9999A)."))
    name = fields.String(load_default=None, validate=validate.Regexp(NAME_RE, error="Not a valid name."))
    # Decentro's PAN_DETAILED (split names, Aadhaar seeding); a JSON boolean, not "yes" or 1
    detailed = fields.Boolean(load_default=False, truthy={True}, falsy={False})

    @pre_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**data, "pan": upper_strip(data.get("pan"))}


def pan_body(request: Request, reference_id: str) -> dict[str, Any]:
    # Here ``consent`` is the string "Y" and the purpose must be over 20 characters. The
    # detailed type's spelling is a setting (DECENTRO_PAN_DETAILED_DOCUMENT_TYPE), put in the
    # request by the service: Decentro's current docs take PAN_DETAILED, its older spec PAN-DETAILED.
    detailed = request.get("pan_detailed_document_type") or PAN_DETAILED
    document_type = detailed if request.get("detailed") else "PAN"
    return {"reference_id": reference_id, "document_type": document_type, "id_number": request["pan"],
            "consent": "Y", "consent_purpose": request["consent_purpose"]}


PAN_DETAIL_FIELDS = (("panStatus", "pan_status_detail"), ("aadhaarSeedingStatus", "aadhaar_seeding_status"),
                     ("firstName", "first_name"), ("lastName", "last_name"), ("fullName", "full_name"))


def parse_pan(response: GatewayResponse, reference_id: str, request: Request) -> Outcome:
    early = classify(response, request_id=reference_id)
    if early:
        return early
    body = response.body
    txn = operation_id_of(body)
    # kycStatus is the look-up's own outcome (SUCCESS in every PAN example of Decentro's KYC spec):
    # given and anything else, the look-up did not succeed, whatever kycResult holds.
    looked_up = str(body.get("kycStatus") or "SUCCESS").upper() == "SUCCESS"
    if not succeeded(body, request_id=reference_id) or not looked_up:
        return failure("REJECTED_BY_PROVIDER", operation_id=txn, provider_code=provider_code_of(body))
    result = body.get("kycResult")
    if not isinstance(result, Mapping) or not result.get("idStatus"):
        missing_fields("PAN", request_id=reference_id)
    status = str(result.get("idStatus", "")).upper()
    registered = result.get("name") or result.get("fullName")
    found = {"kyc_status": str(body.get("kycStatus", "")).upper() or None, "pan_status": status or None,
             "registered_name": registered, "name_match": names_match(request.get("name"), registered)}
    for source, target in PAN_DETAIL_FIELDS:
        if source in result:
            found[target] = result[source]
    if status == "VALID":
        return Outcome("SUCCESS", txn, found)
    return failure("INVALID_DOCUMENT", operation_id=txn, fields=found)


PAN = Operation(
    name="pan", method="POST", path="/kyc/public_registry/validate", module="kyc", mode=RetryMode.READ,
    schema=PanSchema(), body=pan_body, parse=parse_pan, subject=lambda request: mask_pan(request["pan"]),
    cache_fields=("pan", "name", "detailed"), consent=True,
    from_settings={"pan_detailed_document_type": "pan_detailed_document_type"},
)


# -- CKYC ---------------------------------------------------------------------------------------


class CkycSchema(StrictSchema):
    pan = fields.String(required=True, validate=validate.Regexp(PAN_RE, error="Not a valid PAN (AAAAA9999A)."))

    @pre_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {**data, "pan": upper_strip(data.get("pan"))}


def ckyc_body(request: Request, reference_id: str) -> dict[str, Any]:
    return {"reference_id": reference_id, "document_type": "PAN", "id_number": request["pan"], "consent": True,
            "consent_purpose": request["consent_purpose"]}


def parse_ckyc(response: GatewayResponse, reference_id: str, request: Request) -> Outcome:
    early = classify(response, request_id=reference_id)
    if early:
        return early
    body, data = response.body, data_of(response.body)
    txn = operation_id_of(body)
    result = data.get("kycResult")
    if not succeeded(body, request_id=reference_id):
        # Only Decentro's "no records" (E00026, read by classify) is NO_RECORD: any other
        # refusal keeps its own code.
        code = "INVALID_DOCUMENT" if provider_code_of(body) in INVALID_ID_CODES else "REJECTED_BY_PROVIDER"
        return failure(code, operation_id=txn, provider_code=provider_code_of(body))
    if not isinstance(result, Mapping) or not result.get("ckycId"):  # a record is found by its CKYC id
        missing_fields("CKYC", request_id=reference_id)
    found = {
        "kyc_status": data.get("kycStatus"), "ckyc_id": result.get("ckycId"),
        "full_name": result.get("fullName"), "age": result.get("age"), "kyc_date": result.get("kycDate"),
        "fathers_full_name": result.get("fathersFullName"), "photo": result.get("photo"),
        "identity_details": result.get("identityDetails"),
    }
    return Outcome("SUCCESS", txn, found)


CKYC = Operation(
    name="ckyc", method="POST", path="{settings.ckyc_path}", module="kyc", mode=RetryMode.READ,
    schema=CkycSchema(), body=ckyc_body, parse=parse_ckyc, subject=lambda request: mask_pan(request["pan"]),
    cache_fields=("pan",), consent=True,
)


# -- bank account -------------------------------------------------------------------------------


class BankSchema(StrictSchema):
    account_number = fields.String(
        required=True, validate=validate.Regexp(ACCOUNT_RE, error="Account number must be 9 to 18 digits.")
    )
    ifsc = fields.String(required=True, validate=validate.Regexp(IFSC_RE, error="Not a valid IFSC (AAAA0XXXXXX)."))
    name = fields.String(load_default=None, validate=validate.Regexp(NAME_RE, error="Not a valid name."))
    validation_type = fields.String(
        load_default="penniless", validate=validate.OneOf(["penniless", "pennydrop", "hybrid"])
    )

    @pre_load
    def _normalise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        account = data.get("account_number")
        if isinstance(account, str):
            account = account.replace(" ", "")
        return {**data, "account_number": account, "ifsc": upper_strip(data.get("ifsc"))}


def bank_body(request: Request, reference_id: str) -> dict[str, Any]:
    beneficiary = {"account_number": request["account_number"], "ifsc": request["ifsc"]}
    if request.get("name"):
        beneficiary["name"] = request["name"]
    return {"reference_id": reference_id, "purpose_message": "Account verification",
            "validation_type": request["validation_type"], "beneficiary_details": beneficiary}


def parse_bank(response: GatewayResponse, reference_id: str, request: Request) -> Outcome:
    early = classify(response, request_id=reference_id)
    if early:
        return early
    body = response.body  # banking answers are flat, with a lowercase status
    txn = operation_id_of(body)
    account_status = str(body.get("accountStatus", "")).lower()
    registered = body.get("beneficiaryName")
    found = {"account_status": account_status.upper() or None, "beneficiary_name": registered,
             "name_match": names_match(request.get("name"), registered),
             "bank_reference_number": body.get("bankReferenceNumber"),
             "validation_type": body.get("validationType"), "provider_message": body.get("providerMessage")}
    if succeeded(body, request_id=reference_id) and account_status == "valid":
        return Outcome("SUCCESS", txn, found)
    if account_status:
        return failure("INVALID_DOCUMENT", operation_id=txn, fields=found, provider_code=provider_code_of(body))
    if succeeded(body, request_id=reference_id):  # a success that does not say whether the account is valid
        missing_fields("account validation", request_id=reference_id)
    return failure("REJECTED_BY_PROVIDER", operation_id=txn, fields=found, provider_code=provider_code_of(body))


BANK_ACCOUNT = Operation(
    name="bank_account", method="POST", path="/core_banking/money_transfer/validate_account", module="banking",
    mode=RetryMode.READ, schema=BankSchema(), body=bank_body, parse=parse_bank,
    subject=lambda request: mask_account(request["account_number"]),
    cache_fields=("account_number", "ifsc", "name", "validation_type"), consent=True,
)
