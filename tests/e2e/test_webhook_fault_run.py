"""Callbacks under duplicated, reordered and failing deliveries, and a receiver killed mid-processing.

The sandbox delivers real signed callbacks over HTTP to ``bench/webhook_app.py`` under
gunicorn (2 workers) on PostgreSQL. Three phases:

1. normal: 12 payments settle at once; every callback is sent twice and in swapped pairs;
2. failing deliveries: the receiver is killed (SIGKILL), 4 payments settle, the first
   attempts find nobody, and the sandbox's retries reach a restarted receiver;
3. killed mid-processing: the receiver sleeps before applying a callback
   (``BENCH_WEBHOOK_SLEEP``), 4 payments settle, each is stored, hangs, and is retried (the
   retry is folded into the stored event), the receiver is killed with the events
   ``received``, then restarted, and ``flask decentro webhooks replay --all`` runs.

Afterwards every distinct callback is one stored event, processed, applied exactly once.

Nothing here depends on how fast the machine is. Each step waits on a state with a generous
limit (the deliverer idle, ``CallbackDeliverer.wait_idle``; an attempt counted; an event stored
in a state), and the deliverer is configured so each outcome follows from the order of
events, not from a race: a POST waits up to ``WAIT`` for its answer (slow is not failed), a
held callback waits for its partner, and a retry is held (``HOLD``) until the state it must
meet is reached, then released (``configure`` wakes a waiting retry): in phase 2 once the
receiver is back, in phase 3 once the first attempt is stored and hanging. In phase 3 the
receiver applies that retry too (a redelivery applies any event not yet processed), so it
hangs as the first did and is given up; the sandbox makes no third attempt, so the
interrupted events are left to the replay alone. What the replay must process is read from
the store just before it runs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from waiting import WAIT, wait_for

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.common import BENCH_FERNET_KEY, live_settings  # noqa: E402
from bench.servers import WEBHOOK_PATH, free_port, gunicorn, webhook_env  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.postgres]

SECRET = "webhook-fault-run-secret"
CUSTOMER = {"name": "Meera Fixturekar", "phone": "9876543210", "email": "meera@example.com"}
STALE_AFTER = 1  # DECENTRO_WEBHOOK_STALE_AFTER (seconds) for the replay
RETRIES = 10  # phase 2: enough attempts that some are left when the receiver is back
HOLD = 3600.0  # a backoff that holds a retry until the test releases it (configure wakes the wait)
HUNG_AFTER = 1.0  # phase 3: an attempt unanswered this long is given up (the receiver sleeps an hour)


@pytest.fixture
def world(postgres_url: str, tmp_path: Path) -> Any:
    """The sandbox (calling back to a fixed port), a live service on PostgreSQL, the receiver's setup."""
    from decentro_adapters.bootstrap import build
    from decentro_sandbox.sandbox import start_sandbox
    from decentro_core.memory import MemoryCache

    port = free_port()
    env = webhook_env(database_url=postgres_url, secret=SECRET, keys=BENCH_FERNET_KEY,
                      DECENTRO_WEBHOOK_STALE_AFTER=str(STALE_AFTER))
    serve = {"workers": 2, "threads": 4, "port": port, "log_path": str(tmp_path / "gunicorn.log"),
             "ready_timeout": WAIT}
    with start_sandbox(callback_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}", callback_secret=SECRET,
                       duplicate_callbacks=True, reorder_callbacks=True) as sandbox:
        sandbox.callbacks.configure(timeout=WAIT, reorder_window=WAIT)  # slow is not failed; pairs always pair
        with build(live_settings(sandbox.url, database_url=postgres_url), cache=MemoryCache()) as system:
            yield sandbox, system.service, env, serve




def _idle(sandbox: Any, what: str) -> Counter[str]:
    """Wait until every queued callback is delivered or given up; the deliverer's totals then."""
    if not sandbox.callbacks.wait_idle(WAIT):
        raise AssertionError(f"timed out after {WAIT}s waiting for {what}: {sandbox.stats()['callbacks']}")
    return Counter(sandbox.stats()["callbacks"])


def _pay(service: Any, amount: int, n: int) -> list[str]:
    return [service.initiate_payment({"amount": amount, "customer_details": CUSTOMER, "purpose": f"Hook order {i}"})
            ["data"]["reference_id"] for i in range(n)]


def _settle(sandbox: Any, service: Any, references: Iterable[str], status: str) -> None:
    for reference in references:
        sandbox.emulator.settle_payment(service.ports.records.get_operation(reference).operation_id, status)


def _events(service: Any, references: Iterable[str], state: str | None = None) -> list[Any]:
    wanted = set(references)
    return [e for e in service.ports.records.webhook_events(state=state) if e.reference_id in wanted]


def _bodies(events: Iterable[Any]) -> list[dict[str, Any]]:
    from decentro_adapters.vault.fernet import FernetVault

    vault = FernetVault([BENCH_FERNET_KEY])
    return [json.loads(vault.open(e.sealed_body)) for e in events]


def _stale(events: Iterable[Any]) -> bool:
    """Older than the replay's DECENTRO_WEBHOOK_STALE_AFTER, so ``replay --all`` takes them."""
    cutoff = datetime.now(timezone.utc) - timedelta(seconds=STALE_AFTER + 0.5)
    return all(e.received_at <= cutoff for e in events)


def _swapped_pairs(references: list[str]) -> list[str]:
    return [ref for i in range(0, len(references), 2) for ref in (references[i + 1], references[i])]


def _normal(sandbox: Any, service: Any, env: dict[str, str], serve: dict[str, Any]) -> dict[str, Any]:
    """Phase 1: 12 payments settle at creation, 8 stay pending; returns what to check."""
    with gunicorn(env, **serve) as receiver:
        settled = _pay(service, 10, 6) + _pay(service, 20, 6)
        pending = _pay(service, 30, 8)
        counts = _idle(sandbox, "the first deliveries")
        receiver.kill()
    order = [e.reference_id for e in _events(service, settled)]  # the store lists by arrival
    return {"settled": settled, "pending": pending, "counts": counts, "order": order}


def _failing(sandbox: Any, service: Any, env: dict[str, str], serve: dict[str, Any],
             references: list[str], before: Counter[str]) -> dict[str, Any]:
    """Phase 2: settle with nobody listening; retries are held until the receiver is back."""
    sandbox.callbacks.configure(attempts=RETRIES, backoff=0.25)
    _settle(sandbox, service, references, "SUCCESS")
    # Attempt 2 is counted only after attempt 1 failed, and nobody listens until it is.
    wait_for(lambda: sandbox.stats()["callbacks"]["attempted"] >= before["attempted"] + 2,
          what="two attempts to find nobody listening")
    sandbox.callbacks.configure(backoff=HOLD)  # the next retry waits for the restart
    with gunicorn(env, **serve):
        sandbox.callbacks.configure(backoff=0)  # released: it reaches the restarted receiver
        counts = _idle(sandbox, "the retried deliveries")
    return {"counts": counts - before, "totals": counts, "bodies": _bodies(_events(service, references))}


def _hang_each(sandbox: Any, service: Any, references: list[str]) -> None:
    """One at a time: attempt 1 is stored and hangs; only then is its retry let go."""
    sandbox.callbacks.configure(attempts=2, duplicate=False, reorder=False)
    for reference in references:
        sandbox.callbacks.configure(backoff=HOLD, timeout=HUNG_AFTER)
        _settle(sandbox, service, [reference], "FAILURE")
        wait_for(lambda: _events(service, [reference], "received"), what="a callback stored and stuck in processing")
        sandbox.callbacks.configure(backoff=0)  # the retry meets the stored, hung event, and hangs too
        _idle(sandbox, "the retry of a callback stuck in processing")


def _killed(sandbox: Any, service: Any, env: dict[str, str], serve: dict[str, Any],
            references: list[str], before: Counter[str]) -> dict[str, Any]:
    """Phase 3: each callback is stored and hangs, and so does its retry; SIGKILL; restart; replay."""
    hanging = {**env, "BENCH_WEBHOOK_SLEEP": "3600", "DECENTRO_WEBHOOK_STALE_AFTER": "3600"}
    with gunicorn(hanging, **{**serve, "threads": 16}) as receiver:  # a thread for every hung request
        _hang_each(sandbox, service, references)
        counts = _idle(sandbox, "the phase's deliveries") - before
        receiver.kill()
    stuck = {e.dedupe_key: e for e in service.ports.records.webhook_events(state="received")}
    untouched = {ref: service.ports.records.get_operation(ref).status for ref in references}
    with gunicorn(env, **serve):  # restarted, as after a crash; then the operator replays
        wait_for(lambda: _stale(stuck.values()), what="the stuck events to pass DECENTRO_WEBHOOK_STALE_AFTER")
        leftover = {e.dedupe_key for e in service.ports.records.webhook_events() if e.state in ("received", "failed")}
        command = [sys.executable, "-m", "flask", "--app", "bench.webhook_app:create_app", "decentro", "webhooks",
                   "replay", "--all"]
        replay = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT)
    return {"counts": counts, "stuck": stuck, "untouched": untouched, "leftover": leftover, "replay": replay}


def test_every_callback_is_processed_exactly_once_after_duplicates_failures_a_kill_and_replay(world):
    sandbox, service, env, serve = world
    one = _normal(sandbox, service, env, serve)
    pending = one["pending"]
    two = _failing(sandbox, service, env, serve, pending[:4], one["counts"])
    three = _killed(sandbox, service, env, serve, pending[4:], two["totals"])
    payments = one["settled"] + pending
    events = list(service.ports.records.webhook_events())
    audit = service.ports.audit.events
    records = {ref: service.ports.records.get_operation(ref) for ref in payments}

    # 1. every callback delivered once and duplicated once, each pair stored later-first
    assert [one["counts"][k] for k in ("queued", "delivered", "duplicates", "failed")] == [12, 12, 12, 0]
    assert one["order"] == _swapped_pairs(one["settled"])
    # 2. first attempts failed, retries got through: one event per callback, stored from a retry
    assert [two["counts"][k] for k in ("queued", "delivered", "failed")] == [4, 4, 0]
    assert two["counts"]["attempted"] - two["counts"]["delivered"] - two["counts"]["duplicates"] >= 1
    assert sorted(b["referenceId"] for b in two["bodies"]) == sorted(pending[:4])
    assert any(b["attempt"] >= 2 and b["originalCallbackTxnId"] != b["callbackTxnId"] for b in two["bodies"])
    # 3. every first attempt hung, and so did its retry (folded into the same stored event, and
    #    applied again, which hung as well): both given up, so exactly one event per callback was
    #    left received, and nothing was applied
    assert [three["counts"][k] for k in ("queued", "attempted", "delivered", "failed")] == [4, 8, 0, 4]
    assert sorted(e.reference_id for e in three["stuck"].values()) == sorted(pending[4:])
    assert three["untouched"] == {ref: "PENDING" for ref in pending[4:]}
    # the replay processed exactly what the store held unfinished: the stuck four (and any failed)
    replay, leftover = three["replay"], three["leftover"]
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert set(three["stuck"]) <= leftover
    assert {line.split("\t")[0] for line in replay.stdout.splitlines() if line.endswith("\tprocessed")} == leftover
    assert f"replayed {len(leftover)}, still failing 0" in replay.stderr
    # one stored event per distinct callback, each processed
    assert sandbox.stats()["emulator"]["terminal_payments"] == 20
    assert len(events) == 20 and {e.reference_id for e in events} == set(records)
    assert Counter(e.state for e in events) == {"processed": 20}
    # applied exactly once each: one callback audit event per payment
    applied = Counter(a.reference_id for a in audit if a.action == "upi_payment.callback")
    assert applied == {ref: 1 for ref in records}
    expected = dict(zip(payments, ["SUCCESS"] * 6 + ["FAILURE"] * 6 + ["SUCCESS"] * 4 + ["FAILURE"] * 4))
    assert {ref: r.status for ref, r in records.items()} == expected
