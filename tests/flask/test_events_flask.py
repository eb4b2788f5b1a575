"""Outcome events in a Flask app: blinker signals, ``decentro.on``, and the ``events``,
``reconcile`` and ``worker`` commands."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, current_app
from flask_helpers import build_service, callback, payment, signed_post

from decentro_core.ports import OutcomeEvent
from flask_decentro import Decentro, signals
from flask_decentro.cli import decentro_cli


def worker_mode_app(make_app: Any) -> Flask:
    """An app whose events wait for a worker (here: the test) instead of going out inline."""
    service = build_service()
    service.events.mode = "worker"
    app: Flask = make_app(service=service)
    return app


def pending_payment(client: Any) -> str:
    created = client.post("/api/payments", json=payment(30))  # Decentro's sandbox: 30 stays PENDING
    assert created.status_code == 201 or created.status_code == 200, created.get_json()
    return str(created.get_json()["data"]["reference_id"])


def test_a_settled_payment_is_sent_to_signal_receivers_in_an_app_context(app: Flask, client: Any) -> None:
    got: list[tuple[Any, OutcomeEvent, str]] = []

    def on_paid(sender: Any, event: OutcomeEvent) -> None:
        got.append((sender, event, current_app.name))

    signals.payment_succeeded.connect(on_paid, app)
    try:
        reference = pending_payment(client)
        assert signed_post(client, callback(reference)).status_code == 200
        assert signed_post(client, callback(reference, callbackTxnId="CB-retry")).status_code == 200
    finally:
        signals.payment_succeeded.disconnect(on_paid, app)

    assert [(sender, event.type, event.reference_id, name) for sender, event, name in got] == [
        (app, "payment.succeeded", reference, app.name)]


def test_a_raising_receiver_is_retried_and_the_others_are_not_called_twice(make_app: Any) -> None:
    app = worker_mode_app(make_app)
    client = app.test_client()
    calls = {"flaky": 0, "steady": 0}

    def flaky(sender: Any, event: OutcomeEvent) -> None:
        calls["flaky"] += 1
        if calls["flaky"] == 1:
            raise RuntimeError("boom")

    def steady(sender: Any, event: OutcomeEvent) -> None:
        calls["steady"] += 1

    signals.outcome.connect(flaky, app)
    signals.payment_failed.connect(steady, app)
    try:
        reference = pending_payment(client)
        signed_post(client, callback(reference, "FAILURE"))
        service = app.extensions["decentro"].service
        service.events.backoff_base = 0.001  # due again almost at once
        first = service.events.dispatch_due()
        deadline = time.monotonic() + 10
        second = service.events.dispatch_due()
        while not second.delivered and time.monotonic() < deadline:  # until the millisecond has passed
            second = service.events.dispatch_due()
    finally:
        signals.outcome.disconnect(flaky, app)
        signals.payment_failed.disconnect(steady, app)
    assert (first.retrying, second.delivered) == ((f"{reference}:payment.failed",),) * 2
    assert calls == {"flaky": 2, "steady": 1}


def test_decentro_on_registers_a_handler_on_the_apps_service(app: Flask, client: Any) -> None:
    got: list[str] = []
    decentro = Decentro()
    with app.app_context():
        decentro.on("payment.*", lambda event: got.append(event.type), name="test-handler")
    reference = pending_payment(client)
    signed_post(client, callback(reference, "EXPIRED"))
    assert got == ["payment.expired"]


def test_events_list_and_replay_show_and_deliver_events(make_app: Any) -> None:
    app = worker_mode_app(make_app)
    client = app.test_client()
    reference = pending_payment(client)
    signed_post(client, callback(reference))
    runner = app.test_cli_runner()
    got: list[str] = []
    app.extensions["decentro"].service.on("payment.succeeded", lambda e: got.append(e.key), name="cli-test")

    listed = runner.invoke(decentro_cli, ["events", "list", "--state", "pending"])
    replayed = runner.invoke(decentro_cli, ["events", "replay", f"{reference}:payment.succeeded"])
    delivered = runner.invoke(decentro_cli, ["events", "list", "--state", "delivered"])
    unknown = runner.invoke(decentro_cli, ["events", "replay", "no-such-key"])

    assert listed.exit_code == 0 and f"{reference}:payment.succeeded\tpending" in listed.output
    assert "PENDING->SUCCESS" in listed.output
    assert replayed.exit_code == 0 and "delivered" in replayed.output and got == [f"{reference}:payment.succeeded"]
    assert "delivered_to=cli-test" in delivered.output
    assert unknown.exit_code == 1 and "no outcome event with key" in unknown.output


def test_reconcile_and_worker_once_report_what_they_did(make_app: Any) -> None:
    app = worker_mode_app(make_app)
    client = app.test_client()
    reference = pending_payment(client)
    service = app.extensions["decentro"].service
    service.ports.gateway.emulator.settle_payment(service.ports.records.get_operation(reference).operation_id,
                                                  "SUCCESS")
    got: list[str] = []
    service.on("payment.succeeded", lambda e: got.append(e.reference_id), name="worker-test")
    runner = app.test_cli_runner()

    young = runner.invoke(decentro_cli, ["reconcile"])  # created moments ago: not yet 15 minutes old
    reconciled = runner.invoke(decentro_cli, ["reconcile", "--older-than", "0m"])
    worked = runner.invoke(decentro_cli, ["worker", "--once", "--reconcile-every", "0m"])

    assert young.exit_code == 0 and young.output.startswith("examined 0")
    assert reconciled.exit_code == 0 and "examined 1: 1 settled by Decentro" in reconciled.output
    assert worked.exit_code == 0 and "delivered 1" in worked.output and got == [reference]


def test_an_app_with_no_receiver_leaves_events_for_a_worker_that_has_one(app: Flask, client: Any) -> None:
    reference = pending_payment(client)
    signed_post(client, callback(reference))
    outbox = app.extensions["decentro"].service.ports.records.outbox
    assert [(e.key, e.state) for e in outbox.events()] == [(f"{reference}:payment.succeeded", "pending")]
