"""Callbacks under duplicated, reordered and failing deliveries, and a receiver killed mid-processing.

The sandbox delivers real signed callbacks over HTTP to ``bench/webhook_app.py`` under
gunicorn (2 workers x 4 threads) on PostgreSQL. Three phases:

1. normal: 12 payments settle at once; every callback is sent twice and in swapped pairs;
2. failing deliveries: the receiver is killed (SIGKILL), 4 payments settle, the first
   attempts find nobody, and the sandbox's retries reach a restarted receiver;
3. killed mid-processing: the receiver sleeps before applying a callback
   (``BENCH_WEBHOOK_SLEEP``), 4 payments settle, it is killed with events ``received``, then
   restarted and ``flask decentro webhooks replay --all`` runs.

Afterwards every distinct callback is one stored event, processed, applied exactly once.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.common import BENCH_FERNET_KEY, live_settings  # noqa: E402
from bench.servers import WEBHOOK_PATH, free_port, gunicorn, webhook_env  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.postgres]

SECRET = "webhook-fault-run-secret"
CUSTOMER = {"name": "Meera Fixturekar", "phone": "9876543210", "email": "meera@example.com"}


def _wait(condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _deliveries_settled(sandbox: Any) -> bool:
    s = sandbox.stats()["callbacks"]
    return s["queued"] > 0 and s["delivered"] + s["failed"] + s["skipped"] == s["queued"]


def _pay(service: Any, amount: int, n: int) -> list[dict[str, Any]]:
    return [service.initiate_payment({"amount": amount, "customer_details": CUSTOMER, "purpose": f"Hook order {i}"})
            for i in range(n)]


def _settle(sandbox: Any, service: Any, payments: list[dict[str, Any]], status: str) -> None:
    for payment in payments:
        record = service.ports.records.get_operation(payment["data"]["reference_id"])
        sandbox.emulator.settle_payment(record.operation_id, status)


def _replay(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "flask", "--app", "bench.webhook_app:create_app", "decentro", "webhooks",
               "replay", "--all"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_every_callback_is_processed_exactly_once_after_duplicates_failures_a_kill_and_replay(postgres_url, tmp_path):
    from decentro_adapters.bootstrap import build
    from decentro_adapters.emulator.sandbox import start_sandbox
    from decentro_core.memory import MemoryCache

    port = free_port()
    env = webhook_env(database_url=postgres_url, secret=SECRET, keys=BENCH_FERNET_KEY,
                      DECENTRO_WEBHOOK_STALE_AFTER="1")
    log = str(tmp_path / "gunicorn.log")
    with start_sandbox(callback_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}", callback_secret=SECRET,
                       duplicate_callbacks=True, reorder_callbacks=True, callback_backoff=1.0) as sandbox:
        sandbox.callbacks.timeout = 0.5  # a receiver stuck in processing must not stall delivery
        with build(live_settings(sandbox.url, database_url=postgres_url), cache=MemoryCache()) as system:
            service = system.service
            # 1. normal deliveries, each duplicated, in swapped pairs
            with gunicorn(env, workers=2, threads=4, port=port, log_path=log) as receiver:
                settled = _pay(service, 10, 6) + _pay(service, 20, 6)
                pending = _pay(service, 30, 8)
                _wait(lambda: _deliveries_settled(sandbox), timeout=30, what="the first deliveries")
                receiver.kill()
            # 2. failing deliveries: nobody listens for the first attempts
            _settle(sandbox, service, pending[:4], "SUCCESS")
            with gunicorn(env, workers=2, threads=4, port=port, log_path=log):
                _wait(lambda: _deliveries_settled(sandbox), timeout=30, what="the retried deliveries")
            # 3. killed while processing
            sandbox.callbacks.configure(backoff=0.2)
            slow_env = {**env, "BENCH_WEBHOOK_SLEEP": "60"}
            with gunicorn(slow_env, workers=2, threads=4, port=port, log_path=log) as receiver:
                _settle(sandbox, service, pending[4:], "FAILURE")
                _wait(lambda: len(list(service.ports.records.webhook_events(state="received"))) == 4,
                      timeout=30, what="four callbacks stuck in processing")
                receiver.kill()
            stuck = {e.dedupe_key for e in service.ports.records.webhook_events(state="received")}
            with gunicorn(env, workers=2, threads=4, port=port, log_path=log):
                _wait(lambda: _deliveries_settled(sandbox), timeout=30, what="the last deliveries")
                time.sleep(1.2)  # past DECENTRO_WEBHOOK_STALE_AFTER: the stuck events are replayable
                replay = _replay(env)
            stats = sandbox.stats()
            events = list(service.ports.records.webhook_events())
            audit = service.ports.audit.events
            payments = settled + pending
            records = {p["data"]["reference_id"]: service.ports.records.get_operation(p["data"]["reference_id"])
                       for p in payments}

    assert replay.returncode == 0, replay.stderr[-2000:]
    assert "replayed 4, still failing 0" in replay.stderr
    callbacks = stats["callbacks"]
    assert stats["emulator"]["terminal_payments"] == 20
    assert callbacks["duplicates"] > 0 and callbacks["attempted"] > callbacks["delivered"] + callbacks["duplicates"]
    assert len(stuck) == 4
    # one stored event per distinct callback, each processed
    assert len(events) == 20 and {e.reference_id for e in events} == set(records)
    assert Counter(e.state for e in events) == {"processed": 20}
    # applied exactly once each: one callback audit event per payment
    applied = Counter(a.reference_id for a in audit if a.action == "upi_payment.callback")
    assert applied == {ref: 1 for ref in records}
    expected = {p["data"]["reference_id"]: s for p, s in
                zip(payments, ["SUCCESS"] * 6 + ["FAILURE"] * 6 + ["SUCCESS"] * 4 + ["FAILURE"] * 4)}
    assert {ref: r.status for ref, r in records.items()} == expected
