"""The fault run: a seeded mix of operations in live mode against a sandbox injecting 20% faults.

Used by ``tests/e2e/test_fault_run.py`` (which asserts the invariants) and by ``python -m
bench`` (which reports the outcome distribution). The sandbox runs in this process so a spy
on its emulator sees every request Decentro would have acted on: reference id, path, purpose
and the answer's status.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from decentro_core.errors import DecentroError

from .common import live_settings, pan_for

__all__ = ["FAULT_KINDS", "FaultRun", "run_fault_mix"]

FAULT_KINDS = ["500", "502", "503", "429", "delay", "reset", "malformed"]
PAYMENT_PATHS = frozenset({"/v2/payments/upi/link", "/v2/payments/collection"})
CLIENT_TIMEOUT = 0.3
SANDBOX_DELAY = 0.6  # a "delay" fault holds the (processed) answer past the client's timeout
MAX_SLEEP = 0.02
WEIGHTS = {"pan": 25, "bank": 15, "ckyc": 15, "payment_link": 15, "payment_collect": 15, "sms": 15}


@dataclass
class Seen:
    """One request the sandbox's emulator handled."""

    method: str
    path: str
    reference_id: str | None
    purpose: str | None
    status: int | None


@dataclass
class Call:
    """One operation we made: its kind, outcome (status or error code) and reference id."""

    kind: str
    outcome: str
    reference_id: str | None
    purpose: str | None = None
    unexpected: str | None = None
    reconciliation: str | None = None


@dataclass
class FaultRun:
    calls: list[Call] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    records: dict[str, Any] = field(default_factory=dict)
    sandbox_stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def distribution(self) -> dict[str, dict[str, int]]:
        table: dict[str, Counter[str]] = {}
        for call in self.calls:
            table.setdefault(call.kind, Counter())[call.outcome] += 1
        return {kind: dict(sorted(c.items())) for kind, c in sorted(table.items())}

    def payment_creations(self) -> tuple[Counter[str], Counter[str]]:
        """Payments the sandbox created (2xx), counted by reference id and by purpose."""
        created = [s for s in self.seen if s.path in PAYMENT_PATHS and s.status is not None and 200 <= s.status < 300]
        return Counter(s.reference_id or "" for s in created), Counter(s.purpose or "" for s in created)

    def summary(self) -> dict[str, Any]:
        by_ref, by_purpose = self.payment_creations()
        outcomes = Counter(c.outcome for c in self.calls)
        return {
            "operations": len(self.calls), "seconds": self.seconds, "distribution": self.distribution(),
            "outcomes": dict(sorted(outcomes.items())),
            "outcome_unknown": sum(c.reconciliation == "OUTCOME_UNKNOWN" for c in self.calls),
            "retry_scheduled": sum(c.reconciliation == "RETRY_SCHEDULED" for c in self.calls),
            "faults_injected": self.sandbox_stats.get("faults_injected", {}),
            "requests_reaching_emulator": len(self.seen),
            "payments_created": sum(by_ref.values()), "max_creations_per_payment": max(by_ref.values(), default=0),
            "unexpected": [c.unexpected for c in self.calls if c.unexpected],
        }


def _spy(sandbox: Any, run: FaultRun) -> None:
    emulator = sandbox.emulator
    handle = emulator.handle

    def spying(method: str, path: str, headers: Any, body: Any) -> Any:
        reply = handle(method, path, headers, body)
        fields = body if isinstance(body, dict) else {}
        status = reply[0] if isinstance(reply, tuple) else None
        run.seen.append(Seen(method, path.split("?")[0], fields.get("reference_id"), fields.get("purpose_message"),
                             status))
        return reply

    emulator.handle = spying


def _operations(service: Any, rng: random.Random) -> Iterator[tuple[str, Callable[[], Any], str | None]]:
    """Endless seeded operations: (kind, call, purpose for payments)."""
    kinds, weights = list(WEIGHTS), list(WEIGHTS.values())
    for i in range(10**9):
        kind = rng.choices(kinds, weights)[0]
        if kind == "pan":
            yield kind, lambda i=i: service.verify_pan(pan_for(i)), None
        elif kind == "bank":
            yield kind, lambda: service.verify_bank("123456789011", "SBIN0001077"), None
        elif kind == "ckyc":
            yield kind, lambda: service.fetch_ckyc("ABCDE1234A"), None
        elif kind == "sms":
            yield kind, lambda: service.send_sms("9876543210", "Your sandbox code is 4321"), None
        else:
            purpose = f"Fault run order {i}"
            customer = {"name": "Diya Testkumari", "phone": "9876543210", "email": "diya@example.com"}
            if kind == "payment_collect":
                customer["upi_id"] = "charles.babbage@okhdfc"
            payload = {"amount": rng.choice([10, 20, 30, 42]), "customer_details": customer, "purpose": purpose}
            yield kind, lambda p=payload: service.initiate_payment(p), purpose


def _one(kind: str, call: Callable[[], Any], purpose: str | None) -> Call:
    try:
        envelope = call()
    except DecentroError as exc:
        return Call(kind, f"raised:{exc.code}", exc.request_id, purpose)
    except Exception as exc:  # noqa: BLE001 - an untyped failure is what the run looks for
        return Call(kind, "untyped", None, purpose, unexpected=f"{type(exc).__name__}")
    status = envelope.get("status")
    if status not in ("SUCCESS", "FAILURE", "PENDING"):
        return Call(kind, f"bad-status:{status}", None, purpose, unexpected=f"status {status!r}")
    data = envelope["data"]
    return Call(kind, status, data.get("reference_id"), purpose, reconciliation=data.get("reconciliation"))


@contextmanager
def _service(url: str, folder: str) -> Iterator[Any]:
    from decentro_adapters.bootstrap import build
    from decentro_core.memory import MemoryCache

    settings = live_settings(url, database_url="sqlite:///" + os.path.join(folder, "faults.sqlite3"),
                             timeout=CLIENT_TIMEOUT, connect_timeout=1.0, max_retries=3,
                             backoff_base=0.005, backoff_max=0.02)
    # Sleeps are capped to keep the run short; the number of attempts is unchanged.
    with build(settings, cache=MemoryCache(), sleep=lambda s: time.sleep(min(s, MAX_SLEEP))) as system:
        yield system.service


def run_fault_mix(*, operations: int = 1000, seed: int = 20240601, rate: float = 0.2) -> FaultRun:
    """Run ``operations`` operations (a payment is followed by a status check) under faults."""
    from decentro_sandbox.sandbox import start_sandbox

    run = FaultRun()
    rng = random.Random(seed)
    plan = {"random": {"rate": rate, "kinds": FAULT_KINDS, "seed": seed}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="decentro-faults-") as folder, \
            start_sandbox(faults=plan, timeout_delay=SANDBOX_DELAY, seed=seed) as sandbox, \
            _service(sandbox.url, folder) as service:
        _spy(sandbox, run)
        for kind, call, purpose in _operations(service, rng):
            if len(run.calls) >= operations:
                break
            result = _one(kind, call, purpose)
            run.calls.append(result)
            if kind.startswith("payment") and result.reference_id and not result.outcome.startswith("raised"):
                if len(run.calls) < operations:
                    ref = result.reference_id
                    run.calls.append(_one("payment_status", lambda r=ref: service.get_payment_status(r), None))
        service.wait_for_retries(60.0)  # collect requests retried off the caller's thread settle first
        run.sandbox_stats = sandbox.stats()
        run.records = {ref: service.ports.records.get_operation(ref) for ref in _all_references(run)}
        run.seconds = time.perf_counter() - started
    return run


def _all_references(run: FaultRun) -> set[str]:
    refs = {s.reference_id for s in run.seen if s.reference_id}
    refs |= {c.reference_id for c in run.calls if c.reference_id}
    return refs
