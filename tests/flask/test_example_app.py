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
