"""Decentro's callback wire format: signatures, the fields processing reads, acknowledgements.

Pure functions and values, shared by the processor (:mod:`decentro_core.webhooks.processor`), the
sandbox that sends callbacks, and tests that sign them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ..errors import DuplicateKey, WebhookError, WebhookPayloadError
from ..ports import SETTLED_STATUSES
from ..validation import is_storable, loads_json

__all__ = [
    "ACK_ACCEPTED",
    "ACK_BAD_REQUEST",
    "ACK_UNAUTHORIZED",
    "ACK_UNAVAILABLE",
    "Callback",
    "TERMINAL_STATUSES",
    "WebhookAck",
    "parse_callback",
    "sign_body",
    "validate_signature",
]

ACK_ACCEPTED = "CB_S00000"
ACK_UNAUTHORIZED = "CB_E00013"
ACK_BAD_REQUEST = "CB_E00009"
# Decentro documents no code for "try again later"; E00000 is its internal-error code.
ACK_UNAVAILABLE = "CB_E00000"

TERMINAL_STATUSES = SETTLED_STATUSES  # the callback processor never moves a settled operation
MAX_ID_LENGTH = 128  # ids and keys are stored and indexed: a callback cannot make them unbounded
_STATUS_NAMES = {
    "SUCCESS": "SUCCESS", "SUCCESSFUL": "SUCCESS",
    "FAILURE": "FAILURE", "FAILED": "FAILURE",
    "PENDING": "PENDING", "EXPIRED": "EXPIRED",
}


def sign_body(raw_body: bytes | str, secret: str) -> str:
    """HMAC-SHA256 of the raw body, lowercase hex: what a sender puts in the header."""
    body = raw_body.encode() if isinstance(raw_body, str) else raw_body
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def validate_signature(
    raw_body: bytes | str, signature: str | None, secrets: str | Sequence[str]
) -> bool:
    """Whether ``signature`` is the HMAC-SHA256 hex of the raw body under any of ``secrets``.

    Constant-time per secret. A ``sha256=`` prefix and upper-case hex are accepted.
    """
    if not signature:
        return False
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    given = signature.strip().lower().removeprefix("sha256=").encode()
    matched = False
    for secret in candidates:
        if secret:
            matched |= hmac.compare_digest(sign_body(raw_body, secret).encode(), given)
    return matched


@dataclass(frozen=True)
class WebhookAck:
    """What to answer Decentro: ``http_status`` and ``body``; ``outcome`` is for logs."""

    http_status: int
    body: Mapping[str, str]
    outcome: str
    dedupe_key: str | None = None

    @classmethod
    def accepted(cls, outcome: str, dedupe_key: str) -> WebhookAck:
        return cls(200, {"response_code": ACK_ACCEPTED}, outcome, dedupe_key)

    @classmethod
    def rejected(cls, error: WebhookError) -> WebhookAck:
        code = ACK_UNAUTHORIZED if error.http_status in (401, 403) else ACK_BAD_REQUEST
        return cls(error.http_status, {"response_code": code}, "rejected:" + error.code)


@dataclass(frozen=True)
class Callback:
    """The fields of a callback that processing needs (no personal data)."""

    dedupe_key: str
    status: str
    reference_id: str | None
    operation_id: str | None
    amount: Decimal | None = None
    """``transactionAmount``, rupees, when the callback names one: a settle must match the record's."""


def _pick(payload: Mapping[str, Any], camel: str, snake: str) -> str | None:
    value = payload.get(camel, payload.get(snake))
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):  # str() of an object is no id
        raise WebhookPayloadError(f"Callback field {camel} is not a string")
    text = str(value)
    if len(text) > MAX_ID_LENGTH or not is_storable(text):
        raise WebhookPayloadError(f"Callback field {camel} is not a storable id")
    return text


def parse_callback(raw_body: bytes) -> Callback:
    """Read the fields processing needs; camelCase or snake_case payloads."""
    try:
        payload = loads_json(raw_body)
    except DuplicateKey:  # two statuses in one body: which one Decentro meant is not ours to pick
        raise WebhookPayloadError("Callback names one key twice", code=DuplicateKey.code) from None
    except (ValueError, RecursionError):  # RecursionError: deeply nested arrays
        raise WebhookPayloadError("Callback body is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookPayloadError("Callback body is not a JSON object")
    raw_status = _pick(payload, "transactionStatus", "transaction_status")
    status = _STATUS_NAMES.get((raw_status or "").strip().upper())
    if status is None:
        raise WebhookPayloadError("Callback has no known transactionStatus")
    reference_id = _pick(payload, "referenceId", "reference_id")
    operation_id = _pick(payload, "decentroTxnId", "decentro_txn_id")
    if reference_id is None and operation_id is None:
        raise WebhookPayloadError("Callback names neither referenceId nor decentroTxnId")
    key = _pick(payload, "originalCallbackTxnId", "original_callback_txn_id") or _pick(
        payload, "callbackTxnId", "callback_txn_id"
    )
    if key is None:
        basis = f"{operation_id or reference_id}|{status}".encode()
        key = "sha256:" + hashlib.sha256(basis).hexdigest()
    return Callback(key, status, reference_id, operation_id, _amount(payload))


def _amount(payload: Mapping[str, Any]) -> Decimal | None:
    """``transactionAmount`` (or ``transaction_amount``) as rupees; a value that is no amount is
    a bad payload, never ignored: the settle compares it with the record's."""
    value = payload.get("transactionAmount", payload.get("transaction_amount"))
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise WebhookPayloadError("Callback field transactionAmount is not an amount")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise WebhookPayloadError("Callback field transactionAmount is not an amount") from None
    if not amount.is_finite() or amount < 0:
        raise WebhookPayloadError("Callback field transactionAmount is not an amount")
    return amount
