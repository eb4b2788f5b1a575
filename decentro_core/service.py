"""The integration guide's operations, in two faces over one implementation.

:class:`BlockingDecentroService` does the work (for WSGI apps, scripts and workers);
:class:`DecentroService` is the guide's awaitable face, running each blocking call in a worker
thread so an asyncio event loop is never blocked::

    decentro = DecentroService()                  # reads the environment
    result = await decentro.verify_pan("ABCDE1234F", "Asha Verma")
    result["status"], result["data"]["reference_id"]

Ports left ``None`` are built from settings by ``decentro_adapters.bootstrap`` (the
composition root), imported only when needed so the core stays framework-free.
"""

from __future__ import annotations

import importlib
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from .context import CallContext, Consent
from .engine import Call, Engine
from .envelope import Outcome, to_envelope
from .errors import ConfigurationError, UnknownReference
from .masking import mask_account, mask_aadhaar, mask_email, mask_pan, mask_phone
from .operations import ENDPOINTS, bodies, parsers
from .ports import AadhaarVerifier, AuditSink, Cache, Clock, ConsentRecord, ConsentStore, HttpGateway
from .ports import SETTLED_STATUSES, IdFactory, OperationRecord, RecordStore, Vault
from .settings import Settings
from .validation import (
    AadhaarNumberSchema,
    AadhaarOtpVerifySchema,
    AadhaarXmlSchema,
    BankSchema,
    CkycSchema,
    EmailSchema,
    PanSchema,
    PaymentSchema,
    SmsSchema,
    load,
)
from .webhooks import validate_signature

__all__ = ["BlockingDecentroService", "DEFAULT_PURPOSE"]

DEFAULT_PURPOSE = "Customer identity verification for onboarding (KYC)"
PORTS = ("gateway", "cache", "vault", "audit", "consents", "records", "aadhaar_verifier")
FINAL_TRANSACTION_STATES = frozenset({"SUCCESS", "FAILURE", "FAILED", "EXPIRED"})
CONCLUSIVE_FAILURES = frozenset({"PAYMENT_FAILED", "PAYMENT_EXPIRED"})


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _new_reference_id() -> str:
    return str(uuid.uuid4())


def _settled_payment(record: OperationRecord, fields: dict[str, Any], stored: Any) -> Outcome:
    """A payment whose record is settled (a callback may have settled it after the stored answer)."""
    if fields.get("transaction_status") not in FINAL_TRANSACTION_STATES:
        fields["transaction_status"] = record.status
    if record.status == "SUCCESS":
        return Outcome("SUCCESS", record.operation_id, fields)
    error = "PAYMENT_EXPIRED" if record.status == "EXPIRED" else None
    error = error or (stored.get("error", {}).get("code") if stored else None) or "PAYMENT_FAILED"
    return Outcome("FAILURE", record.operation_id, fields, error_code=error)


class BlockingDecentroService:
    """Every operation of the guide, blocking. See the module docstring for the async face."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        gateway: HttpGateway | None = None,
        cache: Cache | None = None,
        vault: Vault | None = None,
        audit: AuditSink | None = None,
        consents: ConsentStore | None = None,
        records: RecordStore | None = None,
        aadhaar_verifier: AadhaarVerifier | None = None,
        clock: Clock | None = None,
        new_reference_id: IdFactory | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = (settings or Settings.from_env()).check()
        given = {"gateway": gateway, "cache": cache, "vault": vault, "audit": audit, "consents": consents,
                 "records": records, "aadhaar_verifier": aadhaar_verifier}
        self._closers: list[Callable[[], None]] = []
        if any(port is None for port in given.values()):
            bootstrap = importlib.import_module("decentro_adapters.bootstrap")
            given, self._closers = bootstrap.build_ports(self.settings, **given)
        self._engine = Engine(
            settings=self.settings, clock=clock or _utcnow, new_reference_id=new_reference_id or _new_reference_id,
            sleep=sleep or time.sleep, rng=rng or random.Random(), **given,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        """Close what this service opened itself (HTTP pool, database connections)."""
        for close in reversed(self._closers):
            close()
        self._closers = []

    def __enter__(self) -> BlockingDecentroService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        # The ports are public: service.gateway, service.records, ... (held by the engine).
        if name in PORTS or name == "clock":
            return getattr(self.__dict__["_engine"], name)
        raise AttributeError(name)

    # -- KYC -------------------------------------------------------------------------------

    def verify_pan(self, pan: str, name: str | None = None, *, user_id: str | None = None,
                   consent: Consent | Mapping[str, Any] | None = None,
                   context: CallContext | None = None) -> dict[str, Any]:
        """Check a PAN with the Income Tax registry; ``name`` is compared when given."""
        data = load(PanSchema(), {"pan": pan, "name": name})
        purpose = self._consent("pan", user_id, consent, context)
        call = self._call("pan", subject=mask_pan(data["pan"]), sealed_input=data, user_id=user_id,
                          context=context, body=lambda ref: bodies.pan(ref, pan=data["pan"], purpose=purpose),
                          parse=lambda resp, ref: parsers.pan(resp, request_id=ref, name=data["name"]))
        return self._engine.cached_or_run(call, document=data["pan"] + "|" + (data["name"] or ""))

    def verify_bank(self, account_number: str, ifsc: str, name: str | None = None, *,
                    validation_type: str = "penniless", user_id: str | None = None,
                    consent: Consent | Mapping[str, Any] | None = None,
                    context: CallContext | None = None) -> dict[str, Any]:
        """Check that a bank account exists (penniless by default) and whose it is."""
        data = load(BankSchema(), {"account_number": account_number, "ifsc": ifsc, "name": name,
                                   "validation_type": validation_type})
        self._consent("bank_account", user_id, consent, context)
        call = self._call(
            "bank_account", subject=mask_account(data["account_number"]), sealed_input=data, user_id=user_id,
            context=context,
            body=lambda ref: bodies.bank_account(ref, account_number=data["account_number"], ifsc=data["ifsc"],
                                                 name=data["name"], validation_type=data["validation_type"]),
            parse=lambda resp, ref: parsers.bank_account(resp, request_id=ref, name=data["name"]))
        document = "|".join((data["account_number"], data["ifsc"], data["name"] or "", data["validation_type"]))
        return self._engine.cached_or_run(call, document=document)

    def fetch_ckyc(self, pan: str, *, user_id: str | None = None,
                   consent: Consent | Mapping[str, Any] | None = None,
                   context: CallContext | None = None) -> dict[str, Any]:
        """Search the Central KYC registry by PAN."""
        data = load(CkycSchema(), {"pan": pan})
        purpose = self._consent("ckyc", user_id, consent, context)
        call = self._call("ckyc", subject=mask_pan(data["pan"]), sealed_input=data, user_id=user_id, context=context,
                          body=lambda ref: bodies.ckyc(ref, pan=data["pan"], purpose=purpose),
                          parse=lambda resp, ref: parsers.ckyc(resp, request_id=ref))
        return self._engine.cached_or_run(call, document=data["pan"])

    def verify_aadhaar_xml(self, xml_content: str | bytes, share_code: str, *, mobile: str | None = None,
                           email: str | None = None, user_id: str | None = None,
                           consent: Consent | Mapping[str, Any] | None = None,
                           context: CallContext | None = None) -> dict[str, Any]:
        """Verify UIDAI's offline e-KYC XML (or its share-code ZIP) locally, signature first.

        Decentro has no endpoint for uploaded files; the check runs here against UIDAI's pinned
        keys. The file is sealed before storage; the share code is never stored.
        """
        data = load(AadhaarXmlSchema(), {"content": xml_content, "share_code": share_code, "mobile": mobile,
                                         "email": email, "max_bytes": self.settings.aadhaar_max_bytes})
        self._consent("aadhaar_xml", user_id, consent, context)
        return self._engine.verify_aadhaar_file(
            data["content"], data["share_code"], mobile=data["mobile"], email=data["email"],
            user_id=user_id, actor=self._actor(user_id, context))

    def start_aadhaar_otp(self, aadhaar_number: str, *, user_id: str | None = None,
                          consent: Consent | Mapping[str, Any] | None = None,
                          context: CallContext | None = None) -> dict[str, Any]:
        """Ask UIDAI (through Decentro) to send an OTP; ``data.initiation_id`` continues the flow."""
        data = load(AadhaarNumberSchema(), {"aadhaar_number": aadhaar_number})
        purpose = self._consent("aadhaar_otp_start", user_id, consent, context)
        number = data["aadhaar_number"]
        call = self._call("aadhaar_otp_start", subject=mask_aadhaar(number), sealed_input={"last4": number[-4:]},
                          user_id=user_id, context=context,
                          body=lambda ref: bodies.aadhaar_otp_start(ref, aadhaar_number=number, purpose=purpose),
                          parse=lambda resp, ref: parsers.aadhaar_otp(resp, request_id=ref))
        return self._engine.run(call)

    def verify_aadhaar_otp(self, initiation_id: str, otp: str, *, share_code: str | None = None,
                           user_id: str | None = None, consent: Consent | Mapping[str, Any] | None = None,
                           context: CallContext | None = None) -> dict[str, Any]:
        """Submit the OTP within 10 minutes; returns the Aadhaar holder's e-KYC data."""
        data = load(AadhaarOtpVerifySchema(), {"initiation_id": initiation_id, "otp": otp, "share_code": share_code})
        purpose = self._consent("aadhaar_otp_verify", user_id, consent, context)
        call = self._call(
            "aadhaar_otp_verify", subject=f"initiation {data['initiation_id']}",
            sealed_input={"initiation_id": data["initiation_id"]}, user_id=user_id, context=context,
            body=lambda ref: bodies.aadhaar_otp_verify(ref, initiation_id=data["initiation_id"], otp=data["otp"],
                                                       share_code=data["share_code"], purpose=purpose),
            parse=lambda resp, ref: parsers.aadhaar_otp(resp, request_id=ref))
        return self._engine.run(call)

    # -- payments --------------------------------------------------------------------------

    def initiate_payment(self, payload: Mapping[str, Any], *, user_id: str | None = None,
                         context: CallContext | None = None) -> dict[str, Any]:
        """Open a UPI payment: a collect request when ``customer_details.upi_id`` is given, else a
        payment link. Answers ``PENDING`` with the reference id; the outcome arrives by callback
        or :meth:`get_payment_status`."""
        data = load(PaymentSchema(), payload)
        payee = self.settings.payee_account or ("MOCKPAYEE0001" if self.settings.use_mocks else "")
        if not payee:
            raise ConfigurationError("DECENTRO_PAYEE_ACCOUNT is needed to take payments")
        customer = data["customer_details"]
        common = {"payee_account": payee, "amount": data["amount"], "purpose": data["purpose"],
                  "expiry_minutes": data["expiry_minutes"]}
        if customer.get("upi_id"):
            endpoint, subject = "upi_collect", f"UPI {customer['upi_id'].split('@')[-1]} INR {data['amount']}"

            def body(ref: str) -> dict[str, Any]:
                return bodies.upi_collect(ref, payer_upi=customer["upi_id"], **common)
        else:
            endpoint, subject = "upi_link", f"UPI link INR {data['amount']}"

            def body(ref: str) -> dict[str, Any]:
                return bodies.upi_link(ref, **common)
        call = self._call("upi_payment", endpoint=endpoint, subject=subject, user_id=user_id, context=context,
                          sealed_input={**data, "amount": str(data["amount"])}, body=body,
                          parse=lambda resp, ref: parsers.payment(resp, request_id=ref),
                          envelope_fields={"amount": f"{data['amount']:.2f}", "currency": "INR"})
        return self._engine.run(call)

    def get_payment_status(self, reference_id: str, *, context: CallContext | None = None) -> dict[str, Any]:
        """The payment's status by our reference id: terminal states from the record (a callback
        may have set them), otherwise asked of Decentro."""
        record = self.records.get_operation(reference_id) if reference_id else None
        if record is None or record.operation != "upi_payment":
            raise UnknownReference("No payment with this reference id")
        stored = self._engine.open_json(record.sealed_result) if record.sealed_result else None
        fields = dict(stored["data"]) if stored else {"operation_id": record.operation_id, "reference_id": reference_id}
        transaction_id = fields.get("transaction_id")
        if record.status in SETTLED_STATUSES:
            return to_envelope(_settled_payment(record, fields, stored), reference_id=reference_id)
        if not transaction_id:  # the creation's outcome is unknown: wait for the callback
            return to_envelope(Outcome("PENDING", record.operation_id, fields), reference_id=reference_id)
        call = self._call("payment_status", subject=f"payment {reference_id}", sealed_input={"reference_id": reference_id},
                          context=context, body=lambda ref: None, path_params={"transaction_id": transaction_id},
                          parse=lambda resp, ref: parsers.payment(resp, request_id=ref))
        status_envelope = self._engine.run(call)
        error_code = status_envelope.get("error", {}).get("code")
        if status_envelope["status"] == "FAILURE" and error_code not in CONCLUSIVE_FAILURES:
            # Decentro could not say (not found yet, refused the look-up): the payment stays
            # PENDING and is asked about again next time; the customer may well have paid.
            pending = Outcome("PENDING", record.operation_id, {**fields, "status_check_error": error_code})
            return to_envelope(pending, reference_id=reference_id)
        merged = {**fields, **{k: v for k, v in status_envelope["data"].items() if k not in ("reference_id", "operation_id")}}
        outcome = Outcome(status_envelope["status"], record.operation_id, merged, error_code=error_code)
        envelope = to_envelope(outcome, reference_id=reference_id)
        self._engine.settle_record(record, outcome.status, result=envelope)
        return envelope

    # -- notifications ---------------------------------------------------------------------

    def send_sms(self, phone: str, message: str, *, context: CallContext | None = None) -> dict[str, Any]:
        """Send an SMS (path from ``DECENTRO_SMS_PATH``: confirm it with Decentro)."""
        data = load(SmsSchema(), {"phone": phone, "message": message})
        call = self._call("sms", subject=mask_phone(data["phone"]), sealed_input=data, context=context,
                          body=lambda ref: bodies.sms(ref, phone=data["phone"], message=data["message"]),
                          parse=lambda resp, ref: parsers.notification(resp, request_id=ref))
        return self._engine.run(call)

    def send_email(self, email: str, subject: str, body: str, *, context: CallContext | None = None) -> dict[str, Any]:
        """Send an e-mail (path from ``DECENTRO_EMAIL_PATH``: confirm it with Decentro)."""
        data = load(EmailSchema(), {"email": email, "subject": subject, "body": body})
        call = self._call("email", subject=mask_email(data["email"]), sealed_input=data, context=context,
                          body=lambda ref: bodies.email(ref, email=data["email"], subject=data["subject"],
                                                        body=data["body"]),
                          parse=lambda resp, ref: parsers.notification(resp, request_id=ref))
        return self._engine.run(call)

    # -- KYC result cache and webhooks -----------------------------------------------------

    def cache_kyc_result(self, user_id: str, kyc_type: str, result: Any, ttl: int = 86400) -> bool:
        """Keep ``result`` (sealed) for ``ttl`` seconds under the user and KYC type."""
        self._engine.cache_set(self._engine.cache_key(user_id, kyc_type), result, ttl=ttl)
        return True

    def get_cached_kyc_result(self, user_id: str, kyc_type: str) -> Any:
        """The cached result for the user and KYC type, or ``None``."""
        return self._engine.cache_get(self._engine.cache_key(user_id, kyc_type))

    @staticmethod
    def validate_webhook(payload: bytes | str | Mapping[str, Any], signature: str, secret: str) -> bool:
        """HMAC-SHA256 (hex) of the raw body, compared in constant time.

        Pass the raw bytes as received; a mapping is serialised compactly, which only matches
        a sender that signed exactly that serialisation.
        """
        if isinstance(payload, Mapping):
            payload = json.dumps(payload, separators=(",", ":"))
        return validate_signature(payload, signature, secret)

    # -- shared steps ----------------------------------------------------------------------

    def _consent(self, operation: str, user_id: str | None, consent: Consent | Mapping[str, Any] | None,
                 context: CallContext | None) -> str:
        """Validate and record consent; returns the purpose to send to Decentro."""
        given = Consent.coerce(consent) if consent is not None else Consent.asserted_by_caller(DEFAULT_PURPOSE, context)
        self._engine.consents.record(ConsentRecord(
            user_id=user_id or "anonymous", operation=operation, text=given.text, purpose=given.purpose,
            given_at=self._engine.clock(), client_ip=given.client_ip or (context.client_ip if context else None),
            user_agent=given.user_agent or (context.user_agent if context else None)))
        return given.purpose

    @staticmethod
    def _actor(user_id: str | None, context: CallContext | None) -> str:
        if context and context.actor != "system":
            return context.actor
        return f"user:{user_id}" if user_id else "system"

    def _call(self, operation: str, *, subject: str, sealed_input: Mapping[str, Any],
              body: Callable[[str], Mapping[str, Any] | None], parse: Callable[..., Outcome],
              endpoint: str | None = None, user_id: str | None = None, context: CallContext | None = None,
              path_params: Mapping[str, str] | None = None, envelope_fields: Mapping[str, Any] | None = None) -> Call:
        return Call(operation=operation, endpoint=ENDPOINTS[endpoint or operation], body=body, parse=parse,
                    subject=subject, sealed_input=sealed_input, path_params=path_params, user_id=user_id,
                    actor=self._actor(user_id, context), envelope_fields=envelope_fields)
