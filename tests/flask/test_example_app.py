"""The demo application: page, PAN, payment and a callback signed with the demo secret."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Flask
from flask_helpers import CONSENT

from decentro_core.webhooks import sign_body
from example_app import create_app
from flask_decentro.config import DEMO_WEBHOOK_SECRET


@pytest.fixture
def demo(tmp_path) -> Iterator[Flask]:
    app = create_app({"TESTING": True, "DECENTRO_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"})
    yield app
    app.extensions["decentro"].service.close()


def test_the_demo_page_offers_the_pan_and_payment_forms(demo):
    page = demo.test_client().get("/").get_data(as_text=True)
    assert 'id="pan-form"' in page and 'id="payment-form"' in page and '"/api"' in page


def test_the_demo_verifies_a_pan_opens_a_payment_and_takes_a_signed_callback(demo):
    client = demo.test_client()
    pan = client.post("/api/kyc/pan", json={"pan": "ABCDE1234F", "user_id": "demo-user", "consent": CONSENT})
    assert pan.get_json()["status"] == "SUCCESS"
    opened = client.post("/api/payments", json={"amount": 30, "customer_details": {
        "name": "Demo Customer", "email": "demo@example.com", "phone": "9876500011"}})
    reference_id = opened.get_json()["data"]["reference_id"]
    raw = json.dumps({"callbackTxnId": "CB-demo-1", "transactionStatus": "SUCCESS",
                      "referenceId": reference_id}).encode()
    ack = client.post("/api/webhooks/decentro", data=raw, content_type="application/json",
                      headers={"X-Decentro-Signature": sign_body(raw, DEMO_WEBHOOK_SECRET)})
    assert (ack.status_code, ack.get_json()) == (200, {"response_code": "CB_S00000"})
    assert client.get(f"/api/payments/{reference_id}").get_json()["status"] == "SUCCESS"


def test_the_demo_draws_the_qr_code_of_a_upi_uri_and_nothing_else(demo):
    client = demo.test_client()
    svg = client.get("/demo/qr.svg", query_string={"uri": "upi://pay?pa=MOCKPAYEE0001@emulator&am=30.00&cu=INR"})
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert svg.data.startswith(b"<?xml") and b"<svg" in svg.data and b"UPI payment QR code" in svg.data
    assert client.get("/demo/qr.svg", query_string={"uri": "https://example.com"}).status_code == 400
    assert client.get("/demo/qr.svg", query_string={"uri": "upi://pay?" + "a" * 600}).status_code == 400


def test_the_simulated_callback_settles_the_payment_through_the_webhook_route(demo):
    import time

    client = demo.test_client()
    opened = client.post("/api/payments", json={"amount": 30, "customer_details": {
        "name": "Demo Customer", "email": "demo@example.com", "phone": "9876500011"}}).get_json()["data"]
    reference = opened["reference_id"]
    before = client.get(f"/demo/payments/{reference}/timeline").get_json()
    assert before["status"] == "PENDING" and [e["label"] for e in before["events"]][0] == "Payment opened"
    assert client.post("/demo/simulate-callback", json={"reference_id": reference, "status": "SUCCESS"}).status_code == 202
    deadline = time.monotonic() + 30  # the emulator posts the signed callback from another thread
    while client.get(f"/demo/payments/{reference}/timeline").get_json()["status"] != "SUCCESS":
        assert time.monotonic() < deadline, "the simulated callback never settled the payment"
        time.sleep(0.05)
    after = client.get(f"/demo/payments/{reference}/timeline").get_json()
    last = after["events"][-1]
    assert (last["label"], last["outcome"]) == ("Decentro's callback received", "SUCCESS")
    events = list(demo.extensions["decentro"].service.ports.records.webhook_events())
    assert [e.state for e in events] == ["processed"]  # it came in through the signed webhook route
    again = client.post("/demo/simulate-callback", json={"reference_id": reference, "status": "FAILURE"})
    assert again.status_code == 409
    assert client.post("/demo/simulate-callback", json={"reference_id": "nope", "status": "SUCCESS"}).status_code == 404
    assert client.post("/demo/simulate-callback", json={"reference_id": reference, "status": "MAYBE"}).status_code == 400
    assert client.get("/demo/payments/nope/timeline").status_code == 404


def test_the_demo_console_opens_only_after_the_demo_operator_sign_in(demo):
    client = demo.test_client()
    assert client.get("/decentro/console/").status_code == 404
    assert client.post("/demo/operator/sign-in").status_code == 302
    assert client.get("/decentro/console/").status_code == 200
    client.post("/demo/operator/sign-out")
    assert client.get("/decentro/console/payments").status_code == 404
