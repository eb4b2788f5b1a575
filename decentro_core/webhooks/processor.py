"""Decentro callbacks: authenticate, store, then process, exactly once per delivery.

:class:`WebhookProcessor` is framework-free and owns every webhook option (built from
:class:`~decentro_core.settings.Settings` by :meth:`WebhookProcessor.from_settings`): any HTTP
front end (Flask, FastAPI, Django) hands :meth:`~WebhookProcessor.receive_request` the raw
body, the headers and the client address, and answers with the :class:`WebhookAck` it returns.

Checks run cheapest first: body size, HMAC-SHA256 of the raw body (any configured secret,
for rotation), the optional shared credential header Decentro can send, the optional
source-IP allow-list, then JSON. An accepted event is **stored (body sealed) before it is
processed**, so a crash in between leaves it replayable.

Dedupe key: ``originalCallbackTxnId`` when present, else ``callbackTxnId``. Decentro retries a
callback up to three times; a retry names the first delivery in ``originalCallbackTxnId``, so
preferring it folds every retry into one event. With neither field the key is
``sha256:`` + SHA-256 of ``decentroTxnId`` and ``transactionStatus``.

A redelivery of an event already ``processed`` is acknowledged and ignored; of any other
(``failed``, or ``received`` and never finished) it is processed again, which the store makes
safe against a processor still on it. :meth:`WebhookProcessor.replay_failed`, which nobody's
redelivery prompts, takes ``received`` events only once they are older than ``stale_after``
(their worker died). Terminal statuses (SUCCESS,
FAILURE, EXPIRED) are never overwritten, so a late PENDING cannot regress a payment.

Every delivery and its fate (processed, duplicate, failed, rejected with its code, unavailable)
is reported to ``instruments`` (:mod:`decentro_core.observability`).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Protocol

from ..demo import warn_once
from ..errors import (
    ConfigurationError,
    DecentroError,
    StoreError,
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
    safe_reason,
)
from ..observability import LOG_INSTRUMENTS, Instruments, log_fields
from ..ports import (
    AuditEvent,
    AuditSink,
    CallbackUpdate,
    Clock,
    OperationRecord,
    RecordStore,
    Vault,
    WebhookEvent,
    replaces_status,
)
from ..events import EventDispatcher, outcome_event
from ..settings import Settings
from .wire import ACK_UNAVAILABLE, Callback, WebhookAck, parse_callback, validate_signature

__all__ = ["CallbackMismatch", "DEMO_WEBHOOK_SECRET", "Headers", "OperationNotFound", "ReplayReport", "WebhookProcessor"]

log = logging.getLogger("decentro.webhooks")
# Demo warnings share one logger, so a command that does not serve can quiet them all at once.

# Used only in mock mode when no DECENTRO_WEBHOOK_SECRET is configured; logged loudly.
DEMO_WEBHOOK_SECRET = "demo-webhook-secret-not-for-production"
_PAISA = Decimal("0.01")


@dataclass(frozen=True)
class ReplayReport:
    """Dedupe keys of the events a replay processed and of those that failed again."""

    processed: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()


class OperationNotFound(Exception):
    """A callback arrived for an operation not stored (yet): the event stays replayable."""


class CallbackMismatch(Exception):
    """A callback that would settle an operation names another Decentro transaction id, or
    another amount, than the operation's: it is not applied (the event is stored ``failed``, for
    an operator to look at) and reconciliation asks Decentro for the operation's real status."""


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Headers(Protocol):
    """Request headers as any framework gives them: looked up by name, case-insensitively."""

    def get(self, key: str, /) -> str | None: ...


@dataclass
class WebhookProcessor:
    """Authenticates, stores and processes Decentro callbacks (see the module docstring)."""

    records: RecordStore
    vault: Vault
    audit: AuditSink
    _: KW_ONLY
    secrets: Sequence[str] = ()
    require_signature: bool = True
    credential: str | None = None
    allowed_ips: Iterable[str] = ()
    max_bytes: int = 64 * 1024
    stale_after: timedelta = timedelta(minutes=5)
    clock: Clock = field(default=_utcnow)
    signature_header: str = "X-Decentro-Signature"
    credential_header: str = "X-Decentro-Credential"
    events: EventDispatcher | None = None
    instruments: Instruments = LOG_INSTRUMENTS

    @classmethod
    def from_settings(cls, settings: Settings, *, records: RecordStore, vault: Vault, audit: AuditSink,
                      clock: Clock = _utcnow, events: EventDispatcher | None = None,
                      instruments: Instruments = LOG_INSTRUMENTS) -> WebhookProcessor:
        """Every option from settings. Mock mode without a secret signs with the public demo
        secret (logged loudly); live mode without one is refused by ``Settings.check``."""
        secrets = settings.webhook_secrets
        if not secrets and settings.webhook_require_signature and settings.use_mocks:
            _warn_demo_secret()
            secrets = (DEMO_WEBHOOK_SECRET,)
        return cls(
            records, vault, audit, secrets=secrets, require_signature=settings.webhook_require_signature,
            credential=settings.webhook_credential or None, allowed_ips=settings.webhook_allowed_ips,
            max_bytes=settings.webhook_max_bytes, stale_after=timedelta(seconds=settings.webhook_stale_after),
            clock=clock, signature_header=settings.webhook_signature_header,
            credential_header=settings.webhook_credential_header, events=events, instruments=instruments,
        )

    def __post_init__(self) -> None:
        self.secrets = tuple(s for s in self.secrets if s)
        self.credential = self.credential or None
        try:
            self._networks = tuple(
                ipaddress.ip_network(cidr.strip(), strict=False) for cidr in self.allowed_ips
            )
        except ValueError as exc:
            raise ConfigurationError(f"DECENTRO_WEBHOOK_ALLOWED_IPS is not valid: {exc}") from None
        if self.require_signature and not self.secrets:
            raise ConfigurationError(
                "Webhook signatures are required but DECENTRO_WEBHOOK_SECRET is empty"
            )
        if not (self.secrets or self.credential or self._networks):
            raise ConfigurationError(
                "Decentro callbacks need a signature secret, a shared credential or an IP allow-list: "
                "set DECENTRO_WEBHOOK_SECRET, DECENTRO_WEBHOOK_CREDENTIAL or DECENTRO_WEBHOOK_ALLOWED_IPS"
            )

    # -- receiving ------------------------------------------------------------------------

    def receive_request(self, raw_body: bytes, headers: Headers, *,
                        remote_addr: str | None) -> WebhookAck:
        """One HTTP delivery as any framework sees it: the exact body bytes (the signature
        covers them), the request headers (any case-insensitive mapping) and the peer address.
        Read at most ``max_bytes + 1`` bytes of the body: a longer one is refused here."""
        return self.receive(raw_body, signature=headers.get(self.signature_header),
                            credential=headers.get(self.credential_header), remote_addr=remote_addr)

    def receive(
        self,
        raw_body: bytes,
        *,
        signature: str | None,
        credential: str | None = None,
        remote_addr: str | None = None,
    ) -> WebhookAck:
        """Check, store, then process one delivery; never raises for a bad callback."""
        self.instruments.webhook("received")
        try:
            self.authenticate(
                raw_body, signature=signature, credential=credential, remote_addr=remote_addr
            )
            callback = parse_callback(raw_body)
        except WebhookError as exc:
            log.warning("Decentro callback rejected: %s", exc.code,
                        extra=_fields(None, "rejected", error_code=exc.code))
            self.instruments.webhook("rejected", reason=exc.code)
            return WebhookAck.rejected(exc)
        try:
            return self._store_and_process(raw_body, callback)
        except StoreError:
            log.error("Decentro callback %s could not be stored; answering 503", callback.dedupe_key,
                      extra=_fields(callback.reference_id, "unavailable", error_code=StoreError.code))
            self.instruments.webhook("unavailable", reason=StoreError.code)
            body = {"response_code": ACK_UNAVAILABLE}
            return WebhookAck(503, body, "store_error", callback.dedupe_key)

    def authenticate(
        self,
        raw_body: bytes,
        *,
        signature: str | None,
        credential: str | None = None,
        remote_addr: str | None = None,
    ) -> None:
        """Raise :class:`WebhookSignatureError` (or a payload error for size) unless accepted."""
        if len(raw_body) > self.max_bytes:
            raise WebhookPayloadError("Callback body is too large", http_status=413)
        # A configured secret is always checked: "not required" must not mean "skipped when
        # the sender leaves the header out".
        if self.secrets:
            if not validate_signature(raw_body, signature, self.secrets):
                raise WebhookSignatureError("Callback signature does not match")
        if self.credential is not None:
            if not hmac.compare_digest((credential or "").encode(), self.credential.encode()):
                raise WebhookSignatureError("Callback credential does not match")
        if self._networks and not self._address_allowed(remote_addr):
            raise WebhookSignatureError("Callback source address is not allowed")

    def _address_allowed(self, remote_addr: str | None) -> bool:
        try:
            address = ipaddress.ip_address(remote_addr or "")
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports 203.0.113.5 as ::ffff:203.0.113.5
        return any(address in network for network in self._networks)

    def _store_and_process(self, raw_body: bytes, callback: Callback) -> WebhookAck:
        event = WebhookEvent(
            dedupe_key=callback.dedupe_key,
            sealed_body=self.vault.seal(raw_body),
            received_at=self.clock(),
            reference_id=callback.reference_id,
        )
        if not self.records.add_webhook_event(event):
            stored = self.records.get_webhook_event(callback.dedupe_key)
            if stored is None or not self._needs_processing(stored):
                log.info("Decentro callback %s is a duplicate; acknowledged", callback.dedupe_key,
                         extra=_fields(callback.reference_id, "duplicate"))
                self.instruments.webhook("duplicate")
                return WebhookAck.accepted("duplicate", callback.dedupe_key)
            event = stored
        outcome = self._process(event, callback)
        return WebhookAck.accepted(outcome, callback.dedupe_key)

    @staticmethod
    def _needs_processing(event: WebhookEvent) -> bool:
        """A redelivery applies any event not yet ``processed``. Decentro delivers again only when
        it did not get our 200, so a ``received`` event may never be applied: its worker died, or
        the database went away before the event could even be marked ``failed``. Acknowledging it
        as a duplicate would leave the payment unsettled until reconciliation. Applying it twice
        is safe: the store checks, under the operation's row lock, whether another processor has
        applied it meanwhile (``RecordStore.apply_callback``), and then writes nothing."""
        return event.state != "processed"

    # -- processing -----------------------------------------------------------------------

    def _process(self, event: WebhookEvent, callback: Callback) -> str:
        try:
            outcome = self.apply(callback)
        except Exception as exc:  # noqa: BLE001 - any failure must leave the event replayable
            reason = safe_reason(exc, OperationNotFound, CallbackMismatch)
            self.records.update_webhook_event(
                event.dedupe_key, state="failed", attempts=event.attempts + 1, last_error=reason
            )
            log.warning("Decentro callback %s failed (%s); it can be replayed", event.dedupe_key, reason,
                        extra=_fields(event.reference_id, "failed", error_code=type(exc).__name__))
            self.instruments.webhook("failed", reason=type(exc).__name__)
            return "failed"
        log.info("Decentro callback %s processed: %s", event.dedupe_key, outcome,
                 extra=_fields(event.reference_id, outcome))
        self.instruments.webhook("duplicate" if outcome == "duplicate" else "processed", reason=outcome)
        return outcome

    def apply(self, callback: Callback) -> str:
        """Move the matching operation to the callback's status, unless that would regress it.

        One store transaction saves the status, appends the audit event, writes the outcome
        event (a payment settled) and marks the stored event ``processed`` (see
        :meth:`RecordStore.apply_callback`): a crash leaves either all of it or none of it, so
        a replay never audits a callback twice. The outcome event is delivered after the commit.
        """
        update = self.records.apply_callback(
            callback.dedupe_key,
            reference_id=callback.reference_id,
            operation_id=callback.operation_id,
            decide=lambda record: self._decide(callback, record),
            audit=self.audit,
        )
        if update is None:
            raise OperationNotFound("No operation matches this callback yet")
        if update.event is not None and self.events is not None:
            self.events.committed([update.event])
        return update.audit.outcome

    def _decide(self, callback: Callback, record: OperationRecord) -> CallbackUpdate:
        changed = record.status != callback.status and replaces_status(record.status, callback.status)
        if changed:
            self._check_same_transaction(callback, record)
        if record.status == callback.status:
            outcome = "unchanged"
        else:
            outcome = callback.status if changed else f"ignored:{callback.status}"
        operation_id = record.operation_id or callback.operation_id
        event = AuditEvent(
            actor="decentro-callback",
            action=f"{record.operation}.callback",
            subject=record.operation,
            outcome=outcome,
            occurred_at=self.clock(),
            operation_id=operation_id,
            reference_id=record.reference_id,
        )
        if not changed:
            return CallbackUpdate(audit=event)
        updated = replace(record, status=callback.status, operation_id=operation_id, updated_at=self.clock())
        emitted = outcome_event(updated, old_status=record.status, at=updated.updated_at)
        return CallbackUpdate(audit=event, record=updated,
                              event=self.events.prepare(emitted) if self.events is not None else emitted)

    def _check_same_transaction(self, callback: Callback, record: OperationRecord) -> None:
        """A signed callback is trusted to say what happened to *its* transaction: one naming
        another Decentro id, or another amount, than the record it would settle is not applied
        (a mix-up at the sender, or a leaked secret settling a ₹30 payment with a ₹1 callback)."""
        if record.operation_id and callback.operation_id and record.operation_id != callback.operation_id:
            raise CallbackMismatch("The callback's decentroTxnId is not this operation's")
        if callback.amount is None or not record.sealed_request:
            return
        asked = json.loads(self.vault.open(record.sealed_request)).get("amount")
        if asked is not None and Decimal(str(asked)).quantize(_PAISA) != callback.amount.quantize(_PAISA):
            raise CallbackMismatch("The callback's amount is not this operation's")

    # -- replay ---------------------------------------------------------------------------

    def replay(self, dedupe_key: str) -> str:
        """Process one stored event again (any state); returns the outcome."""
        event = self.records.get_webhook_event(dedupe_key)
        if event is None:
            raise KeyError(dedupe_key)
        return self._process(event, parse_callback(self.vault.open(event.sealed_body)))

    def replayable(self) -> list[WebhookEvent]:
        """Failed events, and received events older than ``stale_after`` (a worker died)."""
        failed = list(self.records.webhook_events(state="failed"))
        cutoff = self.clock() - self.stale_after
        stuck = [e for e in self.records.webhook_events(state="received") if e.received_at <= cutoff]
        return sorted(failed + stuck, key=lambda e: e.received_at)

    def replay_failed(self) -> ReplayReport:
        """Replay every replayable event once, oldest first."""
        processed: list[str] = []
        failed: list[str] = []
        for event in self.replayable():
            try:
                outcome = self.replay(event.dedupe_key)
            except (DecentroError, KeyError) as exc:
                reason = safe_reason(exc, OperationNotFound, CallbackMismatch)
                log.warning("Decentro callback %s cannot be replayed: %s", event.dedupe_key, reason)
                outcome = "failed"
            (failed if outcome == "failed" else processed).append(event.dedupe_key)
        return ReplayReport(processed=tuple(processed), failed=tuple(failed))


def _warn_demo_secret() -> None:
    warn_once("demo-webhook-secret", "DECENTRO_WEBHOOK_SECRET is not set: mock mode uses the PUBLIC demo secret %r. "
              "Anyone can sign callbacks with it. Never use it in production.", DEMO_WEBHOOK_SECRET)


def _fields(reference_id: str | None, status: str, *, error_code: str | None = None) -> dict[str, object]:
    return log_fields("callback", reference_id, status=status, error_code=error_code)
