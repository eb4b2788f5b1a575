"""Emulated UPI collections: payment link, collect request, status, VPA validation.

When a payment becomes terminal: a new link or collect request answers ``PENDING`` and then
settles at once (before the creating call returns) to the status its amount selects —
10 and any non-magic amount SUCCESS, 20 FAILURE. Amount 30 stays PENDING until its
``expiry_time`` passes (it is then EXPIRED on the next status query) or a test calls
:meth:`DecentroEmulator.settle_payment`. Each terminal step queues one callback payload in
Decentro's shape for the ``on_terminal`` hook. ``transactionId`` in the creation answer is
the creating call's ``decentroTxnId``, and is what the status path takes.

Shapes and messages follow Decentro's collections spec (``decentro-in/decentro-in-collections-sdk-java``
``api/openapi.yaml``) and docs.decentro.tech ("Collections Response keys", "Response Keys - User
Verification"): a PENDING status answers ``"NA"`` for the bank reference and NPCI id, an unknown
transaction ``E00009`` "not found", a ``purpose_message`` with ``. @ # $ % ^ & * ! ; : ' " ~ ` ? = + ) (``
``error_unsanitized_values``, VPA validation ``success_UPI_id_valid`` / ``success_UPI_id_invalid``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .scenarios import (
    DECENTRO_SANDBOX,
    MAGIC_AMOUNTS,
    UPI_AMOUNT_STATUS,
    synthetic_digits,
    synthetic_name,
)
from .wire import (
    Fault,
    Refused,
    Reply,
    Runtime,
    amount,
    fault_reply,
    optional_int,
    require_reference,
    require_sanitized,
    require_str,
    success,
)

__all__ = ["NOT_FOUND", "Payment", "collection", "settle", "transaction_status", "upi_link", "vpa_validate"]

VPA_PATTERN = r"[A-Za-z0-9.\-_]{2,256}@[A-Za-z]{2,64}"
NOT_AVAILABLE = "NA"  # Decentro's value for a bank reference / NPCI id not known yet
NOT_FOUND = (  # the spec's example, word for word
    "This transaction was not found in our system. If there was any debit, it would have already been "
    "reversed. Please retry the corresponding initiate payment transaction."
)
MAX_PURPOSE = 50
VPA_TYPES = frozenset({"BASIC", "ADVANCE"})
MAX_EXPIRY_MINUTES = 45 * 24 * 60
TERMINAL = frozenset({"SUCCESS", "FAILURE", "EXPIRED"})
_MESSAGES = {
    "SUCCESS": "Transaction successful",
    "FAILURE": "Transaction failed",
    "EXPIRED": "Transaction expired",
}


@dataclass
class Payment:
    transaction_id: str
    reference_id: str
    amount: Decimal
    created_at: datetime
    expires_at: datetime | None
    status: str = "PENDING"
    bank_reference: str = NOT_AVAILABLE
    npci_txn_id: str = NOT_AVAILABLE
    refunded: bool = False


def upi_link(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    payment = _new_payment(rt, body)
    if not isinstance(payment, Payment):
        return payment
    query = f"pay?pa={body['payee_account']}@emulator&am={payment.amount}&cu=INR&tr={payment.transaction_id}"
    uri = "upi://" + query
    data: dict[str, Any] = {
        "generatedLink": f"https://upi.emulator.invalid/pay/{payment.transaction_id}",
        "transactionId": payment.transaction_id,
        "transactionStatus": "PENDING",
        "upiUri": uri,
        "pspUri": {"commonUri": uri, "gpayUri": "gpay://upi/" + query, "phonepeUri": "phonepe://" + query,
                   "paytmUri": "paytmmp://" + query},
    }
    if body.get("generate_qr") == 1:
        data["encodedDynamicQrCode"] = base64.b64encode(uri.encode()).decode()
    return _created(rt, payment, "Payment Link created Successfully", "success_payment_link_created", data)


def collection(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    if not body.get("payer_upi"):
        raise Refused("UPI-ID (Virtual Payment Address) cannot be null or empty. Hint : payer_upi (string).",
                      key="error_missing_UPI_id")
    require_str(body, "payer_upi", pattern=VPA_PATTERN, max_len=320)
    payment = _new_payment(rt, body)
    if not isinstance(payment, Payment):
        return payment
    data = {"transactionId": payment.transaction_id, "transactionStatus": "PENDING",
            "transactionStatusDescription": "Successfully initiated the collection request.",
            "bankReferenceNumber": NOT_AVAILABLE, "npciTransactionId": NOT_AVAILABLE}
    return _created(rt, payment, "Transaction Collection request processed successfully",
                    "success_collection_request_created", data)


def purpose_message(body: Mapping[str, Any]) -> str:
    """Decentro's rule: a string of 1-50 characters without the sanitiser's characters."""
    value = body.get("purpose_message")
    if not isinstance(value, str) or not value.strip():
        raise Refused("Purpose message cannot be null or empty. Hint: purpose_message (string).",
                      key="error_invalid_purpose_message")
    if len(value) > MAX_PURPOSE:
        raise Refused("Purpose Message cannot exceed 50 characters.", key="error_invalid_purpose_message_length")
    return require_sanitized(value, "purpose_message")


def _new_payment(rt: Runtime, body: Mapping[str, Any]) -> Payment | Reply | Fault:
    reference_id = require_reference(body)
    require_str(body, "payee_account", pattern=r"[A-Za-z0-9]{4,40}", max_len=40)
    rupees = amount(body)
    purpose_message(body)
    for flag, label, key in (("generate_qr", "Generate QR", "error_invalid_generate_QR_value"),
                             ("generate_uri", "Generate URI", "error_invalid_generate_uri_value")):
        if body.get(flag) not in (None, 0, 1) or isinstance(body.get(flag), bool):
            raise Refused(f"Invalid value entered for {label}. {label} can be either 0 or 1. Hint : {flag} (int)",
                          key=key)
    expiry = optional_int(body, "expiry_time", low=1, high=MAX_EXPIRY_MINUTES)
    txn = rt.new_id()
    if rupees in MAGIC_AMOUNTS:
        return fault_reply(MAGIC_AMOUNTS[rupees], txn)
    now = rt.now()
    expires_at = now + timedelta(minutes=expiry) if expiry else None
    return Payment(txn, reference_id, rupees, now, expires_at)


def _created(rt: Runtime, payment: Payment, message: str, key: str, data: dict[str, Any]) -> Reply:
    rt.payments[payment.transaction_id] = payment
    final = UPI_AMOUNT_STATUS.get(payment.amount.normalize(), "SUCCESS")
    answer = success(payment.transaction_id, message, key=key, data=data)
    if final != "PENDING":
        settle(rt, payment, final)
    return 200, answer


def settle(rt: Runtime, payment: Payment, status: str) -> None:
    """Move a PENDING payment to a terminal ``status`` and queue its callback."""
    if payment.status != "PENDING" or status not in TERMINAL:
        raise ValueError("only a PENDING payment can settle, to SUCCESS, FAILURE or EXPIRED")
    payment.status = status
    payment.bank_reference = synthetic_digits("rrn" + payment.transaction_id, 12)
    payment.npci_txn_id = "NPCI" + synthetic_digits("npci" + payment.transaction_id, 16)
    rt.terminal.append(_callback_payload(rt, payment))


def _callback_payload(rt: Runtime, payment: Payment) -> dict[str, Any]:
    callback_id = rt.new_id()
    return {
        "attempt": 1,
        "timestamp": rt.now().isoformat(),
        "callbackTxnId": callback_id,
        "originalCallbackTxnId": callback_id,
        "transactionStatus": payment.status,
        "referenceId": payment.reference_id,
        "decentroTxnId": payment.transaction_id,
        "transactionMessage": _MESSAGES[payment.status],
        "transferType": "UPI",
        "bankReferenceNumber": payment.bank_reference,
        "beneficiaryName": synthetic_name(payment.transaction_id),
        "transactionAmount": float(payment.amount),
        "providerMessage": _MESSAGES[payment.status],
    }


def transaction_status(rt: Runtime, transaction_id: str) -> Reply:
    """Decentro's status answer; an unknown id is the spec's E00009 example (HTTP 400: our guess)."""
    txn = rt.new_id()
    payment = rt.payments.get(transaction_id)
    if payment is None:
        return 400, {"decentroTxnId": txn, "status": "FAILURE", "responseCode": "E00009", "message": NOT_FOUND}
    if payment.status == "PENDING" and payment.expires_at and rt.now() > payment.expires_at:
        settle(rt, payment, "EXPIRED")
    return 200, success(txn, "UPI Transaction Status processed successfully", key="success_transaction_status", data={
        "transactionStatus": payment.status,
        "bankReferenceNumber": payment.bank_reference,
        "npciTxnId": payment.npci_txn_id,
    })


def vpa_validate(rt: Runtime, body: Mapping[str, Any]) -> Reply:
    """``/v2/payments/vpa/validate``: Decentro's sandbox handles, its response keys and refusals."""
    require_reference(body)
    vpa = body.get("upi_id")
    if vpa is None or vpa == "":
        raise Refused("UPI-ID (Virtual Payment Address) cannot be null or empty. Hint : upi_id (string)",
                      key="error_missing_UPI_id")
    if not isinstance(vpa, str) or re.fullmatch(VPA_PATTERN, vpa) is None or len(vpa) > 320:
        raise Refused("UPI-ID (Virtual Payment Address) is not in valid format. Please try again with valid UPI-ID.",
                      key="error_invalid_UPI_id_format")
    kind = body.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.upper() not in VPA_TYPES):
        raise Refused("Invalid value entered for type. Type can be either 'basic' or 'advance'.",
                      key="error_invalid_type")
    valid_names: Mapping[str, str] = DECENTRO_SANDBOX["vpa_valid"]  # type: ignore[assignment]
    invalid = vpa.lower() in DECENTRO_SANDBOX["vpa_invalid"]  # type: ignore[operator]
    data = {
        "upiId": vpa,
        "name": "" if invalid else valid_names.get(vpa.lower(), synthetic_name(vpa.lower())),
        "status": "INVALID" if invalid else "VALID",
        "statusDescription": "Failure" if invalid else "Success",
    }
    key = "success_UPI_id_invalid" if invalid else "success_UPI_id_valid"
    return 200, success(rt.new_id(), "UPI-ID (Virtual Payment Address) validation processed successfully",
                        key=key, data=data)
