"""Webhook throughput under gunicorn (2 sync workers): the extension's route against a bare one.

Store: PostgreSQL. With two worker processes, SQLite serialises every write on one file lock
(and the audit append takes ``BEGIN IMMEDIATE``), so the comparison would measure SQLite's
lock rather than the route; PostgreSQL is what a multi-process deployment uses.

Each callback is for its own PENDING payment record (created before the run), so every
delivery does the whole job: HMAC check, sealed store, dedupe, audit append, status update.
One delivery in ten is an exact duplicate of an earlier one (dedupe path). Phases alternate
between the two endpoints, each bounded by a count and a time; the figure is the median over
rounds of requests per second, and the ratio is taken round by round.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import requests

from decentro_core.webhooks import sign_body

from .common import BENCH_FERNET_KEY, postgres_database
from .servers import WEBHOOK_PATH, gunicorn, webhook_env

__all__ = ["callback_body", "run_webhooks"]

SECRET = "bench-webhook-secret"
CLIENTS = 8


def callback_body(reference_id: str, *, status: str = "SUCCESS", txn: str | None = None) -> bytes:
    """A Decentro payment callback, camelCase, as the sandbox sends it."""
    payload = {"attempt": 1, "timestamp": datetime.now(timezone.utc).isoformat(),
               "callbackTxnId": txn or uuid.uuid4().hex.upper(), "originalCallbackTxnId": None,
               "transactionStatus": status, "referenceId": reference_id, "decentroTxnId": uuid.uuid4().hex.upper(),
               "transactionMessage": "Bench", "transferType": "UPI", "transactionAmount": 30.0}
    return json.dumps(payload, separators=(",", ":")).encode()


def _seed_payments(database_url: str, count: int) -> list[str]:
    """``count`` PENDING payment records to receive callbacks for (setup, not timed)."""
    from decentro_adapters.vault.fernet import FernetVault
    from decentro_adapters.sql.stores import open_stores
    from decentro_core.ports import OperationRecord

    now = datetime.now(timezone.utc)
    vault = FernetVault([BENCH_FERNET_KEY])
    references = [str(uuid.uuid4()) for _ in range(count)]
    with open_stores(database_url, vault=vault) as stores, stores.database.atomic():
        for ref in references:
            stores.records.save_operation(OperationRecord(reference_id=ref, operation="upi_payment", status="PENDING",
                                                          created_at=now, updated_at=now, operation_id=None))
    return references


class _Load:
    """Bounded load from a pool of threads, one requests session each."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._sessions.append(session)
        return session

    def post(self, url: str, body: bytes) -> bool:
        headers = {"Content-Type": "application/json", "X-Decentro-Signature": sign_body(body, SECRET)}
        response = self._session().post(url, data=body, headers=headers, timeout=30)
        return response.status_code == 200 and response.json().get("response_code") == "CB_S00000"

    def phase(self, pool: ThreadPoolExecutor, url: str, bodies: list[bytes], *, seconds: float) -> tuple[float, int]:
        """Requests per second over at most ``len(bodies)`` requests or ``seconds``; failures."""
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()

        def send(body: bytes) -> bool | None:
            return None if time.perf_counter() > deadline else self.post(url, body)

        outcomes = list(pool.map(send, bodies))
        elapsed = time.perf_counter() - started
        done = [o for o in outcomes if o is not None]
        return len(done) / elapsed, done.count(False)

    def close(self) -> None:
        for session in self._sessions:
            session.close()


def _bodies(references: list[str]) -> list[bytes]:
    bodies: list[bytes] = []
    for i, ref in enumerate(references):
        bodies.append(callback_body(ref))
        if i % 9 == 8:
            bodies.append(bodies[-2])  # an exact redelivery of an earlier callback
    return bodies


def run_webhooks(*, rounds: int, per_phase: int, phase_seconds: float) -> dict[str, Any]:
    """Median requests per second of the webhook route and of the bare route, and their ratio."""
    with postgres_database() as database_url:
        references = _seed_payments(database_url, rounds * per_phase + 50)
        env = webhook_env(database_url=database_url, secret=SECRET, keys=BENCH_FERNET_KEY)
        load = _Load()
        rates: dict[str, list[float]] = {"webhook": [], "bare": []}
        failures = 0
        try:
            with gunicorn(env, workers=2) as server, ThreadPoolExecutor(CLIENTS) as pool:
                urls = {"webhook": server.url + WEBHOOK_PATH, "bare": server.url + "/bare"}
                warm = _bodies(references[-50:])
                for name in ("webhook", "bare"):
                    load.phase(pool, urls[name], warm, seconds=phase_seconds)
                for r in range(rounds):
                    bodies = _bodies(references[r * per_phase:(r + 1) * per_phase])[:per_phase]
                    for name in (("webhook", "bare") if r % 2 == 0 else ("bare", "webhook")):
                        rate, failed = load.phase(pool, urls[name], bodies, seconds=phase_seconds)
                        rates[name].append(rate)
                        failures += failed
        finally:
            load.close()
    ratios = [w / b for w, b in zip(rates["webhook"], rates["bare"])]
    return {"workers": 2, "worker_class": "sync", "store": "postgresql", "clients": CLIENTS, "rounds": rounds,
            "per_phase": per_phase, "phase_seconds": phase_seconds, "failed_requests": failures,
            "webhook_rps": statistics.median(rates["webhook"]), "bare_rps": statistics.median(rates["bare"]),
            "ratio": statistics.median(ratios)}
