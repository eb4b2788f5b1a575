"""One envelope for every operation, and the rules shared by every Decentro answer.

Every operation returns::

    {"status": "SUCCESS" | "FAILURE" | "PENDING",
     "data": {"operation_id": <decentroTxnId>, "reference_id": <ours>, ...fields},
     "error": {"code": ..., "message": ...}}          # only when status is FAILURE

:func:`classify` reads what all Decentro answers have in common and raises for what is not a
business outcome: refused credentials, a reused reference id, a rate limit. Three shapes are read:

* v2: ``{"status": "SUCCESS" | "FAILURE", "responseCode", "responseKey", "decentroTxnId", "data",
  "error": {"responseCode", "message"}}`` (Decentro's KYC and collections specs);
* the flat banking shape, with a lowercase ``status``;
* v3: ``{"api_status", "response_key", "decentro_txn_id", "message", "error": {"response_code"}}``
  (docs.decentro.tech). ``api_status`` is the status of the API hit, not of the transaction, and
  a failure can come inside HTTP 200.

Success is never assumed: :func:`is_success` needs the envelope's own ``SUCCESS`` and no error
object (the KYC spec's "no records" answer is ``status: SUCCESS`` with an ``error``), and each
parser then needs the data it promises. Messages are our own; response text is never copied (it
can carry personal data).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import AuthenticationFailed, DuplicateReference, RateLimited, UpstreamError, UpstreamProtocolError
from .ports import GatewayResponse

__all__ = [
    "Outcome",
    "Status",
    "classify",
    "codes_of",
    "data_of",
    "failure",
    "is_failure",
    "is_success",
    "names_match",
    "operation_id_of",
    "provider_code_of",
    "provider_codes_of",
    "succeeded",
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
# Compared lowercased: v3 spells the same keys and codes in snake_case fields.
DUPLICATE_KEYS = frozenset({"e00019", "error_duplicate_reference_id"})
# Decentro publishes no rate-limit key (its rate limit is HTTP 429, read before any parser in
# retry.raise_for_transient_status); these are the keys of that refusal in either shape.
RATE_LIMIT_KEYS = frozenset({"error_rate_limit_exceeded", "error_too_many_requests"})
NO_RECORD_CODES = frozenset({"e00026"})
SUCCESS_CODE = "s00000"
ERROR_CODE_RE = re.compile(r"(?i)(e\d+|error_\w*)\Z")  # E00009, error_invalid_id_number

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
    "AADHAAR_SIGNED_FILE_MISSING": "A share code was given but Decentro returned no UIDAI-signed file.",
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


def _error_of(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    error = body.get("error")
    return error if isinstance(error, Mapping) and error else None


def provider_codes_of(body: Mapping[str, Any]) -> list[str]:
    """Decentro's codes and keys, most specific first: the nested error's, then the top level's,
    in both spellings (v2 camelCase, v3 snake_case)."""
    error = _error_of(body) or {}
    found = [error.get(k) for k in ("responseCode", "response_code", "responseKey", "response_key")]
    found += [body.get(k) for k in ("responseKey", "response_key", "responseCode", "response_code")]
    return [str(code) for code in found if isinstance(code, (str, int)) and str(code)]


def codes_of(body: Mapping[str, Any]) -> frozenset[str]:
    """Every code and key of the answer, lowercased (for matching against the sets above)."""
    return frozenset(code.lower() for code in provider_codes_of(body))


def provider_code_of(body: Mapping[str, Any]) -> str | None:
    for code in provider_codes_of(body):
        if code.lower() != SUCCESS_CODE and not code.lower().startswith("success"):
            return code
    return None


def _signals(body: Mapping[str, Any]) -> list[str]:
    """The envelope's own statuses, uppercased: v2 ``status`` and v3 ``api_status``, each that
    is present. A present status that is not a string reads ``"?"`` (never a success)."""
    values = (body.get(key) for key in ("status", "api_status"))
    return [value.upper() if isinstance(value, str) else "?" for value in values if value not in (None, "")]


def _says_error(body: Mapping[str, Any]) -> bool:
    """An error beside the status: an ``error`` of any non-empty kind (an object, a string, a
    list), or a top-level ``E...`` code or ``error_...`` key. Decentro's KYC spec answers a
    refused document classification ``status: SUCCESS`` with ``responseCode: E00009``."""
    if body.get("error"):
        return True
    codes = (body.get(key) for key in ("responseCode", "response_code", "responseKey", "response_key"))
    return any(isinstance(code, str) and ERROR_CODE_RE.match(code) is not None for code in codes)


def is_success(body: Mapping[str, Any]) -> bool:
    """Every status the envelope gives says ``SUCCESS`` (``status`` and v3 ``api_status``; any
    case), and nothing beside them says error. Anything else, an absent status included, and
    two statuses that disagree, is not a success."""
    signals = _signals(body)
    return bool(signals) and all(signal == "SUCCESS" for signal in signals) and not _says_error(body)


def is_failure(body: Mapping[str, Any]) -> bool:
    """The envelope says it failed: a failure status (in either field), or an error whatever the status."""
    return any(signal in ("FAILURE", "FAILED", "ERROR") for signal in _signals(body)) or _says_error(body)


def _refusal(response: GatewayResponse, codes: frozenset[str]) -> tuple[type[UpstreamError], str] | None:
    """The typed error for a refusal that is not a business outcome, the same in v2 and v3."""
    if response.status_code in (401, 403) or codes & AUTH_KEYS:
        return AuthenticationFailed, "Decentro refused the credentials for this module"
    if codes & DUPLICATE_KEYS:
        return DuplicateReference, "Decentro has already seen this reference id"
    if codes & RATE_LIMIT_KEYS:
        return RateLimited, "Decentro is rate limiting this client"
    return None


def succeeded(body: Mapping[str, Any], *, request_id: str) -> bool:
    """What a parser asks: :func:`is_success`, or ``False`` for an answer that says it failed.
    An answer that says neither (no ``status``, no ``api_status``, no error: the KYC spec's
    FSSAI and Udyog examples) is an :class:`UpstreamProtocolError`, never guessed either way."""
    if is_success(body):
        return True
    if is_failure(body):
        return False
    raise UpstreamProtocolError("Decentro's answer says neither success nor failure", request_id=request_id)


def classify(response: GatewayResponse, *, request_id: str) -> Outcome | None:
    """Raise for non-business answers; return a FAILURE for a rejection or "no record";
    return ``None`` when the operation's own parser should read the answer.

    The keys are read whatever the HTTP status: v3 puts a refusal inside HTTP 200."""
    body = response.body
    codes = codes_of(body)
    txn = operation_id_of(body)
    refusal = _refusal(response, codes)
    if refusal is not None:
        kind, message = refusal
        raise kind(message, provider_code=provider_code_of(body), request_id=request_id,
                   upstream_status=response.status_code)
    if codes & NO_RECORD_CODES:
        return failure("NO_RECORD", operation_id=txn, provider_code="E00026")
    if 400 <= response.status_code < 500:
        return failure("REJECTED_BY_PROVIDER", operation_id=txn, provider_code=provider_code_of(body))
    if response.status_code >= 300 or response.status_code < 200:
        raise UpstreamProtocolError(
            f"Unexpected HTTP {response.status_code} from Decentro", request_id=request_id,
            upstream_status=response.status_code,
        )
    return None


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
