"""Fakes and builders shared by the core's unit tests.

Everything here records what happened so tests assert on state: the gateways keep the
requests they received, the sleep keeps the delays it was asked for, the cache keeps the keys
it was given. Nothing sleeps for real and nothing leaves the process.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from decentro_adapters.aadhaar.mock import MockAadhaarVerifier
from decentro_sandbox.core import DecentroEmulator, SeededIds
from decentro_adapters.gateway.mock import MockGateway
from decentro_core import BlockingDecentroService, Settings
from decentro_core.memory import MemoryAuditSink, MemoryCache, MemoryConsentStore, MemoryRecordStore, MemoryVault
from decentro_core.ports import GatewayRequest, GatewayResponse, OperationRecord, Ports
from decentro_core.validation import is_valid_aadhaar

__all__ = [
    "NOW",
    "FakeMonotonic",
    "Harness",
    "InspectingGateway",
    "PinnedClock",
    "RecordingCache",
    "RecordingGateway",
    "RecordingSleep",
    "ScriptedGateway",
    "SequentialIds",
    "aadhaar_ending",
    "answer",
    "build",
    "pan_found",
    "payment_created",
]

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


class PinnedClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class FakeMonotonic:
    """A monotonic clock for :class:`MemoryCache` expiry, moved by hand."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


class SequentialIds:
    """Reference ids ``ref-0001``, ``ref-0002``, ... (thread-safe)."""

    def __init__(self, prefix: str = "ref") -> None:
        self.prefix = prefix
        self.issued: list[str] = []
        self._guard = threading.Lock()

    def __call__(self) -> str:
        with self._guard:
            self.issued.append(f"{self.prefix}-{len(self.issued) + 1:04d}")
            return self.issued[-1]


class RecordingSleep:
    """Keeps the delays the retry policy asked for; never sleeps, but moves the fake clock."""

    def __init__(self, monotonic: FakeMonotonic | None = None) -> None:
        self.delays: list[float] = []
        self.monotonic = monotonic

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.monotonic is not None:
            self.monotonic.advance(seconds)


class RecordingCache(MemoryCache):
    """A :class:`MemoryCache` that remembers every key and value it was given."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.written: dict[str, bytes] = {}

    def set(self, key: str, value: bytes, *, ttl: int) -> None:
        self.written[key] = value
        super().set(key, value, ttl=ttl)


Answer = GatewayResponse | BaseException | Callable[[GatewayRequest], GatewayResponse]


def answer(status: int = 200, body: Mapping[str, Any] | None = None, **headers: str) -> GatewayResponse:
    return GatewayResponse(status_code=status, body=dict(body or {}), headers=dict(headers))


def pan_found(name: str = "Aarav Sandboxwala", txn: str = "TXN-PAN-1") -> GatewayResponse:
    return answer(200, {"decentroTxnId": txn, "status": "SUCCESS", "responseCode": "S00000", "kycStatus": "SUCCESS",
                        "kycResult": {"idNumber": "ABCDE1234F", "idStatus": "VALID", "name": name}})


def payment_created(txn: str = "TXN-PAY-1", status: str = "PENDING") -> GatewayResponse:
    return answer(200, {"decentroTxnId": txn, "status": "SUCCESS", "responseCode": "S00000",
                        "responseKey": "success_payment_link_created",
                        "data": {"transactionId": txn, "transactionStatus": status}})


class ScriptedGateway:
    """Answers each request with the next scripted answer: a response, an exception to raise,
    or a function of the request. The last answer repeats. Records every request."""

    def __init__(self, answers: Iterable[Answer], *, pause: float = 0.0) -> None:
        self.answers = list(answers)
        self.requests: list[GatewayRequest] = []
        self.pause = pause
        self._guard = threading.Lock()

    def send(self, request: GatewayRequest) -> GatewayResponse:
        with self._guard:
            self.requests.append(request)
            scripted = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if self.pause:
            time.sleep(self.pause)  # a slow upstream, so concurrent callers overlap
        if isinstance(scripted, BaseException):
            raise scripted
        if callable(scripted):
            return scripted(request)
        return scripted


class RecordingGateway:
    """Wraps a gateway (the emulator's, by default) and keeps every request sent through it."""

    def __init__(self, inner: Any | None = None) -> None:
        self.inner = inner or MockGateway(DecentroEmulator(new_id=SeededIds(7), clock=PinnedClock()))
        self.requests: list[GatewayRequest] = []

    @property
    def emulator(self) -> DecentroEmulator:
        return self.inner.emulator  # type: ignore[no-any-return]

    def send(self, request: GatewayRequest) -> GatewayResponse:
        self.requests.append(request)
        return self.inner.send(request)  # type: ignore[no-any-return]


class InspectingGateway(RecordingGateway):
    """Looks the request's reference id up in the record store at the moment it is sent."""

    def __init__(self, records: MemoryRecordStore, inner: Any | None = None) -> None:
        super().__init__(inner)
        self.records = records
        self.seen: list[OperationRecord | None] = []

    def send(self, request: GatewayRequest) -> GatewayResponse:
        self.seen.append(self.records.get_operation(request.reference_id))
        return super().send(request)


@dataclass
class Harness:
    """A service on in-memory ports, with handles on everything the tests inspect."""

    service: BlockingDecentroService
    gateway: Any
    cache: RecordingCache
    vault: MemoryVault
    audit: MemoryAuditSink
    consents: MemoryConsentStore
    records: MemoryRecordStore
    clock: PinnedClock
    ids: SequentialIds
    sleep: RecordingSleep
    monotonic: FakeMonotonic
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, reference_id: str) -> OperationRecord:
        found = self.records.get_operation(reference_id)
        assert found is not None, f"no record for {reference_id}"
        return found

    def opened(self, token: str | None) -> Any:
        assert token is not None
        return json.loads(self.vault.open(token))


def build(gateway: Any | None = None, *, settings: Settings | None = None, records: MemoryRecordStore | None = None,
          cache: RecordingCache | None = None, instruments: Any | None = None, **setting_overrides: Any) -> Harness:
    """A :class:`BlockingDecentroService` in mock mode over in-memory ports.

    ``gateway`` defaults to a :class:`RecordingGateway` over the emulator.
    """
    clock, monotonic = PinnedClock(), FakeMonotonic()
    harness = Harness(
        service=None,  # type: ignore[arg-type]
        gateway=gateway if gateway is not None else RecordingGateway(),
        cache=cache or RecordingCache(monotonic=monotonic), vault=MemoryVault(hash_key=b"harness-fingerprint-key"),
        audit=MemoryAuditSink(),
        consents=MemoryConsentStore(), records=records or MemoryRecordStore(), clock=clock,
        ids=SequentialIds(), sleep=RecordingSleep(monotonic), monotonic=monotonic,
    )
    ports = Ports(gateway=harness.gateway, cache=harness.cache, vault=harness.vault, audit=harness.audit,
                  consents=harness.consents, records=harness.records,
                  aadhaar_verifier=MockAadhaarVerifier(now=clock),
                  **({"instruments": instruments} if instruments is not None else {}))
    harness.service = BlockingDecentroService(
        settings or Settings(use_mocks=True, **setting_overrides), ports,
        clock=clock, new_reference_id=harness.ids, sleep=harness.sleep, monotonic=monotonic,
    )
    return harness


def aadhaar_ending(last4: str, *, start: int = 2345678) -> str:
    """A synthetic 12-digit number with a valid Verhoeff check digit ending in ``last4``.

    The check digit is the last digit, so only the prefix varies; the search is bounded.
    """
    for middle in range(start, start + 100_000):
        candidate = f"{middle:07d}0{last4}"
        if is_valid_aadhaar(candidate):
            return candidate
    raise AssertionError(f"no Verhoeff-valid number ending in {last4} near {start}")
