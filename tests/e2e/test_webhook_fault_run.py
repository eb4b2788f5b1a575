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

Nothing here depends on how fast the machine is. Each step waits on a state with a generous
limit: the deliverer idle (``CallbackDeliverer.wait_idle``), an attempt counted, events
stored in a state. Each phase pins the deliverer's options so the outcome follows from the
order of events, not from a race: a callback POST waits up to ``WAIT`` for its answer (so a
slow receiver is not a failed attempt); a held callback waits for its partner; phase 2
retries long enough to outlast any restart; phase 3 makes one attempt per callback, so the
interrupted events are left to the replay and to nothing else. The replay's expected count is
read from the store: the events left ``received`` or ``failed`` just before it runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
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
WAIT = 120.0  # seconds: the limit for any one state to be reached on a busy machine
STALE_AFTER = 1  # DECENTRO_WEBHOOK_STALE_AFTER (seconds) for the receiver and the replay
RETRIES = 10  # phase 2: attempts 0.25 s apart, doubling: the last comes > 2 minutes after the first
HUNG_AFTER = 1.0  # phase 3: a POST unanswered this long is given up (the receiver sleeps for an hour)


def _wait(condition: Callable[[], Any], *, what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT}s waiting for {what}")
        time.sleep(0.1)
    return value


def _idle(sandbox: Any, what: str) -> Counter[str]:
    """Wait until every queued callback is delivered or given up; the deliverer's counts then."""
    if not sandbox.callbacks.wait_idle(WAIT):
        raise AssertionError(f"timed out after {WAIT}s waiting for {what}: {sandbox.stats()['callbacks']}")
    return Counter(sandbox.stats()["callbacks"])


def _pay(service: Any, amount: int, n: int) -> list[str]:
    return [service.initiate_payment({"amount": amount, "customer_details": CUSTOMER, "purpose": f"Hook order {i}"})
            ["data"]["reference_id"] for i in range(n)]


def _settle(sandbox: Any, service: Any, references: Iterable[str], status: str) -> None:
    for reference in references:
        sandbox.emulator.settle_payment(service.records.get_operation(reference).operation_id, status)


def _events(service: Any, references: Iterable[str]) -> list[Any]:
    wanted = set(references)
    return [e for e in service.records.webhook_events() if e.reference_id in wanted]


def _replay(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "flask", "--app", "bench.webhook_app:create_app", "decentro", "webhooks",
               "replay", "--all"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT)


def _stale(events: Iterable[Any]) -> bool:
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=STALE_AFTER + 0.5)
    return all(e.received_at <= cutoff for e in events)


def _first_attempts_failed(sandbox: Any, before: Counter[str]) -> bool:
    # Attempt 2 is only counted after attempt 1 failed, and nobody listens yet.
    return bool(sandbox.stats()["callbacks"]["attempted"] >= before["attempted"] + 2)


def _swapped_pairs(references: list[str]) -> list[str]:
    return [ref for i in range(0, len(references), 2) for ref in (references[i + 1], references[i])]


def test_every_callback_is_processed_exactly_once_after_duplicates_failures_a_kill_and_replay(postgres_url, tmp_path):
    from decentro_adapters.bootstrap import build_service
    from decentro_adapters.emulator.sandbox import start_sandbox
    from decentro_adapters.vault.fernet import FernetVault
    from decentro_core.memory import MemoryCache

    port = free_port()
    env = webhook_env(database_url=postgres_url, secret=SECRET, keys=BENCH_FERNET_KEY,
                      DECENTRO_WEBHOOK_STALE_AFTER=str(STALE_AFTER))
    serve = {"workers": 2, "threads": 4, "port": port, "log_path": str(tmp_path / "gunicorn.log"),
             "ready_timeout": WAIT}
    with start_sandbox(callback_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}", callback_secret=SECRET,
                       duplicate_callbacks=True, reorder_callbacks=True) as sandbox:
        sandbox.callbacks.configure(timeout=WAIT, reorder_window=WAIT)  # slow is not failed; pairs always pair
        with build_service(live_settings(sandbox.url, database_url=postgres_url), cache=MemoryCache()) as service:
            # 1. normal deliveries, each duplicated, in swapped pairs
            with gunicorn(env, **serve) as receiver:
                settled = _pay(service, 10, 6) + _pay(service, 20, 6)
                pending = _pay(service, 30, 8)
                phase1 = _idle(sandbox, "the first deliveries")
                receiver.kill()
            stored_order = [e.reference_id for e in _events(service, settled)]
            # 2. failing deliveries: nobody listens for the first attempts; the retries reach a restart
            sandbox.callbacks.configure(attempts=RETRIES, backoff=0.25)
            _settle(sandbox, service, pending[:4], "SUCCESS")
            _wait(lambda: _first_attempts_failed(sandbox, phase1), what="two attempts to find nobody listening")
            with gunicorn(env, **serve):
                phase2 = _idle(sandbox, "the retried deliveries") - phase1
            retried = [json.loads(FernetVault([BENCH_FERNET_KEY]).open(e.sealed_body))
                       for e in _events(service, pending[:4])]
            # 3. killed while processing: one attempt each, so only the replay can finish them
            sandbox.callbacks.configure(attempts=1, timeout=HUNG_AFTER)
            before = phase1 + phase2
            with gunicorn({**env, "BENCH_WEBHOOK_SLEEP": "3600"}, **serve) as receiver:
                _settle(sandbox, service, pending[4:], "FAILURE")
                phase3 = _idle(sandbox, "the attempts on a receiver stuck in processing") - before
                _wait(lambda: {e.state for e in _events(service, pending[4:])} == {"received"}
                      and len(_events(service, pending[4:])) == 4, what="four callbacks stored, stuck in processing")
                receiver.kill()
            stuck = {e.dedupe_key: e for e in service.records.webhook_events(state="received")}
            untouched = {ref: service.records.get_operation(ref).status for ref in pending[4:]}
            with gunicorn(env, **serve):  # restarted, as after a crash; then the operator replays
                _wait(lambda: _stale(stuck.values()), what="the stuck events to pass DECENTRO_WEBHOOK_STALE_AFTER")
                leftover = {e.dedupe_key for e in service.records.webhook_events() if e.state in ("received", "failed")}
                replay = _replay(env)
            terminal = sandbox.stats()["emulator"]["terminal_payments"]
            events = list(service.records.webhook_events())
            audit = service.audit.events
            payments = settled + pending
            records = {ref: service.records.get_operation(ref) for ref in payments}

    # 1. every callback delivered once and duplicated once, each pair stored later-first
    assert (phase1["queued"], phase1["delivered"], phase1["duplicates"], phase1["failed"]) == (12, 12, 12, 0)
    assert stored_order == _swapped_pairs(settled)
    # 2. the first attempts failed, a retry got through: one event per callback, stored from a retry
    assert (phase2["queued"], phase2["delivered"], phase2["failed"]) == (4, 4, 0)
    assert phase2["attempted"] - phase2["delivered"] - phase2["duplicates"] >= 1
    assert sorted(p["referenceId"] for p in retried) == sorted(pending[:4])
    assert any(p["attempt"] >= 2 and p["originalCallbackTxnId"] != p["callbackTxnId"] for p in retried)
    # 3. every attempt hung and was given up; the four events were stored, nothing was applied
    assert (phase3["queued"], phase3["attempted"], phase3["failed"], phase3["delivered"]) == (4, 4, 4, 0)
    assert sorted(e.reference_id for e in stuck.values()) == sorted(pending[4:])
    assert untouched == {ref: "PENDING" for ref in pending[4:]}
    # the replay processed exactly what the store held unfinished: the stuck four (and any failed)
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert set(stuck) <= leftover
    assert {line.split("\t")[0] for line in replay.stdout.splitlines() if line.endswith("\tprocessed")} == leftover
    assert f"replayed {len(leftover)}, still failing 0" in replay.stderr
    # one stored event per distinct callback, each processed
    assert terminal == 20
    assert len(events) == 20 and {e.reference_id for e in events} == set(records)
    assert Counter(e.state for e in events) == {"processed": 20}
    # applied exactly once each: one callback audit event per payment
    applied = Counter(a.reference_id for a in audit if a.action == "upi_payment.callback")
    assert applied == {ref: 1 for ref in records}
    expected = dict(zip(payments, ["SUCCESS"] * 6 + ["FAILURE"] * 6 + ["SUCCESS"] * 4 + ["FAILURE"] * 4))
    assert {ref: r.status for ref, r in records.items()} == expected

