"""UPI collections: payment link, collect request, transaction status, reconciliation.

Paths and shapes follow Decentro's collections API reference (docs.decentro.tech) and the
spec of its Java collections SDK (``decentro-in/decentro-in-collections-sdk-java``). Creating
a payment is a write: it is never repeated after Decentro may have accepted it. Status is a
read. VPA validation is in :mod:`decentro_core.operations.vpa`.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from marshmallow import EXCLUDE, Schema, fields, validate

from ..envelope import Outcome, classify, data_of, failure, operation_id_of, provider_code_of, succeeded, to_envelope
from ..errors import AuthenticationFailed, CacheUnavailable, DecentroError, IdempotencyConflict, UnknownReference
from ..errors import UpstreamError, UpstreamProtocolError, ValidationError
from ..ports import SETTLED_STATUSES, UNRESOLVED_STATUS, GatewayResponse, OperationRecord
from ..retry import RetryMode
from ..validation import NAME_RE, PURPOSE_ERROR, PURPOSE_RE, VPA_RE, MobileField, RupeeAmount, StrictSchema, is_storable
from .base import Operation, Request, validated_input

if TYPE_CHECKING:
    from ..runner import OperationRunner

__all__ = [
    "PAYMENT_STATUS",
    "PaymentSchema",
    "ReconcileReport",
    "UPI_COLLECT",
    "UPI_LINK",
    "create_payment",
    "for_payment",
    "payment_status",
    "reconcile_payments",
]

log = logging.getLogger("decentro")

NOT_KNOWN = (None, "", "NA")
PAYMENT_OPERATION = "upi_payment"  # both ways of opening a payment are recorded as one operation
FINAL_TRANSACTION_STATES = frozenset({"SUCCESS", "FAILURE", "FAILED", "EXPIRED"})
CONCLUSIVE_FAILURES = frozenset({"PAYMENT_FAILED", "PAYMENT_EXPIRED"})
PAYMENT_STATUS_NAMES = {"SUCCESS": "SUCCESS", "FAILURE": "FAILURE", "FAILED": "FAILURE", "EXPIRED": "FAILURE",
                        "PENDING": "PENDING", "INITIATED": "PENDING"}


def _rupees(amount: Decimal) -> float:
    # Decentro takes rupees as a JSON number; two decimals are exact in a double's repr.
    return float(amount.quantize(Decimal("0.01")))


# -- opening a payment ------------------------------------------------------------------------------


class CustomerSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(load_default=None, validate=validate.Regexp(NAME_RE, error="Not a valid name."))
    email = fields.Email(load_default=None)
    phone = MobileField(load_default=None)
    upi_id = fields.String(load_default=None, validate=validate.Regexp(VPA_RE, error="Not a valid UPI id."))


class PaymentSchema(StrictSchema):
    amount = RupeeAmount(
        required=True,
        validate=validate.Range(min=Decimal("0.01"), max=Decimal("500000"),
                                error="Amount must be 0.01 to 500000 rupees."),
    )
    currency = fields.String(load_default="INR", validate=validate.Equal("INR", error="Only INR is supported."))
    payment_method = fields.String(load_default="upi", validate=validate.Equal("upi", error="Only upi is supported."))
    customer_details = fields.Nested(CustomerSchema, load_default=dict)
    purpose = fields.String(
        load_default="Payment",
        validate=[validate.Length(min=1, max=50), validate.Regexp(PURPOSE_RE, error=PURPOSE_ERROR)],
    )
    expiry_minutes = fields.Integer(load_default=30, strict=True, validate=validate.Range(min=1, max=45 * 24 * 60))


def link_body(request: Request, reference_id: str) -> dict[str, Any]:
    return {"reference_id": reference_id, "payee_account": request["payee_account"],
            "amount": _rupees(request["amount"]), "purpose_message": request["purpose"], "generate_qr": 1,
            "expiry_time": request["expiry_minutes"], "generate_uri": 1}


def collect_body(request: Request, reference_id: str) -> dict[str, Any]:
    return {"reference_id": reference_id, "payer_upi": request["customer_details"]["upi_id"],
            "payee_account": request["payee_account"], "amount": _rupees(request["amount"]),
            "purpose_message": request["purpose"], "expiry_time": request["expiry_minutes"]}


def parse_payment(response: GatewayResponse, reference_id: str, request: Request) -> Outcome:
    """A created payment, or a transaction's status: the same ``data`` keys. A status field
    Decentro does not know yet reads ``"NA"`` (collections spec): it is left out, like null."""
    early = classify(response, request_id=reference_id)
    if early:
        return early
    body, data = response.body, data_of(response.body)
    txn = operation_id_of(body)
    if not succeeded(body, request_id=reference_id):
        return failure("REJECTED_BY_PROVIDER", operation_id=txn, provider_code=provider_code_of(body))
    if not data.get("transactionStatus") or not (txn or data.get("transactionId")):
        raise UpstreamProtocolError("Decentro's payment answer lacks its transaction status or id",
                                    request_id=reference_id)
    raw_status = str(data["transactionStatus"]).upper()
    found = {"transaction_id": data.get("transactionId"), "transaction_status": raw_status,
             "payment_link": data.get("generatedLink"), "upi_uri": data.get("upiUri"),
             "qr_code": data.get("encodedDynamicQrCode"),
             "bank_reference_number": data.get("bankReferenceNumber"),
             "npci_txn_id": data.get("npciTxnId") or data.get("npciTransactionId")}
    found = {k: v for k, v in found.items() if v not in NOT_KNOWN}
    status = PAYMENT_STATUS_NAMES.get(raw_status, "PENDING")
    if status == "FAILURE":
        code = "PAYMENT_EXPIRED" if raw_status == "EXPIRED" else "PAYMENT_FAILED"
        return failure(code, operation_id=txn, fields=found)
    return Outcome(status, txn, found)  # type: ignore[arg-type]


def amount_fields(request: Request) -> dict[str, Any]:
    return {"amount": f"{request['amount']:.2f}", "currency": "INR"}


UPI_LINK = Operation(
    name=PAYMENT_OPERATION, method="POST", path="/v2/payments/upi/link", module="payments", mode=RetryMode.WRITE,
    schema=PaymentSchema(), body=link_body, parse=parse_payment,
    subject=lambda request: f"UPI link INR {request['amount']}", envelope_fields=amount_fields,
)
UPI_COLLECT = Operation(
    name=PAYMENT_OPERATION, method="POST", path="/v2/payments/collection", module="payments",
    mode=RetryMode.WRITE, schema=PaymentSchema(), body=collect_body, parse=parse_payment,
    subject=lambda request: f"UPI {request['customer_details']['upi_id'].split('@')[-1]} INR {request['amount']}",
    envelope_fields=amount_fields, retry_in_background=True,
)


def for_payment(data: Request) -> Operation:
    """A collect request when the payer's UPI id is known, else a payment link."""
    return UPI_COLLECT if data["customer_details"].get("upi_id") else UPI_LINK


# -- idempotency keys -------------------------------------------------------------------------------

IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}\Z")  # visible ASCII, as Stripe's keys


def create_payment(runner: OperationRunner, request: Request, *, user_id: str | None, actor: str,
                   idempotency_key: str | None = None) -> dict[str, Any]:
    """Open a payment; with ``idempotency_key``, at most once per user and key.

    The key's keyed hash is the payment's reference id, sent to Decentro as ``reference_id``:
    a repeat with the same body answers the first payment's envelope without a new call
    (``data.idempotent_replay``), also after our answer was lost; Decentro would refuse the
    reference id as a duplicate in any case. Concurrent repeats wait on one lock (across
    processes with a shared cache). The same key with another body, or after
    ``DECENTRO_IDEMPOTENCY_WINDOW``, is an :class:`~decentro_core.errors.IdempotencyConflict`.
    """
    operation = for_payment(request)
    if idempotency_key is None:
        return runner.run(operation, request, user_id=user_id, actor=actor)
    if not isinstance(idempotency_key, str) or not IDEMPOTENCY_KEY_RE.fullmatch(idempotency_key):
        raise ValidationError({"idempotency_key": ["Must be 1 to 255 visible ASCII characters."]})
    reference = "idem-" + runner.ports.vault.fingerprint(f"idempotency|{user_id or ''}|{idempotency_key}")[:32]

    def same_payment(first: OperationRecord) -> None:
        if first.created_at < runner.clock() - timedelta(seconds=runner.settings.idempotency_window):
            raise IdempotencyConflict("This idempotency key's window has passed; use a new key",
                                      code="IDEMPOTENCY_KEY_EXPIRED", http_status=422)
        given = json.loads(json.dumps(validated_input(operation, request), sort_keys=True, default=str))
        if first.sealed_request is None or runner.open_json(first.sealed_request) != given:
            raise IdempotencyConflict("This idempotency key was used with a different payment")

    return runner.run_once(operation, request, reference, user_id=user_id, actor=actor, check=same_payment,
                           in_flight=amount_fields(request))


# -- status -----------------------------------------------------------------------------------------


class StatusSchema(Schema):
    reference_id = fields.String(required=True)


def no_body(request: Request, reference_id: str) -> None:
    return None


def parse_status(response: GatewayResponse, reference_id: str, request: Request) -> Outcome:
    """A transaction's status. Decentro answers an unknown transaction with ``E00009`` ("not
    found"; collections spec example), which its docs say means nothing was debited. E00009 is
    also every validation refusal of the collections spec ("Malformed request detected."), and
    "not found" lets reconciliation expire the payment: the message must say so (it is read,
    never copied)."""
    outcome = parse_payment(response, reference_id, request)
    said = str(response.body.get("message") or "").casefold()
    if outcome.error_code == "REJECTED_BY_PROVIDER" and outcome.provider_code == "E00009" and "not found" in said:
        return failure("PAYMENT_NOT_FOUND", operation_id=outcome.operation_id, provider_code="E00009")
    return outcome


PAYMENT_STATUS = Operation(
    name="payment_status", method="GET", path="/v2/payments/transaction/{transaction_id}/status",
    module="payments", mode=RetryMode.READ, schema=StatusSchema(), body=no_body, parse=parse_status,
    subject=lambda request: f"payment {request['reference_id']}", recorded=False,
)


def _settled(record: OperationRecord, found: dict[str, Any], stored: Any) -> Outcome:
    """A payment whose record is settled (a callback may have settled it after the stored answer)."""
    if found.get("transaction_status") not in FINAL_TRANSACTION_STATES:
        found["transaction_status"] = record.status
    if record.status == "SUCCESS":
        return Outcome("SUCCESS", record.operation_id, found)
    error = "PAYMENT_EXPIRED" if record.status == "EXPIRED" else None
    error = error or (stored.get("error", {}).get("code") if stored else None) or "PAYMENT_FAILED"
    return Outcome("FAILURE", record.operation_id, found, error_code=error)


def payment_status(runner: OperationRunner, reference_id: str, *, user_id: str | None,
                   actor: str) -> dict[str, Any]:
    """The payment's status by our reference id: settled states from the record (a callback
    may have set them), otherwise asked of Decentro. With ``user_id``, only the payment that
    user opened is found: anyone else gets the same answer as for an unknown reference."""
    plausible = isinstance(reference_id, str) and 0 < len(reference_id) <= 128 and is_storable(reference_id)
    record = runner.ports.records.get_operation(reference_id) if plausible else None
    if record is None or record.operation != PAYMENT_OPERATION or (user_id is not None and record.user_id != user_id):
        raise UnknownReference("No payment with this reference id")
    return _status(runner, record, actor=actor, stale_on_error=True)[0]


def _status(runner: OperationRunner, record: OperationRecord, *, actor: str,
            stale_on_error: bool = False) -> tuple[dict[str, Any], bool]:
    """The status envelope, and whether Decentro was asked for it. ``stale_on_error``: when the
    look-up itself fails (5xx, timeout, garbled answer), answer the stored PENDING, marked
    ``stale`` with the failure's code: the stored status is the truth when Decentro cannot be
    read (reconciliation instead counts the failure and leaves the payment for its next run)."""
    reference_id = record.reference_id
    stored = runner.open_json(record.sealed_result) if record.sealed_result else None
    found = dict(stored["data"]) if stored else {"operation_id": record.operation_id, "reference_id": reference_id}
    transaction_id = found.get("transaction_id")
    if record.status in SETTLED_STATUSES:
        return to_envelope(_settled(record, found, stored), reference_id=reference_id), False
    if record.status == UNRESOLVED_STATUS:
        found.update(transaction_status=UNRESOLVED_STATUS, reconciliation=UNRESOLVED_STATUS, link_expired=True)
    if not transaction_id or not _due_for_a_check(runner, reference_id):
        # The creation's outcome is unknown (wait for the callback or reconciliation), or
        # Decentro was asked within DECENTRO_STATUS_CHECK_INTERVAL: answer what we know.
        return to_envelope(Outcome("PENDING", record.operation_id, found), reference_id=reference_id), False
    try:
        checked = runner.run(PAYMENT_STATUS, {"reference_id": reference_id, "transaction_id": transaction_id},
                             user_id=None, actor=actor)
    except UpstreamError as exc:
        if not stale_on_error or isinstance(exc, AuthenticationFailed):
            raise
        stale = Outcome("PENDING", record.operation_id, {**found, "stale": True, "status_check_error": exc.code})
        return to_envelope(stale, reference_id=reference_id), True
    error_code = checked.get("error", {}).get("code")
    if checked["status"] == "FAILURE" and error_code not in CONCLUSIVE_FAILURES or checked["status"] == "PENDING" \
            and record.status == UNRESOLVED_STATUS:
        # Decentro could not say (not found yet, refused the look-up, still pending): the payment
        # stays as it is and is asked about again next time; the customer may well have paid.
        pending = Outcome("PENDING", record.operation_id, {**found, "status_check_error": error_code} if error_code
                          else found)
        return to_envelope(pending, reference_id=reference_id), True
    merged = {**found, **{k: v for k, v in checked["data"].items() if k not in ("reference_id", "operation_id")}}
    merged.pop("reconciliation", None)
    merged.pop("link_expired", None)
    outcome = Outcome(checked["status"], record.operation_id, merged, error_code=error_code)
    envelope = to_envelope(outcome, reference_id=reference_id)
    status = "EXPIRED" if error_code == "PAYMENT_EXPIRED" else outcome.status
    if status == record.status:  # a read that changes nothing writes nothing
        return envelope, True
    runner.settle_outcome(record, status, actor=actor, action=PAYMENT_STATUS.name,
                          subject=PAYMENT_STATUS.subject({"reference_id": reference_id}),
                          outcome=outcome.error_code or outcome.status, result=envelope)
    kept = runner.ports.records.get_operation(reference_id)
    if kept is not None and kept.status in SETTLED_STATUSES and kept.status != status:
        # A callback settled the payment while we asked: the store kept its status, and so
        # must the answer (never FAILURE here while the record says SUCCESS).
        kept_result = runner.open_json(kept.sealed_result) if kept.sealed_result else None
        return to_envelope(_settled(kept, found, kept_result), reference_id=reference_id), True
    return envelope, True


# -- reconciliation -----------------------------------------------------------------------------------

RECONCILE_PAGE = 100


@dataclass(frozen=True)
class ReconcileReport:
    """What one reconciliation run did with the PENDING payments it examined."""

    examined: int = 0
    settled: int = 0
    """asked of Decentro, which gave a final status (SUCCESS, FAILURE, EXPIRED)"""
    expired: int = 0
    """past their link's expiry and not found at Decentro, which means nothing was debited"""
    unresolved: int = 0
    """past their link's expiry with no way to know: marked ``OUTCOME_UNKNOWN`` (an event tells the app)"""
    pending: int = 0
    """not final yet and not expired: asked again next run"""
    errors: int = 0
    """Decentro or a store could not be reached for these: left as they were"""

    def summary(self) -> str:
        return (f"examined {self.examined}: {self.settled} settled by Decentro, {self.expired} expired "
                f"(not found), {self.unresolved} outcome unknown, {self.pending} still pending, "
                f"{self.errors} errors")


def reconcile_payments(runner: OperationRunner, *, older_than: timedelta, limit: int = 500,
                       grace: timedelta | None = None) -> ReconcileReport:
    """Settle what can be settled of the PENDING payments created more than ``older_than`` ago.

    Oldest first, at most ``limit`` per run. Each is asked of Decentro by its transaction id
    (at most once per ``DECENTRO_STATUS_CHECK_INTERVAL``, across processes), and a final answer
    settles it with its event. Decentro publishes no look-up by our reference id, so a payment
    whose creation never returned a transaction id cannot be asked about: once its link has
    expired (its ``expiry_minutes`` plus ``grace``, ``DECENTRO_RECONCILE_GRACE``) it is marked
    ``OUTCOME_UNKNOWN`` and ``payment.outcome_unknown`` is emitted; a later callback still
    settles it. So is a payment Decentro still calls PENDING after that time; one Decentro no
    longer finds is ``EXPIRED`` (its docs: not found means no debit).

    Idempotent and safe in several processes at once: every write goes through the record
    store's rules (a settled status is final, one event per transition).
    """
    grace = timedelta(seconds=runner.settings.reconcile_grace) if grace is None else grace
    counts = {"settled": 0, "expired": 0, "unresolved": 0, "pending": 0, "errors": 0}
    examined, after = 0, None
    now = runner.clock()
    while examined < limit:
        page = runner.ports.records.unsettled(PAYMENT_OPERATION, created_before=now - older_than,
                                              limit=min(RECONCILE_PAGE, limit - examined), after=after)
        if not page:
            break
        for record in page:
            after, examined = record, examined + 1
            try:
                counts[_reconcile_one(runner, record, now=now, grace=grace)] += 1
            except DecentroError as exc:
                log.warning("decentro reconcile: payment %s left as it is (%s)", record.reference_id, exc.code)
                counts["errors"] += 1
    report = ReconcileReport(examined=examined, **counts)
    log.info("decentro reconcile: %s", report.summary())
    return report


def _reconcile_one(runner: OperationRunner, record: OperationRecord, *, now: datetime, grace: timedelta) -> str:
    envelope, asked = _status(runner, record, actor="reconciler")
    if envelope["status"] != "PENDING":
        return "settled"
    request = runner.open_json(record.sealed_request) if record.sealed_request else {}
    expires = record.created_at + timedelta(minutes=int(request.get("expiry_minutes") or 30)) + grace
    if now < expires:
        return "pending"
    data = envelope["data"]
    if data.get("transaction_id") and not asked:
        return "pending"  # asked moments ago by someone else: the next run decides
    latest = runner.ports.records.get_operation(record.reference_id) or record
    if latest.status != "PENDING":
        return "settled"
    not_found = data.get("status_check_error") == "PAYMENT_NOT_FOUND"
    status, kind = ("EXPIRED", "expired") if not_found else (UNRESOLVED_STATUS, "unresolved")
    reason = "NOT_FOUND_AFTER_EXPIRY" if not_found else UNRESOLVED_STATUS
    result = to_envelope(Outcome("PENDING" if status == UNRESOLVED_STATUS else "FAILURE", latest.operation_id,
                                 {**data, "reconciliation": reason},
                                 error_code=None if status == UNRESOLVED_STATUS else "PAYMENT_EXPIRED"),
                         reference_id=record.reference_id)
    runner.settle_outcome(latest, status, actor="reconciler", action="payment_reconcile",
                          subject=f"payment {record.reference_id}", outcome=reason, result=result)
    return kind


def _due_for_a_check(runner: OperationRunner, reference_id: str) -> bool:
    """At most one status look-up per payment per interval (across processes with a shared
    cache); a cache that fails lets the look-up through."""
    interval = runner.settings.status_check_interval
    if interval <= 0:
        return True
    key = "payment-status-checked:" + runner.ports.vault.fingerprint(reference_id)
    try:
        if runner.ports.cache.get(key) is not None:
            return False
        runner.ports.cache.set(key, b"1", ttl=interval)
    except CacheUnavailable:
        pass
    return True
