"""``flask decentro worker`` as a real process next to the app: two workers on one PostgreSQL
outbox deliver every event once between them, and both stop cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from decentro_adapters.bootstrap import build
from decentro_adapters.vault.fernet import FernetVault
from decentro_core.memory import MemoryCache
from decentro_core.settings import Settings
from decentro_core.webhooks import sign_body

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
WAIT = 120.0  # a limit for a state to be reached on a busy machine, not a duration
SECRET = "worker-test-webhook-secret"
PAYMENTS = 30


def _wait(condition: Any, *, what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT}s waiting for {what}")
        time.sleep(0.1)
    return value


def test_two_workers_deliver_every_event_once_and_stop_on_sigterm(postgres_url: str, tmp_path: Path) -> None:
    key = FernetVault.generate_key()
    env_settings = {"USE_MOCKS": "true", "DECENTRO_DATABASE_URL": postgres_url, "DECENTRO_ENCRYPTION_KEYS": key,
                    "DECENTRO_WEBHOOK_SECRET": SECRET, "DECENTRO_EVENTS_DISPATCH": "worker"}
    log_path = tmp_path / "events.log"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("DECENTRO_", "FLASK_"))}
    env.update(env_settings, EVENTS_LOG=str(log_path), PYTHONUNBUFFERED="1")
    flask = Path(sys.executable).with_name("flask")
    command = [str(flask) if flask.exists() else sys.executable, *([] if flask.exists() else ["-m", "flask"]),
               "--app", "tests/e2e/worker_app.py:create_app()", "decentro", "worker", "--interval", "0.2",
               "--reconcile-every", "0m"]
    outputs = [tmp_path / f"worker-{i}.out" for i in range(2)]
    workers = []
    for out in outputs:
        with out.open("wb") as sink:  # the child keeps its own copy of the descriptor
            workers.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT))
    try:
        _wait(lambda: all("decentro worker: delivering" in out.read_text() for out in outputs),
              what="both workers to start")
        with build(Settings.from_mapping(env_settings), cache=MemoryCache()) as system:
            service, processor = system.service, system.webhooks
            references = [service.initiate_payment({"amount": 30})["data"]["reference_id"] for _ in range(PAYMENTS)]
            for i, reference in enumerate(references):
                status = ("SUCCESS", "FAILURE", "EXPIRED")[i % 3]
                body = json.dumps({"callbackTxnId": f"CB-{i}", "transactionStatus": status,
                                   "referenceId": reference}).encode()
                assert processor.receive(body, signature=sign_body(body, SECRET)).http_status == 200

            outbox = service.ports.records.outbox
            _wait(lambda: len(outbox.events(state="delivered", limit=1000)) == PAYMENTS,
                  what="every event to be delivered by the workers")
        lines = log_path.read_text(encoding="utf-8").split("\n")
        delivered = Counter(line.split()[0] for line in lines if line)
        by_worker = Counter(line.split()[1] for line in lines if line)
        assert sorted(delivered) == sorted(f"{r}:payment.{t}" for r, t in zip(
            references, ["succeeded", "failed", "expired"] * PAYMENTS))
        assert set(delivered.values()) == {1}
        assert set(by_worker) <= {str(w.pid) for w in workers}
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=WAIT)
    logs = [out.read_text() for out in outputs]
    assert [w.returncode for w in workers] == [0, 0], logs
    assert all("decentro worker stopped" in log for log in logs), logs
