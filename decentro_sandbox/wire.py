"""Decentro's wire shapes for the emulator: envelopes, field checks and the fault marker.

Handlers raise :class:`Refused` for a bad request; the emulator turns it into Decentro's
HTTP 400 answer. Shapes follow Decentro's public docs (docs.decentro.tech) and the OpenAPI specs
behind its SDKs (``decentro-in/decentro-in-kyc-sdk-go``, ``decentro-in/decentro-in-collections-sdk-java``):
the raw wire format, not our envelope. ``docs/sandbox.md`` lists each rule with its source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from .scenarios import FAULT_DIGITS
from .uidai import SandboxUidaiSigner

__all__ = [
    "TIMEOUT",
    "Fault",
    "Refused",
    "Reply",
    "Runtime",
    "amount",
    "digits_fault",
    "failure",
    "fault_reply",
    "ist_timestamp",
    "optional_int",
    "require_consent_true",
    "require_reference",
    "require_sanitized",
    "require_str",
    "success",
]

Reply = tuple[int, dict[str, Any]]

IST = timezone(timedelta(hours=5, minutes=30))
# Decentro's sanitiser: the characters it names in error_unsanitized_values (a hyphen is fine).
UNSANITIZED_CHARACTERS: Final = frozenset(".@#$%^&*!;:'\"~`?=+)(")
_UNSANITIZED_MESSAGE = (
    "Unsanitized values detected for key(s): {name}. Kindly sanitize the corresponding values by "
    "removing special characters such as . @ # $ % ^ & * ! ; : ' \" ~ ` ? = + ) ( and retry."
)


@dataclass(frozen=True)
class Fault:
    """A fault that is not an HTTP answer; ``kind`` is ``"timeout"`` (no answer at all)."""

    kind: str


TIMEOUT: Final = Fault("timeout")

_FAULT_BODIES: Final[dict[int, tuple[str, str]]] = {
    429: ("API rate limit exceeded", "error_rate_limited"),
    500: ("Internal server error", "error_internal_server"),
    502: ("Bad gateway", "error_bad_gateway"),
    503: ("Service temporarily unavailable", "error_service_unavailable"),
}


class Refused(Exception):
    """A request Decentro refuses (HTTP 400 by default) with its code and key."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        code: str = "E00009",
        key: str = "error_malformed_request",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.key = key


@dataclass
class Runtime:
    """What handlers may touch: ids, the clock, state, and terminal payments to report."""

    new_id: Callable[[], str]
    now: Callable[[], datetime]
    payments: dict[str, Any] = field(default_factory=dict)
    sessions: dict[str, Any] = field(default_factory=dict)
    terminal: list[dict[str, Any]] = field(default_factory=list)
    uidai: SandboxUidaiSigner = field(default_factory=SandboxUidaiSigner)


def success(txn: str, message: str, *, key: str | None, data: Any = None, **extra: Any) -> dict[str, Any]:
    """Decentro's success envelope; ``key=None`` where Decentro's example shows no responseKey."""
    body: dict[str, Any] = {
        "decentroTxnId": txn,
        "status": "SUCCESS",
        "responseCode": "S00000",
        "message": message,
    }
    if data is not None:
        body["data"] = data
    if key is not None:
        body["responseKey"] = key
    body.update(extra)
    return body


def ist_timestamp(moment: datetime) -> str:
    """Decentro's KYC timestamp text, e.g. ``2023-01-19 17:55:01.270716 IST (GMT +0530)``."""
    return moment.astimezone(IST).strftime("%Y-%m-%d %H:%M:%S.%f") + " IST (GMT +0530)"


def failure(txn: str, message: str, *, code: str, key: str) -> dict[str, Any]:
    """Decentro's failure envelope, with PAN's nested ``error`` member as well."""
    return {
        "decentroTxnId": txn,
        "status": "FAILURE",
        "responseCode": code,
        "message": message,
        "responseKey": key,
        "error": {"message": message, "responseCode": code},
    }


def fault_reply(fault: int | str, txn: str) -> Reply | Fault:
    """The answer for a magic fault: an HTTP status, or the timeout marker."""
    if fault == "timeout":
        return TIMEOUT
    status = int(fault)
    if status == 429:  # Decentro's gateway (Kong) answers a bare message
        return 429, {"message": _FAULT_BODIES[429][0]}
    message, key = _FAULT_BODIES.get(status, ("Upstream error", "error_internal_server"))
    return status, failure(txn, message, code="E00000", key=key)


def digits_fault(digits: str, txn: str) -> Reply | Fault | None:
    fault = FAULT_DIGITS.get(digits)
    return None if fault is None else fault_reply(fault, txn)


def require_str(
    body: Mapping[str, Any],
    name: str,
    *,
    pattern: str | None = None,
    min_len: int = 1,
    max_len: int = 1000,
) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Refused(f"{name} is required.")
    if not min_len <= len(value) <= max_len:
        raise Refused(f"{name} must be {min_len} to {max_len} characters long.")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise Refused(f"{name} is not valid.")
    return value


def require_reference(body: Mapping[str, Any]) -> str:
    """``reference_id``: Decentro's ``error_missing_reference_id`` when absent or empty."""
    value = body.get("reference_id")
    if value is None or value == "":
        raise Refused("Request reference id cannot be null or empty. Hint: reference_id (string).",
                      key="error_missing_reference_id")
    if not isinstance(value, str) or not value.strip():
        raise Refused("Request reference id is not of type string.", key="error_invalid_reference_id")
    if len(value) > 100:
        raise Refused("reference_id must be 1 to 100 characters long.", key="error_invalid_reference_id")
    return value


def require_sanitized(value: str, name: str) -> str:
    """Refuse ``value`` if it holds a character Decentro's sanitiser rejects."""
    if UNSANITIZED_CHARACTERS.intersection(value):
        raise Refused(_UNSANITIZED_MESSAGE.format(name=name), key="error_unsanitized_values")
    return value


def require_consent_true(body: Mapping[str, Any]) -> None:
    if body.get("consent") is not True:
        raise Refused("Consent is required.", code="E00016", key="error_invalid_consent")


def optional_int(body: Mapping[str, Any], name: str, *, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Refused(f"{name} must be a whole number from {low} to {high}.")
    return value


def amount(body: Mapping[str, Any], name: str = "amount") -> Decimal:
    """A positive rupee amount (a number or a decimal string), to the paisa."""
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise Refused(f"{name} is required.")
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise Refused(f"{name} is not a number.") from None
    if not parsed.is_finite() or parsed <= 0 or parsed != parsed.quantize(Decimal("0.01")):
        raise Refused(f"{name} must be a positive amount in rupees with at most two decimals.")
    return parsed.quantize(Decimal("0.01"))
