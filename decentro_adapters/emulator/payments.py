"""Emulated UPI collections: payment link, collect request, status, VPA validation.

When a payment becomes terminal: a new link or collect request answers ``PENDING`` and then
settles at once (before the creating call returns) to the status its amount selects —
10 and any non-magic amount SUCCESS, 20 FAILURE. Amount 30 stays PENDING until its
``expiry_time`` passes (it is then EXPIRED on the next status query) or a test calls
:meth:`DecentroEmulator.settle_payment`. Each terminal step queues one callback payload in
Decentro's shape for the ``on_terminal`` hook. ``transactionId`` in the creation answer is
the creating call's ``decentroTxnId``, and is what the status path takes.
"""

from __future__ import annotations

import base64
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
    Reply,
    Runtime,
    amount,
    failure,
    fault_reply,
    optional_int,
    require_str,
    success,
)

__all__ = ["Payment", "collection", "settle", "transaction_status", "upi_link", "vpa_validate"]

VPA_PATTERN = r"[A-Za-z0-9.\-_]{2,256}@[A-Za-z]{2,64}"
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
    bank_reference: str | None = None
    npci_txn_id: str | None = None


def upi_link(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    payment = _new_payment(rt, body)
    if not isinstance(payment, Payment):
        return payment
    uri = f"upi://pay?pa={body['payee_account']}@emulator&am={payment.amount}&tr={payment.transaction_id}"
    data: dict[str, Any] = {
        "generatedLink": f"https://upi.emulator.invalid/pay/{payment.transaction_id}",
        "transactionId": payment.transaction_id,
        "transactionStatus": "PENDING",
        "upiUri": uri,
        "pspUri": {"gpayUri": "tez" + uri[3:], "phonepeUri": "phonepe" + uri[3:], "paytmUri": "paytmmp" + uri[3:]},
    }
    if body.get("generate_qr") == 1:
        data["encodedDynamicQrCode"] = base64.b64encode(uri.encode()).decode()
    return _created(rt, payment, "Payment link created.", "success_payment_link_created", data)


def collection(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    require_str(body, "payer_upi", pattern=VPA_PATTERN, max_len=320)
    payment = _new_payment(rt, body)
    if not isinstance(payment, Payment):
        return payment
    data = {"transactionId": payment.transaction_id, "transactionStatus": "PENDING"}
    return _created(rt, payment, "Collection request sent.", "success_collection_request_created", data)


def _new_payment(rt: Runtime, body: Mapping[str, Any]) -> Payment | Reply | Fault:
    reference_id = require_str(body, "reference_id", max_len=100)
    require_str(body, "payee_account", pattern=r"[A-Za-z0-9]{4,40}", max_len=40)
    rupees = amount(body)
    require_str(body, "purpose_message", pattern=r"[A-Za-z0-9 ]+", max_len=50)
    for flag in ("generate_qr", "generate_uri"):
        optional_int(body, flag, low=0, high=1)
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
    txn = rt.new_id()
    payment = rt.payments.get(transaction_id)
    if payment is None:
        return 404, failure(txn, "No transaction found for the given ID.", code="E00026",
                            key="error_transaction_not_found")
    if payment.status == "PENDING" and payment.expires_at and rt.now() > payment.expires_at:
        settle(rt, payment, "EXPIRED")
    return 200, success(txn, "Transaction status fetched.", key="success_transaction_status", data={
        "transactionStatus": payment.status,
        "bankReferenceNumber": payment.bank_reference,
        "npciTxnId": payment.npci_txn_id,
    })


def vpa_validate(rt: Runtime, body: Mapping[str, Any]) -> Reply:
    require_str(body, "reference_id", max_len=100)
    vpa = require_str(body, "upi_id", pattern=VPA_PATTERN, max_len=320)
    valid_names: Mapping[str, str] = DECENTRO_SANDBOX["vpa_valid"]  # type: ignore[assignment]
    invalid = vpa.lower() in DECENTRO_SANDBOX["vpa_invalid"]  # type: ignore[operator]
    data = {
        "upiId": vpa,
        "name": "" if invalid else valid_names.get(vpa.lower(), synthetic_name(vpa.lower())),
        "status": "INVALID" if invalid else "VALID",
        "statusDescription": "VPA does not exist." if invalid else "VPA is valid.",
    }
    return 200, success(rt.new_id(), "VPA validated.", key="success_vpa_validated", data=data)
