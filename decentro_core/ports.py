"""The ports: what the core needs from the outside world, and the values that cross them.

Each port is a narrow ``typing.Protocol``. Values crossing a port are frozen dataclasses owned
by the core. Adapters (``decentro_adapters``) implement the ports for real technologies; the
in-memory versions in :mod:`decentro_core.memory` are the embedded defaults and the test fakes.
Adapters convert their own exceptions into :mod:`decentro_core.errors` before they leave.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from .observability import LOG_INSTRUMENTS, Instruments

__all__ = [
    "SETTLED_STATUSES",
    "AadhaarKyc",
    "AadhaarVerifier",
    "AuditEvent",
    "AuditHead",
    "AuditSink",
    "AuditVerification",
    "Cache",
    "CallbackUpdate",
    "Clock",
    "ConsentListing",
    "ConsentRecord",
    "ConsentStore",
    "EventOutbox",
    "EventState",
    "GatewayRequest",
    "GatewayResponse",
    "HttpGateway",
    "IdFactory",
    "Instruments",
    "Module",
    "OperationRecord",
    "OutcomeEvent",
    "Ports",
    "UNRESOLVED_STATUS",
    "replaces_status",
    "RecordStore",
    "Vault",
    "WebhookEvent",
    "WebhookState",
]

Module = Literal["kyc", "banking", "payments", "notifications"]

SETTLED_STATUSES = frozenset({"SUCCESS", "FAILURE", "EXPIRED"})
"""Final operation statuses: once stored, no later write replaces them (see ``save_operation``)."""
UNRESOLVED_STATUS = "OUTCOME_UNKNOWN"
"""A payment that expired while nobody could say whether it was paid (reconciliation). Only a
settled status replaces it: a late callback or status answer still settles it, a PENDING never."""


def replaces_status(stored: str, new: str) -> bool:
    """Whether a write of status ``new`` may replace the stored status (``save_operation``):
    a settled status is final, an unresolved one yields only to a settled one."""
    if stored in SETTLED_STATUSES:
        return new == stored
    if stored == UNRESOLVED_STATUS:
        return new == stored or new in SETTLED_STATUSES
    return True


EventState = Literal["pending", "retrying", "delivered", "dead"]
WebhookState = Literal["received", "processed", "failed"]
Clock = Callable[[], datetime]
IdFactory = Callable[[], str]


# -- HTTP gateway ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayRequest:
    """One call to Decentro. ``module`` selects the credentials the gateway sends; ``timeout``
    (seconds) is how long to wait for the answer: what is left of the call's deadline."""

    method: Literal["GET", "POST"]
    path: str
    module: Module
    reference_id: str
    body: Mapping[str, Any] | None = field(default=None, repr=False)  # carries personal data
    timeout: float | None = None


@dataclass(frozen=True)
class GatewayResponse:
    """Decentro's answer: HTTP status and the parsed JSON object."""

    status_code: int
    body: Mapping[str, Any] = field(repr=False)  # carries personal data
    headers: Mapping[str, str] = field(default_factory=dict)


class HttpGateway(Protocol):
    """Sends one request to Decentro.

    Raises :class:`~decentro_core.errors.GatewayConnectionError` when nothing was sent,
    :class:`~decentro_core.errors.GatewayTimeout` when the request was sent and no answer
    came, :class:`~decentro_core.errors.UpstreamProtocolError` when the answer is not a JSON
    object. Any HTTP status is returned, not raised: the core decides what it means.
    """

    def send(self, request: GatewayRequest) -> GatewayResponse: ...


# -- Cache ----------------------------------------------------------------------------------


class Cache(Protocol):
    """Bytes by key with a time to live. Values are sealed by the core before they arrive."""

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, *, ttl: int) -> None: ...

    def delete(self, key: str) -> None: ...

    def lock(self, key: str, *, timeout: float) -> AbstractContextManager[bool]:
        """Hold a short lock across processes (single flight); yields whether it was won."""
        ...


# -- Crypto vault ---------------------------------------------------------------------------


class Vault(Protocol):
    """Seals personal data before it is stored, and derives keyed lookup hashes."""

    def seal(self, plaintext: bytes) -> str: ...

    def open(self, token: str) -> bytes: ...

    def fingerprint(self, value: str) -> str:
        """A keyed, stable hash of ``value`` (for cache keys and lookups), never reversible."""
        ...


# -- Audit ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEvent:
    """One append-only audit entry. ``subject`` is always masked (``ABCDE****F``)."""

    actor: str
    action: str
    subject: str
    outcome: str
    occurred_at: datetime
    operation_id: str | None = None
    reference_id: str | None = None


@dataclass(frozen=True)
class AuditVerification:
    """Result of walking the chain: ``first_broken`` is the id of the first bad row.

    ``legacy`` counts the unkeyed (plain SHA-256) links a re-signing walk accepted at the head
    of the chain (written before ``DECENTRO_AUDIT_KEYS`` was set); plain verification refuses them.
    """

    ok: bool
    checked: int
    first_broken: int | None = None
    reason: str | None = None
    legacy: int = 0


@dataclass(frozen=True)
class AuditHead:
    """The chain's newest link and its position: an **anchor** once stored outside the database.

    ``count`` rows, the last with id ``last_id`` and stored link ``link`` (made under
    ``key_id``; ``"sha256"`` for a legacy link). ``verify(anchor)`` checks the chain still
    holds that link at that position, so rewriting or cutting the chain below it is found.
    """

    count: int
    last_id: int
    link: str
    key_id: str

    def to_json(self) -> str:
        """One line of JSON (no personal data: a position and a keyed hash)."""
        values = {"count": self.count, "last_id": self.last_id, "link": self.link, "key_id": self.key_id}
        return json.dumps(values, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> AuditHead:
        """Read :meth:`to_json`'s line back; ``ValueError`` if it is not one."""
        try:
            values = json.loads(text)
            head = cls(count=values["count"], last_id=values["last_id"], link=values["link"], key_id=values["key_id"])
        except (TypeError, KeyError, json.JSONDecodeError):
            raise ValueError("not an audit anchor (JSON with count, last_id, link, key_id)") from None
        ints = all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (head.count, head.last_id))
        if not ints or not isinstance(head.link, str) or not isinstance(head.key_id, str):
            raise ValueError("not an audit anchor: count and last_id are whole numbers, link and key_id text")
        return head


class AuditSink(Protocol):
    """An append-only, keyed hash chain of what was done to whose data."""

    def append(self, event: AuditEvent) -> None: ...

    def head(self) -> AuditHead:
        """The newest link and its position (``count=0`` for an empty log): store it elsewhere."""
        ...

    def verify(self, anchor: AuditHead | None = None) -> AuditVerification:
        """Walk the chain; with ``anchor``, also require that head at that position."""
        ...


# -- Consent --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentRecord:
    """The consent a user gave for one operation."""

    user_id: str
    operation: str
    text: str
    purpose: str
    given_at: datetime
    client_ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class ConsentListing:
    """One stored consent as an operator screen lists it: where the record says it came from
    (client IP, user agent) is only said to be there, never opened."""

    id: int
    user_id: str
    operation: str
    purpose: str
    given_at: datetime
    has_client_ip: bool
    has_user_agent: bool
    text_fingerprint: str | None = None  # decentro_core.consents.text_fingerprint; None: stored before it


class ConsentStore(Protocol):
    """Keeps consent records, text sealed (:mod:`decentro_core.consents`); ``record`` returns its id."""

    def record(self, consent: ConsentRecord) -> str: ...

    def for_user(self, user_id: str) -> list[ConsentRecord]: ...

    def consents_page(self, *, before: int | None = None, limit: int = 50) -> list[ConsentListing]:
        """Every user's consents, newest first, ``limit`` of them with an id below ``before``
        (keyset pagination: pass the last id of one page to get the next)."""
        ...

    def for_text(self, text: str, *, before: int | None = None, limit: int = 50) -> list[ConsentListing]:
        """The consents given to exactly this text (by its keyed fingerprint), as :meth:`consents_page`."""
        ...


# -- Records (operations and webhook events) ------------------------------------------------


@dataclass(frozen=True)
class OperationRecord:
    """One operation. Request and result are sealed tokens from the vault, never clear."""

    reference_id: str
    operation: str
    status: str
    created_at: datetime
    updated_at: datetime
    operation_id: str | None = None
    user_id: str | None = None
    sealed_request: str | None = None
    sealed_result: str | None = None


@dataclass(frozen=True)
class WebhookEvent:
    """A received callback. The raw body is sealed (it carries names and amounts)."""

    dedupe_key: str
    sealed_body: str
    received_at: datetime
    state: WebhookState = "received"
    attempts: int = 0
    reference_id: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class CallbackUpdate:
    """What one callback does: the audit event to append, the record to save (``None``: keep)
    and the outcome event its status change emits (``None``: none)."""

    audit: AuditEvent
    record: OperationRecord | None = None
    event: OutcomeEvent | None = None


# -- Outcome events (the transactional outbox) ------------------------------------------------


@dataclass(frozen=True)
class OutcomeEvent:
    """An operation reached a final state: one row of the outbox, written in the transaction
    that changed the status, then delivered to the application's handlers.

    ``key`` (``<reference id>:<type>``) is unique: one event per transition, whoever writes it.
    It carries no personal data: ids, the operation's name, statuses, and ``user_id`` (the
    application's own id for its user, as the caller passed it). Delivery fields: ``state``,
    ``attempts``, ``next_attempt_at``, ``delivered_to`` (names of the handlers that returned),
    ``last_error`` (an exception's type and our own message only).
    """

    key: str
    type: str
    reference_id: str
    operation: str
    old_status: str | None
    new_status: str
    occurred_at: datetime
    operation_id: str | None = None
    user_id: str | None = None
    id: int | None = None
    state: EventState = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    delivered_to: tuple[str, ...] = ()
    last_error: str | None = None
    leased_until: datetime | None = None
    """Set when the writer claims the event as it inserts it (inline delivery right after the
    commit, without a second transaction to claim it)."""

    def as_dict(self) -> dict[str, Any]:
        """The event as JSON-ready values (for a queue, a log line or an API)."""
        return {
            "key": self.key, "type": self.type, "reference_id": self.reference_id, "operation": self.operation,
            "old_status": self.old_status, "new_status": self.new_status, "operation_id": self.operation_id,
            "user_id": self.user_id, "occurred_at": self.occurred_at.isoformat(),
        }


class EventOutbox(Protocol):
    """Delivery state of the outcome events a :class:`RecordStore` wrote (its ``outbox``).

    Events are inserted only by the record store, inside the transaction that changed the
    status; this port claims, finishes and lists them. A claim is a lease: an event claimed by
    a dispatcher that died is claimed again once ``lease`` has passed.
    """

    def claim(self, now: datetime, *, limit: int, lease: float, key: str | None = None,
              types: Collection[str] | None = None) -> list[OutcomeEvent]:
        """Take up to ``limit`` due events (``pending``/``retrying``, ``next_attempt_at`` passed,
        no live lease), oldest first, only of ``types`` when given, or only the event ``key``;
        each is leased for ``lease`` seconds."""
        ...

    def finish(self, key: str, *, now: datetime, delivered_to: tuple[str, ...], error: str | None,
               retry_at: datetime | None) -> None:
        """Record one delivery attempt: ``error`` ``None`` means delivered; else ``retrying``
        at ``retry_at``, or ``dead`` when ``retry_at`` is ``None``. The lease is released."""
        ...

    def get(self, key: str) -> OutcomeEvent | None: ...

    def events(self, *, state: EventState | None = None, after_id: int = 0, limit: int = 100) -> list[OutcomeEvent]:
        """A page of events in id order after ``after_id`` (keyset pagination)."""
        ...

    def requeue(self, key: str, *, now: datetime, all_handlers: bool = False) -> bool:
        """Make an event due again now (``replay``); ``all_handlers`` forgets who had it.
        ``False`` if no event has that key."""
        ...


class RecordStore(Protocol):
    """Operations and webhook events."""

    def save_operation(self, record: OperationRecord) -> None:
        """Insert the record, or merge it field by field into the stored one, atomically.

        No write undoes a newer one: a stored status in :data:`SETTLED_STATUSES` is final, and
        :data:`UNRESOLVED_STATUS` yields only to a settled one (:func:`replaces_status`); a
        record whose status may not replace the stored one is a stale copy (the creating
        call's late answer after a callback) and changes nothing but ``updated_at``; otherwise
        a stored non-null ``operation_id``, ``sealed_result``, ``sealed_request`` or
        ``user_id`` is never replaced by ``None``. ``created_at`` stays the first write's and
        ``updated_at`` never goes backwards.
        """
        ...

    def get_operation(self, reference_id: str) -> OperationRecord | None: ...

    def find_by_operation_id(self, operation_id: str) -> OperationRecord | None: ...

    def add_webhook_event(self, event: WebhookEvent) -> bool:
        """Store a new event; ``False`` (and no change) if its ``dedupe_key`` is known."""
        ...

    def get_webhook_event(self, dedupe_key: str) -> WebhookEvent | None: ...

    def update_webhook_event(
        self, dedupe_key: str, *, state: WebhookState, attempts: int, last_error: str | None
    ) -> None: ...

    def webhook_events(
        self, *, state: WebhookState | None = None, after: str | None = None, limit: int | None = None
    ) -> Iterator[WebhookEvent]:
        """Stored callbacks oldest first (``received_at``, then insertion), optionally in one
        ``state``, starting past the event ``after`` (``KeyError`` if it is not stored), at most
        ``limit`` of them. The SQL store streams them a page at a time."""
        ...

    def apply_callback(
        self,
        dedupe_key: str,
        *,
        reference_id: str | None,
        operation_id: str | None,
        decide: Callable[[OperationRecord], CallbackUpdate],
        audit: AuditSink,
    ) -> CallbackUpdate | None:
        """Apply one stored callback atomically; ``None`` (and no change) if no operation matches.

        Finds the operation by ``reference_id``, else by ``operation_id``, asks ``decide`` what
        to do, and in one transaction saves its ``record``, appends its ``audit`` event to
        ``audit`` and marks the event ``dedupe_key`` processed (attempts + 1, error cleared; an
        event not stored is not created). If any step fails, none of them happened (an audit
        sink on another database cannot join the transaction: it is appended last, so its
        failure still undoes the rest). The update's outcome ``event`` is inserted into the
        outbox in the same transaction (once per key). An event another processor already
        marked processed is not applied again: the update is returned with the outcome
        ``duplicate`` and no outcome event, and nothing is written.
        """
        ...

    def purge_before(self, cutoff: datetime) -> int:
        """Delete operations, webhook events and outcome events older than ``cutoff``; return how many."""
        ...

    @property
    def outbox(self) -> EventOutbox:
        """The outcome events this store writes with the status changes."""
        ...

    def write_ahead(self, record: OperationRecord, *, consent: ConsentRecord | None,
                    consents: ConsentStore) -> None:
        """Before a call is sent: record ``consent`` (if any) in ``consents`` and save the
        ``PENDING`` ``record`` (a store may do both in one round trip when ``consents`` is its own
        database's)."""
        ...

    def record_access(self, audit_event: AuditEvent, *, audit: AuditSink, consent: ConsentRecord | None,
                      consents: ConsentStore) -> None:
        """An answer served without a new operation record (a KYC cache hit): record ``consent``
        (if any) in ``consents`` and append ``audit_event`` to ``audit`` in one transaction (a
        store may do both in one commit when they are its own database's)."""
        ...

    def save_outcome(self, record: OperationRecord, *, audit: AuditSink, audit_event: AuditEvent | None,
                     event: OutcomeEvent | None) -> OutcomeEvent | None:
        """In one transaction: merge ``record`` as :meth:`save_operation` does, append
        ``audit_event`` to ``audit``, and, when the stored status really changed to
        ``record.status``, insert ``event`` (its ``old_status`` set to the stored one) into the
        outbox unless its key is there already. Returns the inserted event (its ``id`` may be left
        ``None``: a store need not read it back), else ``None``."""
        ...

    def unsettled(self, operation: str, *, created_before: datetime, limit: int,
                  after: OperationRecord | None = None) -> list[OperationRecord]:
        """Up to ``limit`` records of ``operation`` still ``PENDING`` and created before the
        cutoff, oldest first (by creation time, then reference id); ``after`` (the last record
        of a previous page) continues from there."""
        ...

    # Reads for operator screens: keyset pages, newest first, ``(row id, value)`` pairs; the
    # next page is ``before=`` the last id of this one. Sealed fields come back sealed.

    def operations_page(
        self, *, before: int | None = None, limit: int = 50, operation: str | None = None
    ) -> list[tuple[int, OperationRecord]]:
        """Operations (only ``operation`` ones when given) with an id below ``before``."""
        ...

    def webhook_events_page(
        self, *, before: int | None = None, limit: int = 50, state: WebhookState | None = None
    ) -> list[tuple[int, WebhookEvent]]:
        """Stored callbacks (only those in ``state`` when given) with an id below ``before``."""
        ...

    def audit_trail(self, reference_id: str, *, limit: int = 200) -> list[AuditEvent]:
        """The audit events of one reference id, oldest first (subjects are masked)."""
        ...


# -- Aadhaar offline e-KYC ------------------------------------------------------------------


@dataclass(frozen=True)
class AadhaarKyc:
    """What a verified offline e-KYC file says. Never the full Aadhaar number.

    Personal fields are left out of ``repr`` so a stray log line cannot leak them.
    """

    aadhaar_last4: str
    generated_at: datetime
    name: str = field(repr=False)
    date_of_birth: str = field(repr=False)
    gender: str = field(repr=False)
    address: Mapping[str, str] = field(repr=False)
    photo_base64: str | None = field(repr=False)
    mobile_verified: bool | None = None
    email_verified: bool | None = None
    signer: str | None = None


class AadhaarVerifier(Protocol):
    """Checks a UIDAI offline e-KYC file (XML or share-code ZIP) and extracts its fields.

    Raises :class:`~decentro_core.errors.AadhaarFileRejected` for any file that is not
    intact, genuine, fresh and opened with the right share code.
    """

    def verify(
        self,
        content: bytes,
        share_code: str,
        *,
        mobile: str | None = None,
        email: str | None = None,
    ) -> AadhaarKyc: ...


# -- all of them ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    """Every port one service runs on; built by the composition root
    (``decentro_adapters.bootstrap``) or by hand from the in-memory versions."""

    gateway: HttpGateway
    cache: Cache
    vault: Vault
    audit: AuditSink
    consents: ConsentStore
    records: RecordStore
    aadhaar_verifier: AadhaarVerifier
    instruments: Instruments = LOG_INSTRUMENTS  # logs, metrics, traces (decentro_core.observability)
