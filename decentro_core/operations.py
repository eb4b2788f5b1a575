"""Decentro's endpoints: for each operation, where it goes, how its body is built, how its
answer is read, and which retry mode it uses (see :mod:`decentro_core.retry`).

Paths and shapes follow Decentro's public SDK specs (``shared/DECENTRO.md``). SMS and e-mail
have no public Decentro API: their paths come from settings and must be confirmed with Decentro.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, NoReturn

from .envelope import (
    Outcome,
    classify,
    data_of,
    failure,
    is_success,
    names_match,
    operation_id_of,
    provider_code_of,
)
from .errors import OtpError, UpstreamProtocolError
from .ports import GatewayResponse, Module
from .retry import RetryMode

__all__ = ["ENDPOINTS", "Endpoint", "bodies", "parsers"]


@dataclass(frozen=True)
class Endpoint:
    method: Literal["GET", "POST"]
    path: str
    module: Module
    mode: RetryMode


ENDPOINTS: Mapping[str, Endpoint] = {
    "pan": Endpoint("POST", "/kyc/public_registry/validate", "kyc", RetryMode.READ),
    "ckyc": Endpoint("POST", "/v2/kyc/ckyc/search", "kyc", RetryMode.READ),
    "bank_account": Endpoint("POST", "/core_banking/money_transfer/validate_account", "banking", RetryMode.READ),
    # An OTP start sends an SMS and an OTP check consumes an attempt: neither is repeated blindly.
    "aadhaar_otp_start": Endpoint("POST", "/v2/kyc/aadhaar/otp", "kyc", RetryMode.WRITE),
    "aadhaar_otp_verify": Endpoint("POST", "/v2/kyc/aadhaar/otp/validate", "kyc", RetryMode.WRITE),
    "upi_link": Endpoint("POST", "/v2/payments/upi/link", "payments", RetryMode.WRITE),
    "upi_collect": Endpoint("POST", "/v2/payments/collection", "payments", RetryMode.WRITE),
    "payment_status": Endpoint("GET", "/v2/payments/transaction/{transaction_id}/status", "payments", RetryMode.READ),
    "sms": Endpoint("POST", "{sms_path}", "notifications", RetryMode.WRITE),
    "email": Endpoint("POST", "{email_path}", "notifications", RetryMode.WRITE),
}


def _rupees(amount: Decimal) -> float:
    # Decentro takes rupees as a JSON number; two decimals are exact in a double's repr.
    return float(amount.quantize(Decimal("0.01")))


class bodies:  # noqa: N801 - a namespace of body builders
    """Request bodies, exactly as Decentro expects them."""

    @staticmethod
    def pan(ref: str, *, pan: str, purpose: str) -> dict[str, Any]:
        return {"reference_id": ref, "document_type": "PAN", "id_number": pan, "consent": "Y",
                "consent_purpose": purpose}

    @staticmethod
    def ckyc(ref: str, *, pan: str, purpose: str) -> dict[str, Any]:
        return {"reference_id": ref, "document_type": "PAN", "id_number": pan, "consent": True,
                "consent_purpose": purpose}

    @staticmethod
    def bank_account(ref: str, *, account_number: str, ifsc: str, name: str | None,
                     validation_type: str) -> dict[str, Any]:
        beneficiary = {"account_number": account_number, "ifsc": ifsc}
        if name:
            beneficiary["name"] = name
        return {"reference_id": ref, "purpose_message": "Account verification",
                "validation_type": validation_type, "beneficiary_details": beneficiary}

    @staticmethod
    def aadhaar_otp_start(ref: str, *, aadhaar_number: str, purpose: str) -> dict[str, Any]:
        return {"reference_id": ref, "consent": True, "purpose": purpose, "aadhaar_number": aadhaar_number}

    @staticmethod
    def aadhaar_otp_verify(ref: str, *, initiation_id: str, otp: str, share_code: str | None,
                           purpose: str) -> dict[str, Any]:
        body: dict[str, Any] = {"reference_id": ref, "consent": True, "purpose": purpose,
                                "initiation_transaction_id": initiation_id, "otp": otp,
                                "generate_pdf": False, "generate_xml": False}
        if share_code:
            body["share_code"] = share_code
        return body

    @staticmethod
    def upi_link(ref: str, *, payee_account: str, amount: Decimal, purpose: str, expiry_minutes: int) -> dict[str, Any]:
        return {"reference_id": ref, "payee_account": payee_account, "amount": _rupees(amount),
                "purpose_message": purpose, "generate_qr": 1, "expiry_time": expiry_minutes, "generate_uri": 1}

    @staticmethod
    def upi_collect(ref: str, *, payee_account: str, payer_upi: str, amount: Decimal, purpose: str,
                    expiry_minutes: int) -> dict[str, Any]:
        return {"reference_id": ref, "payer_upi": payer_upi, "payee_account": payee_account,
                "amount": _rupees(amount), "purpose_message": purpose, "expiry_time": expiry_minutes}

    @staticmethod
    def sms(ref: str, *, phone: str, message: str) -> dict[str, Any]:
        return {"reference_id": ref, "to": phone, "message": message}

    @staticmethod
    def email(ref: str, *, email: str, subject: str, body: str) -> dict[str, Any]:
        return {"reference_id": ref, "to": email, "subject": subject, "body": body}


Parser = Callable[..., Outcome]

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
INVALID_ID_CODES = frozenset({"E00016", "error_invalid_id_number"})
PAYMENT_STATUS = {"SUCCESS": "SUCCESS", "FAILURE": "FAILURE", "FAILED": "FAILURE", "EXPIRED": "FAILURE",
                  "PENDING": "PENDING", "INITIATED": "PENDING"}


def _missing_fields(what: str, *, request_id: str) -> NoReturn:
    raise UpstreamProtocolError(f"Decentro's {what} answer lacks expected fields", request_id=request_id)


class parsers:  # noqa: N801 - a namespace of answer readers
    """Read Decentro's answer into an :class:`Outcome`."""

    @staticmethod
    def pan(response: GatewayResponse, *, request_id: str, name: str | None) -> Outcome:
        early = classify(response, request_id=request_id)
        if early:
            return early
        body = response.body
        result = body.get("kycResult")
        if not isinstance(result, Mapping):
            _missing_fields("PAN", request_id=request_id)
        txn = operation_id_of(body)
        status = str(result.get("idStatus", "")).upper()
        registered = result.get("name") or result.get("fullName")
        fields = {"kyc_status": str(body.get("kycStatus", "")).upper() or None, "pan_status": status or None,
                  "registered_name": registered, "name_match": names_match(name, registered)}
        for source, target in (("panStatus", "pan_status_detail"), ("aadhaarSeedingStatus", "aadhaar_seeding_status")):
            if source in result:
                fields[target] = result[source]
        if status == "VALID":
            return Outcome("SUCCESS", txn, fields)
        return failure("INVALID_DOCUMENT", operation_id=txn, fields=fields)

    @staticmethod
    def ckyc(response: GatewayResponse, *, request_id: str) -> Outcome:
        early = classify(response, request_id=request_id)
        if early:
            return early
        body, data = response.body, data_of(response.body)
        txn = operation_id_of(body)
        result = data.get("kycResult")
        if not is_success(body) or not isinstance(result, Mapping):
            code = "INVALID_DOCUMENT" if provider_code_of(body) in INVALID_ID_CODES else "NO_RECORD"
            return failure(code, operation_id=txn, provider_code=provider_code_of(body))
        fields = {
            "kyc_status": data.get("kycStatus"), "ckyc_id": result.get("ckycId"),
            "full_name": result.get("fullName"), "age": result.get("age"), "kyc_date": result.get("kycDate"),
            "fathers_full_name": result.get("fathersFullName"), "photo": result.get("photo"),
            "identity_details": result.get("identityDetails"),
        }
        return Outcome("SUCCESS", txn, fields)

    @staticmethod
    def bank_account(response: GatewayResponse, *, request_id: str, name: str | None) -> Outcome:
        early = classify(response, request_id=request_id)
        if early:
            return early
        body = response.body
        txn = operation_id_of(body)
        account_status = str(body.get("accountStatus", "")).lower()
        registered = body.get("beneficiaryName")
        fields = {"account_status": account_status.upper() or None, "beneficiary_name": registered,
                  "name_match": names_match(name, registered),
                  "bank_reference_number": body.get("bankReferenceNumber"),
                  "validation_type": body.get("validationType"), "provider_message": body.get("providerMessage")}
        if is_success(body) and account_status == "valid":
            return Outcome("SUCCESS", txn, fields)
        return failure("INVALID_DOCUMENT", operation_id=txn, fields=fields)

    @staticmethod
    def aadhaar_otp(response: GatewayResponse, *, request_id: str) -> Outcome:
        key = str(response.body.get("responseKey", ""))
        if key in OTP_ERRORS:
            code = OTP_ERRORS[key]
            raise OtpError(OTP_MESSAGES[code], code=code, provider_code=key, request_id=request_id,
                           upstream_status=response.status_code)
        early = classify(response, request_id=request_id)
        if early:
            return early
        body, data = response.body, data_of(response.body)
        txn = operation_id_of(body)
        if "proofOfIdentity" not in data:
            return Outcome("SUCCESS", txn, {"initiation_id": txn, "otp_valid_for_seconds": 600})
        identity = data.get("proofOfIdentity") or {}
        fields = {"aadhaar_reference_number": data.get("aadhaarReferenceNumber"),
                  "name": identity.get("name"), "date_of_birth": identity.get("dob"),
                  "gender": identity.get("gender"), "address": data.get("proofOfAddress"),
                  "photo": data.get("image"), "hashed_mobile": identity.get("hashedMobileNumber"),
                  "hashed_email": identity.get("hashedEmail")}
        return Outcome("SUCCESS", txn, fields)

    @staticmethod
    def payment(response: GatewayResponse, *, request_id: str) -> Outcome:
        early = classify(response, request_id=request_id)
        if early:
            return early
        body, data = response.body, data_of(response.body)
        txn = operation_id_of(body)
        if not is_success(body):
            return failure("REJECTED_BY_PROVIDER", operation_id=txn, provider_code=provider_code_of(body))
        raw_status = str(data.get("transactionStatus", "PENDING")).upper()
        fields = {"transaction_id": data.get("transactionId"), "transaction_status": raw_status,
                  "payment_link": data.get("generatedLink"), "upi_uri": data.get("upiUri"),
                  "qr_code": data.get("encodedDynamicQrCode"),
                  "bank_reference_number": data.get("bankReferenceNumber"), "npci_txn_id": data.get("npciTxnId")}
        fields = {k: v for k, v in fields.items() if v is not None}
        status = PAYMENT_STATUS.get(raw_status, "PENDING")
        if status == "FAILURE":
            code = "PAYMENT_EXPIRED" if raw_status == "EXPIRED" else "PAYMENT_FAILED"
            return failure(code, operation_id=txn, fields=fields)
        return Outcome(status, txn, fields)  # type: ignore[arg-type]

    @staticmethod
    def notification(response: GatewayResponse, *, request_id: str) -> Outcome:
        early = classify(response, request_id=request_id)
        if early:
            return early
        body = response.body
        txn = operation_id_of(body)
        if is_success(body):
            return Outcome("SUCCESS", txn, {"message_id": data_of(body).get("messageId") or txn})
        return failure("DELIVERY_FAILED", operation_id=txn, provider_code=provider_code_of(body))
