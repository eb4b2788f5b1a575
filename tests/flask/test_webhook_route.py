"""POST /api/webhooks/decentro: signature over the raw body, once-only processing, replay."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from flask_helpers import NAME, WEBHOOK_SECRET, callback, payment, signed_post

from decentro_core.ports import WebhookEvent
from decentro_core.webhooks import sign_body
from flask_decentro.cli import decentro_cli


def _pending_payment(client) -> str:
    return client.post("/api/payments", json=payment(30)).get_json()["data"]["reference_id"]


def _status(service, reference_id):
    return service.ports.records.get_operation(reference_id).status


def test_a_signed_callback_is_acknowledged_and_settles_the_payment(client, service):
    reference_id = _pending_payment(client)
    response = signed_post(client, callback(reference_id))
    assert (response.status_code, response.get_json()) == (200, {"response_code": "CB_S00000"})
    assert _status(service, reference_id) == "SUCCESS"
    assert client.get(f"/api/payments/{reference_id}").get_json()["status"] == "SUCCESS"


def test_forged_truncated_and_reserialised_bodies_are_refused_with_401(client, service):
    reference_id = _pending_payment(client)
    raw = json.dumps(callback(reference_id), indent=2).encode()
    good = sign_body(raw, WEBHOOK_SECRET)
    reserialised = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    attempts = [
        signed_post(client, raw, secret="forged-secret"),
        signed_post(client, raw[:-3], signature=good),
        signed_post(client, reserialised, signature=good),
        client.post("/api/webhooks/decentro", data=raw, content_type="application/json"),
    ]
    assert [(r.status_code, r.get_json()["response_code"]) for r in attempts] == [(401, "CB_E00013")] * 4
    assert _status(service, reference_id) == "PENDING"
    assert list(service.ports.records.webhook_events()) == []


def test_a_malformed_or_oversized_callback_is_refused_with_cb_e00009(make_app):
    app = make_app(DECENTRO_WEBHOOK_MAX_BYTES=512)
    client = app.test_client()
    malformed = signed_post(client, b"{not json")
    oversized = signed_post(client, callback("r", transactionMessage="x" * 600))
    assert [(r.status_code, r.get_json()["response_code"]) for r in (malformed, oversized)] == [
        (400, "CB_E00009"), (413, "CB_E00009")]


def test_a_replayed_valid_callback_is_processed_once(client, service):
    reference_id = _pending_payment(client)
    first, again = signed_post(client, callback(reference_id)), signed_post(client, callback(reference_id))
    assert (first.status_code, again.status_code) == (200, 200)
    callbacks = [e for e in service.ports.audit.events if e.action == "upi_payment.callback"]
    assert len(callbacks) == 1
    (event,) = service.ports.records.webhook_events()
    assert (event.state, event.attempts) == ("processed", 1)


def test_the_shared_credential_and_ip_allow_list_are_enforced(make_app):
    app = make_app(DECENTRO_WEBHOOK_CREDENTIAL="header-secret", DECENTRO_WEBHOOK_ALLOWED_IPS="192.0.2.0/24")
    client = app.test_client()
    reference_id = _pending_payment(client)
    body = callback(reference_id)
    no_credential = signed_post(client, body, environ_base={"REMOTE_ADDR": "192.0.2.10"})
    wrong_ip = signed_post(client, body, headers={"X-Decentro-Credential": "header-secret"},
                           environ_base={"REMOTE_ADDR": "198.51.100.10"})
    accepted = signed_post(client, body, headers={"X-Decentro-Credential": "header-secret"},
                           environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert [r.status_code for r in (no_credential, wrong_ip, accepted)] == [401, 401, 200]


def test_a_crash_while_processing_leaves_the_callback_replayable_from_the_cli(app, client, service, monkeypatch):
    processor = app.extensions["decentro"].webhooks
    real_apply = processor.apply
    calls = {"n": 0}

    def crash_once(cb):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"worker lost while handling {NAME}")
        return real_apply(cb)

    monkeypatch.setattr(processor, "apply", crash_once)
    reference_id = _pending_payment(client)
    assert signed_post(client, callback(reference_id)).status_code == 200
    assert _status(service, reference_id) == "PENDING"

    runner = app.test_cli_runner()
    listed = runner.invoke(decentro_cli, ["webhooks", "list", "--failed"])
    assert f"CB-{reference_id}-SUCCESS\tfailed" in listed.output
    assert NAME not in listed.output
    replayed = runner.invoke(decentro_cli, ["webhooks", "replay", "--all"])
    assert replayed.exit_code == 0, replayed.output
    assert _status(service, reference_id) == "SUCCESS"
    assert runner.invoke(decentro_cli, ["webhooks", "list", "--failed"]).output.strip().endswith("0 callback(s)")


def test_a_callback_stuck_in_received_after_a_process_died_is_replayed_by_key(app, client, service):
    reference_id = _pending_payment(client)
    raw = json.dumps(callback(reference_id)).encode()
    stored_at = service.clock() - timedelta(hours=1)
    service.ports.records.add_webhook_event(WebhookEvent(
        dedupe_key="CB-stuck", sealed_body=service.ports.vault.seal(raw), received_at=stored_at,
        reference_id=reference_id))
    result = app.test_cli_runner().invoke(decentro_cli, ["webhooks", "replay", "CB-stuck"])
    assert (result.exit_code, result.output.strip()) == (0, "CB-stuck\tSUCCESS")
    assert _status(service, reference_id) == "SUCCESS"


def test_callback_handling_logs_no_personal_data(client, caplog):
    caplog.set_level(logging.DEBUG)
    reference_id = _pending_payment(client)
    signed_post(client, callback(reference_id))
    signed_post(client, callback(reference_id), secret="forged")
    assert caplog.records
    assert NAME not in caplog.text
