"""A lending backend's worst day with one EMI collection, over HTTP against the sandbox, on PostgreSQL.

The app (the Flask extension in live mode, served by a real HTTP server) opens a payment with an
``Idempotency-Key``; the client's connection drops before the answer arrives, so it sends the
same request again: one payment exists upstream. The customer pays, but every callback Decentro
sends is lost (the receiver is down). ``flask decentro reconcile`` asks Decentro and settles it;
the app's handler raises the first time and still receives exactly one ``payment.succeeded``;
``flask decentro events list`` shows it delivered.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import WAIT, wait_for
import requests
from flask import Flask
from werkzeug.serving import make_server

from decentro_sandbox.sandbox.server import start_sandbox
from decentro_core.ports import OutcomeEvent
from flask_decentro import Decentro
from flask_decentro.cli import decentro_cli

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))
from bench.common import sandbox_env  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

KEY = "loan-LN0042-emi-1"
EMI = {"amount": 30, "purpose": "EMI 1 of loan LN0042",  # 30: Decentro's sandbox leaves it PENDING
       "customer_details": {"name": "Meera Fixturekar", "phone": "9876543210", "email": "meera@example.com"}}




class Ledger:
    """The lending app's handler: marks the EMI paid; its database is down on the first call."""

    def __init__(self) -> None:
        self.calls = 0
        self.paid: list[OutcomeEvent] = []
        self.lock = threading.Lock()

    def __call__(self, event: OutcomeEvent) -> None:
        with self.lock:
            self.calls += 1
            if self.calls == 1:
                raise ConnectionError("the ledger database is restarting")
            self.paid.append(event)


@pytest.fixture
def lending_app(postgres_url: str) -> Iterator[tuple[Flask, str, Any, Ledger]]:
    # A port held bound but not listening: connections are refused, and no server started later
    # (the app's own, on port 0) can be given it, as a port merely found free could be.
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_receiver = f"http://127.0.0.1:{dead.getsockname()[1]}/api/webhooks/decentro"
    with dead, start_sandbox(callback_url=dead_receiver, callback_secret="w" * 32) as sandbox:
        sandbox.callbacks.configure(backoff=0.05, timeout=2.0)
        app = Flask("lending")
        app.config.update(TESTING=True)
        config = {**sandbox_env(sandbox.url), "DECENTRO_DATABASE_URL": postgres_url,
                  "DECENTRO_WEBHOOK_SECRET": "w" * 32, "DECENTRO_EVENTS_RETRY_BASE": "0.2"}
        Decentro(app, identity=lambda: "borrower-42", **config)
        ledger = Ledger()
        app.extensions["decentro"].service.on("payment.succeeded", ledger, name="ledger.mark_emi_paid")
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield app, f"http://127.0.0.1:{server.server_port}", sandbox, ledger
        finally:
            server.shutdown()
            thread.join(timeout=30)
            app.extensions["decentro"].close()


def _send_and_drop(base_url: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> None:
    """Send a request and hang up before reading the answer: a mobile client losing signal."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=WAIT)
    connection.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers})
    connection.close()


def test_an_emi_collection_survives_a_dropped_answer_lost_callbacks_and_a_failing_handler(lending_app) -> None:
    app, base_url, sandbox, ledger = lending_app
    service = app.extensions["decentro"].service
    created_upstream = lambda: sandbox.emulator.stats()["billable"].get("/v2/payments/upi/link", 0)  # noqa: E731

    # 1. The first request's answer is lost; the client sends it again with the same key.
    _send_and_drop(base_url, "/api/payments", EMI, {"Idempotency-Key": KEY})
    wait_for(lambda: created_upstream() == 1 and service.ports.records.unsettled(
        "upi_payment", created_before=service.clock(), limit=1), what="the first request to be served")
    again = requests.post(f"{base_url}/api/payments", json=EMI, headers={"Idempotency-Key": KEY}, timeout=WAIT)
    body = again.json()
    reference = body["data"]["reference_id"]
    assert again.status_code == 200 and body["status"] == "PENDING" and body["data"]["idempotent_replay"] is True
    assert created_upstream() == 1  # one payment at Decentro, not two

    # 2. The customer pays; Decentro's three callback attempts all find the receiver down.
    record = service.ports.records.get_operation(reference)
    sandbox.emulator.settle_payment(record.operation_id, "SUCCESS")
    assert sandbox.callbacks.wait_idle(WAIT)
    assert sandbox.stats()["callbacks"].get("failed") == 1 and service.ports.records.get_operation(
        reference).status == "PENDING"

    # 3. Reconciliation asks Decentro and settles it; the ledger's first call fails and is retried.
    runner = app.test_cli_runner()
    reconciled = runner.invoke(decentro_cli, ["reconcile", "--older-than", "0m"])
    assert reconciled.exit_code == 0 and "examined 1: 1 settled by Decentro" in reconciled.output
    assert service.ports.records.get_operation(reference).status == "SUCCESS"
    wait_for(lambda: ledger.paid, what="the ledger to be told, after its failure")

    # 4. Exactly one event reached the ledger, and `events list` says it was delivered.
    assert ledger.calls == 2 and [(e.type, e.reference_id, e.old_status) for e in ledger.paid] == [
        ("payment.succeeded", reference, "PENDING")]
    assert ledger.paid[0].operation_id == record.operation_id and ledger.paid[0].user_id == "borrower-42"
    listed = runner.invoke(decentro_cli, ["events", "list"])
    lines = [line for line in listed.output.splitlines() if reference in line]
    assert len(lines) == 1 and "\tdelivered\tattempts=2\t" in lines[0] and "ledger.mark_emi_paid" in lines[0]
    status = requests.get(f"{base_url}/api/payments/{reference}", timeout=WAIT).json()
    assert status["status"] == "SUCCESS"
    assert runner.invoke(decentro_cli, ["reconcile", "--older-than", "0m"]).output.startswith("examined 0")
    assert ledger.calls == 2 and created_upstream() == 1
