"""One envelope for every operation, and the rules shared by every Decentro answer.

Every operation returns::

    {"status": "SUCCESS" | "FAILURE" | "PENDING",
     "data": {"operation_id": <decentroTxnId>, "reference_id": <ours>, ...fields},
     "error": {"code": ..., "message": ...}}          # only when status is FAILURE

:func:`classify` reads what all Decentro answers have in common (both the usual
``{"status": "SUCCESS", "responseCode", "responseKey", "data"}`` shape and the flat lowercase
banking shape) and raises for what is not a business outcome: refused credentials, a reused
reference id. Messages are our own; response text is never copied (it can carry personal data).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import AuthenticationFailed, DuplicateReference, UpstreamProtocolError
from .ports import GatewayResponse

__all__ = [
    "Outcome",
    "Status",
    "classify",
    "data_of",
    "failure",
    "is_success",
    "names_match",
    "operation_id_of",
    "provider_code_of",
    "to_envelope",
]

Status = Literal["SUCCESS", "FAILURE", "PENDING"]

AUTH_KEYS = frozenset(
    {
        "error_empty_module_secret",
        "error_unauthorized_module",
        "error_no_subscription_found",
        "error_module_credits_exhausted",
        "error_invalid_credentials",
        "error_empty_client_id",
        "error_empty_client_secret",
        "error_module_access_expired",
        "unauthorized_provider",
        "error_unauthorized_provider",
        "error_invalid_module_secret",
    }
)
DUPLICATE_KEYS = frozenset({"E00019", "error_duplicate_reference_id"})
NO_RECORD_CODES = frozenset({"E00026"})

MESSAGES = {
    "NO_RECORD": "No record was found for this document.",
    "INVALID_DOCUMENT": "The document is not valid.",
    "REJECTED_BY_PROVIDER": "Decentro rejected the request.",
    "PAYMENT_FAILED": "The payment failed.",
    "PAYMENT_EXPIRED": "The payment request expired.",
    "PAYMENT_NOT_FOUND": "Decentro does not know this transaction (nothing was debited).",
    "OUTCOME_UNKNOWN": "Decentro did not confirm the outcome in time; reconcile by status.",
    "DELIVERY_FAILED": "The message was not accepted for delivery.",
    # An offline e-KYC file (uploaded, or signed and returned by the OTP flow) refused here:
    "AADHAAR_SIGNATURE_INVALID": "The file's UIDAI signature does not verify.",
    "AADHAAR_SIGNATURE_MISSING": "The file carries no UIDAI signature.",
    "AADHAAR_FILE_TOO_OLD": "The file is older than the accepted age.",
    "AADHAAR_FILE_FROM_FUTURE": "The file's generation time is in the future.",
    "AADHAAR_SHARE_CODE_WRONG": "The share code does not open the file.",
    "AADHAAR_FORMAT_UNSUPPORTED": "The file is not a supported offline e-KYC format.",
    "AADHAAR_FILE_TOO_LARGE": "The file is larger than the accepted size.",
    "AADHAAR_XML_UNSAFE": "The file contains XML constructs that are refused.",
    "AADHAAR_XML_MALFORMED": "The file is not well-formed XML.",
    "AADHAAR_ZIP_INVALID": "The ZIP is damaged or does not hold exactly one XML file.",
    "AADHAAR_REFERENCE_INVALID": "The file's reference id is malformed.",
    "AADHAAR_FILE_REJECTED": "The Aadhaar file was rejected.",
}


@dataclass(frozen=True)
class Outcome:
    """What one operation found, before it is wrapped in the envelope."""

    status: Status
    operation_id: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    provider_code: str | None = None


def failure(code: str, *, operation_id: str | None = None, provider_code: str | None = None,
            fields: Mapping[str, Any] | None = None) -> Outcome:
    return Outcome("FAILURE", operation_id, dict(fields or {}), error_code=code, provider_code=provider_code)


def to_envelope(outcome: Outcome, *, reference_id: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    data = {"operation_id": outcome.operation_id, "reference_id": reference_id, **outcome.fields}
    if extra:
        data.update(extra)
    result: dict[str, Any] = {"status": outcome.status, "data": data}
    if outcome.status == "FAILURE":
        code = outcome.error_code or "FAILED"
        error = {"code": code, "message": MESSAGES.get(code, "The operation failed.")}
        if outcome.provider_code:
            error["provider_code"] = outcome.provider_code
        result["error"] = error
    return result


def operation_id_of(body: Mapping[str, Any]) -> str | None:
    txn = body.get("decentroTxnId") or body.get("decentro_txn_id")
    return str(txn) if txn else None


def provider_code_of(body: Mapping[str, Any]) -> str | None:
    error = body.get("error")
    if isinstance(error, Mapping) and error.get("responseCode"):
        return str(error["responseCode"])
    for key in ("responseKey", "responseCode"):
        value = body.get(key)
        if value and value != "S00000" and not str(value).startswith("success"):
            return str(value)
    return None


def classify(response: GatewayResponse, *, request_id: str) -> Outcome | None:
    """Raise for non-business answers; return a FAILURE for a rejection or "no record";
    return ``None`` when the operation's own parser should read the answer."""
    body = response.body
    codes = {str(body.get("responseKey", "")), str(body.get("responseCode", ""))}
    error = body.get("error")
    if isinstance(error, Mapping):
        codes.add(str(error.get("responseCode", "")))
    txn = operation_id_of(body)
    if response.status_code in (401, 403) or codes & AUTH_KEYS:
        raise AuthenticationFailed(
            "Decentro refused the credentials for this module",
            provider_code=provider_code_of(body), request_id=request_id, upstream_status=response.status_code,
        )
    if codes & DUPLICATE_KEYS:
        raise DuplicateReference(
            "Decentro has already seen this reference id",
            provider_code=provider_code_of(body), request_id=request_id, upstream_status=response.status_code,
        )
    if codes & NO_RECORD_CODES:
        return failure("NO_RECORD", operation_id=txn, provider_code="E00026")
    if 400 <= response.status_code < 500:
        return failure("REJECTED_BY_PROVIDER", operation_id=txn, provider_code=provider_code_of(body))
    if response.status_code >= 300:
        raise UpstreamProtocolError(
            f"Unexpected HTTP {response.status_code} from Decentro", request_id=request_id,
            upstream_status=response.status_code,
        )
    return None


def is_success(body: Mapping[str, Any]) -> bool:
    """``status`` is ``SUCCESS`` (or lowercase ``success`` in banking answers)."""
    return str(body.get("status", "")).upper() == "SUCCESS"


def data_of(body: Mapping[str, Any]) -> Mapping[str, Any]:
    data = body.get("data")
    return data if isinstance(data, Mapping) else {}


def names_match(given: str | None, registered: str | None) -> bool | None:
    """Case- and spacing-insensitive comparison of name tokens; ``None`` if either is absent."""
    if not given or not registered:
        return None

    def tokens(name: str) -> list[str]:
        return sorted(part for part in name.replace(".", " ").casefold().split() if part)

    return tokens(given) == tokens(registered)
