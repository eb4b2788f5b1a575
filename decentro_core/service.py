"""The integration guide's operations: :class:`BlockingDecentroService`.

Each public method validates its input with its operation's schema, records consent, and
hands the declaration (:mod:`decentro_core.operations`) to the
:class:`~decentro_core.runner.OperationRunner`. :class:`~decentro_core.async_service.DecentroService`
is the guide's awaitable face over the same methods::

    decentro = DecentroService()                  # reads the environment
    result = await decentro.verify_pan("ABCDE1234F", "Asha Verma")
    result["status"], result["data"]["reference_id"]
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from functools import cached_property
from typing import Any

from .context import CallContext, Consent
from .defaults import default_ports
from .errors import ConfigurationError, ValidationError
from .events import EventDispatcher, Handler
from .operations import aadhaar, kyc, notifications, payments, vpa
from .operations.base import Operation
from .operations.payments import ReconcileReport
from .ports import Clock, ConsentRecord, IdFactory, Ports
from .runner import OperationRunner
from .settings import Settings
from .validation import USER_ID_MAX, is_storable
from .webhooks import WebhookAck, WebhookProcessor, validate_signature
from .webhooks.processor import Headers

__all__ = ["BlockingDecentroService", "DEFAULT_PURPOSE"]

DEFAULT_PURPOSE = "Customer identity verification for onboarding"
ConsentArg = Consent | Mapping[str, Any] | None


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _new_reference_id() -> str:
    return str(uuid.uuid4())


class BlockingDecentroService:
    """Every operation of the guide, blocking: for WSGI apps, scripts and workers.

    ``ports`` left ``None`` are built from ``settings`` by the composition root
    (:func:`decentro_core.defaults.default_ports`), and closed by :meth:`close`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        ports: Ports | None = None,
        *,
        clock: Clock | None = None,
        new_reference_id: IdFactory | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.settings = (settings or Settings.from_env()).check()
        self._close: Callable[[], None] | None = None
        if ports is None:
            ports, self._close = default_ports(self.settings)
        self.ports = ports
        self.clock: Clock = clock or _utcnow
        s = self.settings
        self.events = EventDispatcher(
            ports.records.outbox, self.clock, mode="worker" if s.events_dispatch == "worker" else "inline",
            max_attempts=s.events_max_attempts, backoff_base=s.events_retry_base, backoff_max=s.events_retry_max,
            lease=s.events_lease, instruments=ports.instruments,
        )
        """Outcome events: register handlers with :meth:`on` (see :mod:`decentro_core.events`)."""
        self._runner = OperationRunner(
            settings=self.settings, ports=ports, clock=self.clock,
            new_reference_id=new_reference_id or _new_reference_id, sleep=sleep or time.sleep,
            rng=rng or random.Random(), monotonic=monotonic or time.monotonic, events=self.events,
        )
        self.bulkhead = self._runner.bulkhead
        """How many requests wait on Decentro in this process (``DECENTRO_BULKHEAD_MAX``)."""

    def on(self, event_type: str, handler: Handler | None = None, *, name: str | None = None) -> Any:
        """Call ``handler(event)`` when an operation reaches an outcome of ``event_type``
        (``"payment.succeeded"``, ``"payment.*"``, ``"*"``...); also a decorator. Each handler
        gets each event once it returns; one that raises is retried with backoff. See
        :mod:`decentro_core.events` for the types and the delivery rules."""
        return self.events.on(event_type, handler, name=name)

    def reconcile_payments(self, *, older_than: timedelta = timedelta(minutes=15), limit: int = 500,
                           grace: timedelta | None = None) -> ReconcileReport:
        """Settle what Decentro can settle of the payments still PENDING after ``older_than``,
        and mark those past their link's expiry that nobody can settle ``OUTCOME_UNKNOWN``
        (see :func:`~decentro_core.operations.payments.reconcile_payments`). Run it from a
        scheduler (``flask decentro reconcile``, or ``flask decentro worker``)."""
        return payments.reconcile_payments(self._runner, older_than=older_than, limit=limit, grace=grace)

    @cached_property
    def webhooks(self) -> WebhookProcessor:
        """The callback processor over this service's stores, configured from its settings."""
        p = self.ports
        return WebhookProcessor.from_settings(self.settings, records=p.records, vault=p.vault, audit=p.audit,
                                              clock=self.clock, events=self.events, instruments=p.instruments)

    def wait_for_retries(self, timeout: float | None = None) -> bool:
        """Wait until the retries running off the callers' threads (``DECENTRO_BACKGROUND_RETRIES``)
        have settled their records; ``False`` if some still ran after ``timeout`` seconds."""
        return self._runner.drain_retries(timeout)

    def close(self) -> None:
        """Close what this service opened itself (HTTP pool, database connections) and stop
        the event retry thread (undelivered events stay in the outbox). Background retries get
        until their calls' deadline to settle first (one still running then is left ``PENDING``,
        for reconciliation)."""
        self._runner.drain_retries(timeout=self.settings.deadline)
        self.events.close()
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> BlockingDecentroService:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- KYC -------------------------------------------------------------------------------

    def verify_pan(self, pan: str, name: str | None = None, *, detailed: bool = False, user_id: str | None = None,
                   consent: ConsentArg = None, context: CallContext | None = None) -> dict[str, Any]:
        """Check a PAN with the Income Tax registry; ``name`` is compared when given.
        ``detailed`` asks for Decentro's PAN_DETAILED answer (first and last name, Aadhaar seeding)."""
        given = {"pan": pan, "name": name, "detailed": detailed}
        return self._run(kyc.PAN, given, user_id=user_id, consent=consent, context=context)

    def verify_bank(self, account_number: str, ifsc: str, name: str | None = None, *,
                    validation_type: str = "penniless", user_id: str | None = None,
                    consent: ConsentArg = None, context: CallContext | None = None) -> dict[str, Any]:
        """Check that a bank account exists (penniless by default) and whose it is."""
        given = {"account_number": account_number, "ifsc": ifsc, "name": name, "validation_type": validation_type}
        return self._run(kyc.BANK_ACCOUNT, given, user_id=user_id, consent=consent, context=context)

    def fetch_ckyc(self, pan: str, *, user_id: str | None = None, consent: ConsentArg = None,
                   context: CallContext | None = None) -> dict[str, Any]:
        """Search the Central KYC registry by PAN."""
        return self._run(kyc.CKYC, {"pan": pan}, user_id=user_id, consent=consent, context=context)

    def verify_aadhaar_xml(self, xml_content: str | bytes, share_code: str, *, mobile: str | None = None,
                           email: str | None = None, user_id: str | None = None, consent: ConsentArg = None,
                           context: CallContext | None = None) -> dict[str, Any]:
        """Verify UIDAI's offline e-KYC XML (or its share-code ZIP) locally, signature first.

        The check runs here against UIDAI's pinned keys (no Decentro call, nothing billed). An
        accepted file is sealed as proof; a refused one is never stored; the share code never is.
        """
        _check_user(user_id)
        request = aadhaar.OFFLINE_FILE.load({"content": xml_content, "share_code": share_code, "mobile": mobile,
                                             "email": email, "max_bytes": self.settings.aadhaar_max_bytes})
        self.ports.consents.record(self._consent(aadhaar.OFFLINE_FILE.name, user_id, consent, context))
        return aadhaar.verify_offline_file(self._runner, request, user_id=user_id, actor=_actor(user_id, context))

    def start_aadhaar_otp(self, aadhaar_number: str, *, user_id: str | None = None, consent: ConsentArg = None,
                          context: CallContext | None = None) -> dict[str, Any]:
        """Ask UIDAI (through Decentro) to send an OTP; ``data.initiation_id`` continues the flow."""
        return self._run(aadhaar.OTP_START, {"aadhaar_number": aadhaar_number}, user_id=user_id, consent=consent,
                         context=context)

    def verify_aadhaar_otp(self, initiation_id: str, otp: str, *, share_code: str | None = None,
                           user_id: str | None = None, consent: ConsentArg = None,
                           context: CallContext | None = None) -> dict[str, Any]:
        """Submit the OTP within 10 minutes; returns the Aadhaar holder's e-KYC data. Only the
        user who started the session may complete it (others: ``UnknownReference``). It has its
        own time budget (``DECENTRO_AADHAAR_OTP_TIMEOUT``), and the same OTP submitted again
        answers the first validation's result instead of spending the OTP twice."""
        request, record, actor = self._prepare(
            aadhaar.OTP_VERIFY, {"initiation_id": initiation_id, "otp": otp, "share_code": share_code},
            user_id=user_id, consent=consent, context=context,
            check=lambda loaded: aadhaar.check_session_owner(self._runner, loaded["initiation_id"], user_id))
        return aadhaar.verify_otp(self._runner, request, user_id=user_id, actor=actor, consent=record)

    # -- payments --------------------------------------------------------------------------

    def initiate_payment(self, payload: Mapping[str, Any], *, user_id: str | None = None,
                         context: CallContext | None = None, idempotency_key: str | None = None) -> dict[str, Any]:
        """Open a UPI payment: a collect request when ``customer_details.upi_id`` is given, else a
        payment link. Answers ``PENDING`` with the reference id; the outcome arrives by callback
        or :meth:`get_payment_status`. With ``idempotency_key`` (per user), a repeat with the
        same payload answers the first payment instead of opening another."""
        _check_user(user_id)
        data = payments.UPI_LINK.load(payload)
        payee = self.settings.payee_account or ("MOCKPAYEE0001" if self.settings.use_mocks else "")
        if not payee:
            raise ConfigurationError("DECENTRO_PAYEE_ACCOUNT is needed to take payments")
        return payments.create_payment(self._runner, {**data, "payee_account": payee}, user_id=user_id,
                                       actor=_actor(user_id, context), idempotency_key=idempotency_key)

    def get_payment_status(self, reference_id: str, *, user_id: str | None = None,
                           context: CallContext | None = None) -> dict[str, Any]:
        """The payment's status by our reference id: settled states from the record (a callback
        may have set them), otherwise asked of Decentro. With ``user_id``, only that user's own
        payment is found (anyone else gets :class:`~decentro_core.errors.UnknownReference`)."""
        _check_user(user_id)
        return payments.payment_status(self._runner, reference_id, user_id=user_id, actor=_actor(user_id, context))

    def validate_upi_handle(self, upi_id: str, *, user_id: str | None = None, consent: ConsentArg = None,
                            context: CallContext | None = None) -> dict[str, Any]:
        """Check that a UPI id (VPA) exists and whose it is, before asking it to pay."""
        return self._run(vpa.VPA_VALIDATE, {"upi_id": upi_id}, user_id=user_id, consent=consent,
                         context=context)

    # -- notifications ---------------------------------------------------------------------

    def send_sms(self, phone: str, message: str, *, context: CallContext | None = None) -> dict[str, Any]:
        """Send an SMS (path from ``DECENTRO_SMS_PATH``: confirm it with Decentro)."""
        return self._run(notifications.SMS, {"phone": phone, "message": message}, context=context)

    def send_email(self, email: str, subject: str, body: str, *, context: CallContext | None = None) -> dict[str, Any]:
        """Send an e-mail (path from ``DECENTRO_EMAIL_PATH``: confirm it with Decentro)."""
        return self._run(notifications.EMAIL, {"email": email, "subject": subject, "body": body}, context=context)

    # -- KYC result cache and webhooks -----------------------------------------------------

    def cache_kyc_result(self, user_id: str, kyc_type: str, result: Any, ttl: int = 86400) -> bool:
        """Keep ``result`` (sealed) for ``ttl`` seconds under the user and KYC type."""
        self._runner.cache_set(self._runner.cache_key(user_id, kyc_type), result, ttl=ttl)
        return True

    def get_cached_kyc_result(self, user_id: str, kyc_type: str) -> Any:
        """The cached result for the user and KYC type, or ``None``."""
        return self._runner.cache_get(self._runner.cache_key(user_id, kyc_type))

    def receive_callback(self, raw_body: bytes, headers: Headers, *,
                         remote_addr: str | None = None) -> WebhookAck:
        """One callback delivery from any web framework (see :class:`WebhookProcessor`)."""
        return self.webhooks.receive_request(raw_body, headers, remote_addr=remote_addr)

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

    def _run(self, operation: Operation, given: Mapping[str, Any], *, user_id: str | None = None,
             consent: ConsentArg = None, context: CallContext | None = None) -> dict[str, Any]:
        """Validate input and consent, then run (through the KYC cache when the operation is
        cached). The runner records the consent once the call is certain to be made."""
        request, record, actor = self._prepare(operation, given, user_id=user_id, consent=consent, context=context)
        if operation.cache_fields and user_id is not None:
            return self._runner.run_cached(operation, request, user_id=user_id, actor=actor, consent=record)
        return self._runner.run(operation, request, user_id=user_id, actor=actor, consent=record)

    def _prepare(self, operation: Operation, given: Mapping[str, Any], *, user_id: str | None,
                 consent: ConsentArg, context: CallContext | None,
                 check: Callable[[dict[str, Any]], None] | None = None,
                 ) -> tuple[dict[str, Any], ConsentRecord | None, str]:
        """What every call checks before it runs, in this order: the user id, the input, then
        ``check`` on it (the OTP session's owner), then the consent. Returns the request (with
        the consent's purpose, which is sent to Decentro), the consent as it will be recorded
        (``None`` for an operation without one) and the audit actor."""
        _check_user(user_id)
        request = operation.load(given)
        request.update({key: getattr(self.settings, name) for key, name in (operation.from_settings or {}).items()})
        if check is not None:
            check(request)
        record = None
        if operation.consent:
            record = self._consent(operation.name, user_id, consent, context)
            request["consent_purpose"] = record.purpose
        return request, record, _actor(user_id, context)

    def _consent(self, operation: str, user_id: str | None, consent: ConsentArg,
                 context: CallContext | None) -> ConsentRecord:
        """The validated consent as it will be recorded (the purpose is sent to Decentro)."""
        given = Consent.coerce(consent) if consent is not None else Consent.asserted_by_caller(DEFAULT_PURPOSE, context)
        return ConsentRecord(
            user_id=user_id or "anonymous", operation=operation, text=given.text, purpose=given.purpose,
            given_at=self.clock(), client_ip=given.client_ip or (context.client_ip if context else None),
            user_agent=given.user_agent or (context.user_agent if context else None))


def _check_user(user_id: str | None) -> None:
    """A user id is stored with records, consent and audit: bounded, storable text."""
    if user_id is not None and not (isinstance(user_id, str) and 0 < len(user_id) <= USER_ID_MAX
                                    and is_storable(user_id)):
        raise ValidationError({"user_id": [f"Must be 1 to {USER_ID_MAX} characters of storable text."]})


def _actor(user_id: str | None, context: CallContext | None) -> str:
    if context and context.actor != "system":
        return context.actor
    return f"user:{user_id}" if user_id else "system"
