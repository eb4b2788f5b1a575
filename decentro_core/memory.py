"""In-memory implementations of every port: the embedded defaults and the test fakes.

They keep state in the process only, are thread-safe, and behave like the real adapters
(the contract tests in ``tests/adapters`` run against both). :class:`MemoryVault` is a
tokenising vault: it hands out random tokens and keeps the plaintext in process memory, so
nothing sealed through it is ever written anywhere in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from .consents import MemoryConsentStore  # in its own module; still importable from here
from .events import transition
from .memory_audit import MemoryAuditSink
from .errors import ConfigurationError, StoreError
from .ports import (
    AadhaarKyc,
    Cache,
    ConsentStore,
    HttpGateway,
    Ports,
    RecordStore,
    Vault,
    EventState,
    OutcomeEvent,
    replaces_status,
    AadhaarVerifier,
    AuditEvent,
    AuditSink,
    CallbackUpdate,
    ConsentRecord,
    OperationRecord,
    WebhookEvent,
    WebhookState,
)

__all__ = [
    "KeyedLocks",
    "MemoryAuditSink",
    "MemoryCache",
    "MemoryConsentStore",
    "MemoryOutbox",
    "MemoryRecordStore",
    "MemoryVault",
    "memory_ports",
]


class MemoryCache:
    """A bounded dict with expiry times and per-key locks (single flight within one process).

    At most ``max_entries`` values are kept: setting one more evicts the least recently used
    (a later miss, nothing lost). Expired values go when they are read or evicted. A lock's entry
    lives only while someone holds or waits for it, so distinct keys do not pile up.
    """

    DEFAULT_MAX_ENTRIES = 4096

    def __init__(self, *, monotonic: Callable[[], float] = time.monotonic,
                 max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._locks = KeyedLocks()
        self._guard = threading.Lock()
        self._monotonic = monotonic
        self.max_entries = max_entries

    @property
    def size(self) -> int:
        """Values held now (expired ones included until they are read or evicted)."""
        return len(self._items)

    @property
    def lock_entries(self) -> int:
        """Locks held or waited for right now (the others were dropped on release)."""
        return len(self._locks)

    def get(self, key: str) -> bytes | None:
        with self._guard:
            item = self._items.get(key)
            if item is None:
                return None
            expires, value = item
            if expires <= self._monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, *, ttl: int) -> None:
        with self._guard:
            self._items[key] = (self._monotonic() + ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def delete(self, key: str) -> None:
        with self._guard:
            self._items.pop(key, None)

    def lock(self, key: str, *, timeout: float) -> AbstractContextManager[bool]:
        return self._locks.hold(key, timeout=timeout)


class KeyedLocks:
    """One ``threading.Lock`` per key, kept only while someone holds or waits for it.

    >>> locks = KeyedLocks()
    >>> with locks.hold("k", timeout=1) as won:
    ...     won
    True
    >>> len(locks)
    0
    """

    def __init__(self) -> None:
        self._entries: dict[str, _LockEntry] = {}
        self._guard = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def users(self, key: str) -> int:
        """How many callers hold or wait for ``key``'s lock."""
        entry = self._entries.get(key)
        return 0 if entry is None else entry.users

    @contextmanager
    def hold(self, key: str, *, timeout: float) -> Iterator[bool]:
        """Wait up to ``timeout`` seconds for ``key``'s lock; yield whether it was won."""
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _LockEntry()
            entry.users += 1
        won = entry.lock.acquire(timeout=max(timeout, 0.0))
        try:
            yield won
        finally:
            if won:
                entry.lock.release()
            with self._guard:
                entry.users -= 1
                if entry.users == 0:
                    del self._entries[key]


class _LockEntry:
    """One key's lock and how many callers hold it or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class MemoryVault:
    """Tokenising vault: random tokens out, plaintext kept in process memory only."""

    def __init__(self, *, hash_key: bytes | None = None) -> None:
        self._secrets: dict[str, bytes] = {}
        self._hash_key = hash_key or secrets.token_bytes(32)  # a fixed one: repeatable fingerprints (tests)
        self._guard = threading.Lock()

    def seal(self, plaintext: bytes) -> str:
        token = "mem:" + secrets.token_urlsafe(24)
        with self._guard:
            self._secrets[token] = plaintext
        return token

    def open(self, token: str) -> bytes:
        with self._guard:
            try:
                return self._secrets[token]
            except KeyError:
                raise StoreError("Sealed value not found in this process's vault") from None

    def fingerprint(self, value: str) -> str:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()




class MemoryOutbox:
    """The outcome events a :class:`MemoryRecordStore` writes, shared with it (one lock)."""

    def __init__(self, guard: threading.Lock) -> None:
        self.rows: dict[str, OutcomeEvent] = {}
        self._guard = guard
        self._next_id = 1
        self._leased: dict[str, datetime] = {}

    def insert(self, event: OutcomeEvent) -> OutcomeEvent | None:
        """Add ``event`` unless its key is known (the caller holds the lock)."""
        if event.key in self.rows:
            return None
        stored = replace(event, id=self._next_id, leased_until=None)
        self._next_id += 1
        self.rows[event.key] = stored
        if event.leased_until is not None:
            self._leased[event.key] = event.leased_until
        return replace(stored, leased_until=event.leased_until)

    def claim(self, now: datetime, *, limit: int, lease: float, key: str | None = None,
              types: Collection[str] | None = None) -> list[OutcomeEvent]:
        with self._guard:
            due = [
                e for e in sorted(self.rows.values(), key=lambda e: e.id or 0)
                if e.state in ("pending", "retrying") and (e.next_attempt_at is None or e.next_attempt_at <= now)
                and self._leased.get(e.key, now) <= now and (key is None or e.key == key)
                and (types is None or e.type in types)
            ][:limit]
            for e in due:
                self._leased[e.key] = now + timedelta(seconds=lease)
            return [replace(e, leased_until=self._leased[e.key]) for e in due]

    def finish(self, key: str, *, now: datetime, delivered_to: tuple[str, ...], error: str | None,
               retry_at: datetime | None) -> None:
        with self._guard:
            event = self.rows.get(key)
            if event is None:
                raise StoreError("No outcome event with that key")
            self._leased.pop(key, None)
            state: EventState = "delivered" if error is None else ("retrying" if retry_at else "dead")
            self.rows[key] = replace(event, state=state, attempts=event.attempts + 1, delivered_to=delivered_to,
                                     last_error=error, next_attempt_at=retry_at,
                                     delivered_at=now if error is None else event.delivered_at)

    def get(self, key: str) -> OutcomeEvent | None:
        with self._guard:
            return self.rows.get(key)

    def events(self, *, state: EventState | None = None, after_id: int = 0, limit: int = 100) -> list[OutcomeEvent]:
        with self._guard:
            chosen = [e for e in self.rows.values() if (e.id or 0) > after_id and (state is None or e.state == state)]
        return sorted(chosen, key=lambda e: e.id or 0)[:limit]

    def requeue(self, key: str, *, now: datetime, all_handlers: bool = False) -> bool:
        with self._guard:
            event = self.rows.get(key)
            if event is None:
                return False
            self._leased.pop(key, None)
            self.rows[key] = replace(event, state="pending", next_attempt_at=now,
                                     delivered_to=() if all_handlers else event.delivered_to)
            return True


class MemoryRecordStore:
    """``audit``: the sink whose events :meth:`audit_trail` reads (the SQL store reads its own
    database's table); without one the trail is empty."""

    def __init__(self, *, audit: MemoryAuditSink | None = None) -> None:
        self.operations: dict[str, OperationRecord] = {}
        self.events: dict[str, WebhookEvent] = {}
        self.audit = audit
        self._ids: dict[tuple[str, str], int] = {}  # ("op" | "hook", key) -> row id, as SQL's
        self._next_id = itertools.count(1)
        self._guard = threading.Lock()
        self._outbox = MemoryOutbox(self._guard)

    @property
    def outbox(self) -> MemoryOutbox:
        return self._outbox

    def _row_id(self, table: str, key: str) -> int:
        """The row id of ``key``, given on its first write (callers hold the lock)."""
        return self._ids.setdefault((table, key), next(self._next_id))

    def save_operation(self, record: OperationRecord) -> None:
        """The SQL upsert's field-wise merge (``RecordStore.save_operation``), under the lock."""
        with self._guard:
            self._merge(record)

    def write_ahead(self, record: OperationRecord, *, consent: ConsentRecord | None,
                    consents: ConsentStore) -> None:
        if consent is not None:
            consents.record(consent)
        self.save_operation(record)

    def record_access(self, audit_event: AuditEvent, *, audit: AuditSink, consent: ConsentRecord | None,
                      consents: ConsentStore) -> None:
        with self._guard:
            if consent is not None:
                consents.record(consent)
            audit.append(audit_event)

    def save_outcome(self, record: OperationRecord, *, audit: AuditSink, audit_event: AuditEvent | None,
                     event: OutcomeEvent | None) -> OutcomeEvent | None:
        with self._guard:
            stored = self.operations.get(record.reference_id)
            if audit_event is not None:
                audit.append(audit_event)  # first: if it raises, nothing below has changed
            self._merge(record)
            return self._emit(stored, record, event)

    def _emit(self, stored: OperationRecord | None, record: OperationRecord,
              event: OutcomeEvent | None) -> OutcomeEvent | None:
        """Insert ``event`` when ``record``'s status replaced a different stored one (lock held)."""
        emitted = transition(event, stored.status if stored is not None else None, record.status)
        return None if emitted is None else self._outbox.insert(emitted)

    def _merge(self, record: OperationRecord) -> None:
        stored = self.operations.get(record.reference_id)
        if stored is not None and not replaces_status(stored.status, record.status):
            # A write that may not replace the stored status is a stale copy: it changes no
            # value the stored record has, and only fills what is still missing.
            record = replace(
                stored,
                updated_at=max(stored.updated_at, record.updated_at),
                operation_id=stored.operation_id or record.operation_id,
                user_id=stored.user_id or record.user_id,
                sealed_request=stored.sealed_request or record.sealed_request,
                sealed_result=stored.sealed_result or record.sealed_result,
            )
        elif stored is not None:
            record = replace(  # a non-null field is never replaced by None
                record,
                created_at=stored.created_at,
                updated_at=max(stored.updated_at, record.updated_at),
                operation_id=stored.operation_id if record.operation_id is None else record.operation_id,
                user_id=stored.user_id if record.user_id is None else record.user_id,
                sealed_request=stored.sealed_request if record.sealed_request is None else record.sealed_request,
                sealed_result=stored.sealed_result if record.sealed_result is None else record.sealed_result,
            )
        self._row_id("op", record.reference_id)
        self.operations[record.reference_id] = record

    def get_operation(self, reference_id: str) -> OperationRecord | None:
        with self._guard:
            return self.operations.get(reference_id)

    def find_by_operation_id(self, operation_id: str) -> OperationRecord | None:
        with self._guard:
            return next((r for r in self.operations.values() if r.operation_id == operation_id), None)

    def add_webhook_event(self, event: WebhookEvent) -> bool:
        with self._guard:
            if event.dedupe_key in self.events:
                return False
            self._row_id("hook", event.dedupe_key)
            self.events[event.dedupe_key] = event
            return True

    def get_webhook_event(self, dedupe_key: str) -> WebhookEvent | None:
        with self._guard:
            return self.events.get(dedupe_key)

    def update_webhook_event(
        self, dedupe_key: str, *, state: WebhookState, attempts: int, last_error: str | None
    ) -> None:
        with self._guard:
            event = self.events.get(dedupe_key)
            if event is None:
                raise StoreError("No webhook event with that dedupe key")
            self.events[dedupe_key] = replace(event, state=state, attempts=attempts, last_error=last_error)

    def webhook_events(
        self, *, state: WebhookState | None = None, after: str | None = None, limit: int | None = None
    ) -> Iterator[WebhookEvent]:
        with self._guard:
            if after is not None and after not in self.events:
                raise KeyError(after)
            order = {key: n for n, key in enumerate(self.events)}  # insertion order breaks ties, like row ids
            listed = sorted(self.events.values(), key=lambda e: (e.received_at, order[e.dedupe_key]))
        if after is not None:
            listed = listed[[e.dedupe_key for e in listed].index(after) + 1:]
        chosen = [e for e in listed if state is None or e.state == state]
        return iter(chosen if limit is None else chosen[:max(limit, 0)])

    def apply_callback(
        self,
        dedupe_key: str,
        *,
        reference_id: str | None,
        operation_id: str | None,
        decide: Callable[[OperationRecord], CallbackUpdate],
        audit: AuditSink,
    ) -> CallbackUpdate | None:
        with self._guard:
            record = self.operations.get(reference_id) if reference_id else None
            if record is None and operation_id:
                record = next((r for r in self.operations.values() if r.operation_id == operation_id), None)
            if record is None:
                return None
            update = decide(record)
            stored = self.events.get(dedupe_key)
            if stored is not None and stored.state == "processed":  # applied by another processor
                return CallbackUpdate(audit=replace(update.audit, outcome="duplicate"))
            audit.append(update.audit)  # first: if it raises, nothing below has changed
            emitted = None
            if update.record is not None:
                self._merge(update.record)
                emitted = self._emit(record, update.record, update.event)
            event = self.events.get(dedupe_key)
            if event is not None:
                self.events[dedupe_key] = replace(event, state="processed", attempts=event.attempts + 1, last_error=None)
            return replace(update, event=emitted)

    def unsettled(self, operation: str, *, created_before: datetime, limit: int,
                  after: OperationRecord | None = None) -> list[OperationRecord]:
        with self._guard:
            found = sorted((r for r in self.operations.values() if r.operation == operation
                            and r.status == "PENDING" and r.created_at < created_before
                            and (after is None or (r.created_at, r.reference_id) > (after.created_at, after.reference_id))),
                           key=lambda r: (r.created_at, r.reference_id))
        return found[:limit]

    def purge_before(self, cutoff: datetime) -> int:
        with self._guard:
            old_ops = [k for k, r in self.operations.items() if r.updated_at < cutoff]
            old_events = [k for k, e in self.events.items() if e.received_at < cutoff]
            old_outcomes = [k for k, e in self._outbox.rows.items() if e.occurred_at < cutoff]
            for key in old_ops:
                del self.operations[key]
                self._ids.pop(("op", key), None)
            for key in old_events:
                del self.events[key]
                self._ids.pop(("hook", key), None)
            for key in old_outcomes:
                del self._outbox.rows[key]
                self._outbox._leased.pop(key, None)
            return len(old_ops) + len(old_events) + len(old_outcomes)

    def operations_page(
        self, *, before: int | None = None, limit: int = 50, operation: str | None = None
    ) -> list[tuple[int, OperationRecord]]:
        with self._guard:
            rows = [(self._ids[("op", k)], r) for k, r in self.operations.items()
                    if operation is None or r.operation == operation]
        return _page(rows, before, limit)

    def webhook_events_page(
        self, *, before: int | None = None, limit: int = 50, state: WebhookState | None = None
    ) -> list[tuple[int, WebhookEvent]]:
        with self._guard:
            rows = [(self._ids[("hook", k)], e) for k, e in self.events.items() if state is None or e.state == state]
        return _page(rows, before, limit)

    def audit_trail(self, reference_id: str, *, limit: int = 200) -> list[AuditEvent]:
        if self.audit is None:
            return []
        return [e for e in self.audit.events if e.reference_id == reference_id][:limit]


_Row = TypeVar("_Row")


def _page(rows: list[tuple[int, _Row]], before: int | None, limit: int) -> list[tuple[int, _Row]]:
    """Newest first, ids below ``before``, at most ``limit``."""
    chosen = sorted((r for r in rows if before is None or r[0] < before), key=lambda r: r[0], reverse=True)
    return chosen[:limit]


class _NoAadhaarVerifier:
    """Stands in where no Aadhaar verifier was given: says so instead of verifying anything."""

    def verify(self, content: bytes, share_code: str, *, mobile: str | None = None,
               email: str | None = None) -> AadhaarKyc:
        raise ConfigurationError("No Aadhaar verifier is configured for this service")


def memory_ports(gateway: HttpGateway, *, cache: Cache | None = None, vault: Vault | None = None,
                 audit: AuditSink | None = None, consents: ConsentStore | None = None,
                 records: RecordStore | None = None, aadhaar_verifier: AadhaarVerifier | None = None) -> Ports:
    """Every port in memory around ``gateway`` (scripts, tests); any of them may be given."""
    audit, vault = audit or MemoryAuditSink(), vault or MemoryVault()
    default_records = MemoryRecordStore(audit=audit if isinstance(audit, MemoryAuditSink) else None)
    return Ports(
        gateway=gateway, cache=cache or MemoryCache(), vault=vault, audit=audit,
        consents=consents or MemoryConsentStore(vault=vault), records=records or default_records,
        aadhaar_verifier=aadhaar_verifier or _NoAadhaarVerifier(),
    )
