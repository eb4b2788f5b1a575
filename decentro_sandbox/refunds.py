"""Emulated UPI refunds: ``POST /v2/payments/upi/refund``.

Shapes and messages are the examples of Decentro's collections spec
(``decentro-in/decentro-in-collections-sdk-java`` ``api/openapi.yaml``, ``Collections_issueUpiRefund``):
a refund names the payment by ``transaction_id`` (the creation's ``decentroTxnId``) or by its
``bank_reference_number``; only a SUCCESS payment can be refunded, once. The refund answers
``transactionStatus PENDING`` and, in the sandbox, stays so: refunds are not tracked further
(their id is not known to the status path) and send no callback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .payments import Payment
from .wire import Refused, Reply, Runtime, require_reference, require_sanitized, success

__all__ = ["upi_refund"]

NOT_FOUND = "No such transaction found at our end. Please check the values and retry"
ALREADY = ("Refund has already been initiated for the given transaction. Kindly use the status inquiry API "
           "to get the latest status.")
PENDING = ("Given transaction is found in PENDING state. Please initiate transaction status API to check the "
           "current status.")
NOT_SUCCESS = "Given transaction is not in SUCCESS state. So, refund cannot be initiated."


def upi_refund(rt: Runtime, body: Mapping[str, Any]) -> Reply:
    require_reference(body)
    purpose = body.get("purpose_message")
    if purpose is not None:
        if not isinstance(purpose, str) or len(purpose) > 50:
            raise Refused("Purpose Message cannot exceed 50 characters.", key="error_invalid_purpose_message_length")
        require_sanitized(purpose, "purpose_message")
    payment = _find(rt, body)
    if payment is None:
        raise Refused(NOT_FOUND, key="error_transaction_not_found")
    if payment.refunded:
        raise Refused(ALREADY, key="error_refund_already_initiated")
    if payment.status == "PENDING":
        raise Refused(PENDING, key="error_transaction_pending")
    if payment.status != "SUCCESS":
        raise Refused(NOT_SUCCESS, key="error_transaction_not_success")
    payment.refunded = True
    txn = rt.new_id()
    data = {"transactionId": txn, "transactionStatus": "PENDING", "transactionStatusDescription": "Success"}
    return 200, success(txn, "Transaction refund request processed successfully", key=None, data=data)


def _find(rt: Runtime, body: Mapping[str, Any]) -> Payment | None:
    transaction_id, bank_reference = body.get("transaction_id"), body.get("bank_reference_number")
    if not transaction_id and not bank_reference:
        raise Refused("Either transaction_id or bank_reference_number is required.")
    if transaction_id:
        found = rt.payments.get(str(transaction_id))
        return found if isinstance(found, Payment) else None
    return next((p for p in rt.payments.values() if isinstance(p, Payment) and p.bank_reference == bank_reference
                 and p.bank_reference != "NA"), None)
