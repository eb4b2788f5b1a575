"""Hostile requests get a typed 4xx, never a 500: found in review, kept as regressions."""

from __future__ import annotations

import io
import json

import pytest
from flask import Flask

from flask_decentro import Decentro

CONSENT = {"given": True, "text": "I agree to this identity check.",
           "purpose": "Customer onboarding identity verification"}


@pytest.fixture
def client():
    app = Flask("hostile")
    app.config.update(DECENTRO_RATELIMIT="1000 per minute", DECENTRO_WEBHOOK_SECRET="test-secret")
    Decentro(app)
    with app.test_client() as test_client:
        yield test_client
    app.extensions["decentro"].service.close()


def test_absurdly_deep_json_is_a_400_not_a_recursion_crash(client):
    body = b"[" * 8000 + b"]" * 8000  # under the size cap, far past the recursion limit
    answer = client.post("/api/kyc/pan", data=body, content_type="application/json")
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_json_body_over_the_cap_is_refused_with_413_before_it_is_parsed(client):
    body = json.dumps({"pan": "ABCDE1234F", "consent": CONSENT, "padding": "x" * 100_000})
    answer = client.post("/api/kyc/pan", data=body, content_type="application/json")
    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("amount", ["१०", "１０", "1e3", " 10 ", True])
def test_an_amount_that_is_not_plain_rupees_is_a_400(client, amount):
    answer = client.post("/api/payments", json={"amount": amount, "customer_details": {
        "name": "Test Customer", "email": "customer@example.com", "phone": "9876500001"}})
    assert answer.status_code == 400
    assert "amount" in answer.get_json()["error"]["fields"]


def _upload(client, files, **form):
    data = {"share_code": "1234", "consent": json.dumps(CONSENT), **form}
    data["file"] = files
    return client.post("/api/kyc/aadhaar-xml", data=data, content_type="multipart/form-data")


def test_two_uploaded_files_are_refused(client):
    answer = _upload(client, [(io.BytesIO(b"<x/>"), "a.xml"), (io.BytesIO(b"<y/>"), "b.xml")])
    assert answer.status_code == 400
    assert "file" in answer.get_json()["error"]["fields"]


def test_an_empty_upload_is_refused_with_its_own_message(client):
    answer = _upload(client, [(io.BytesIO(b""), "a.xml")])
    assert answer.status_code == 400
    assert answer.get_json()["error"]["fields"]["file"] == ["The uploaded file is empty"]


def test_a_repeated_form_field_is_refused(client):
    data = {"share_code": ["1234", "5678"], "consent": json.dumps(CONSENT),
            "file": [(io.BytesIO(b"xml_content"), "a.xml")]}
    answer = client.post("/api/kyc/aadhaar-xml", data=data, content_type="multipart/form-data")
    assert answer.status_code == 400
    assert "share_code" in answer.get_json()["error"]["fields"]


def test_with_an_identity_callable_a_signed_out_caller_cannot_read_a_payment_status():
    app = Flask("signed-out")
    app.config.update(DECENTRO_WEBHOOK_SECRET="test-secret")
    decentro = Decentro(app, identity=lambda: None)
    with app.app_context():
        created = decentro.service.initiate_payment({"amount": 30})  # opened by backend code, no user
    with app.test_client() as client:
        answer = client.get(f"/api/payments/{created['data']['reference_id']}")
    app.extensions["decentro"].service.close()
    assert answer.status_code == 401


@pytest.mark.parametrize(("consent", "field"), [
    ({**CONSENT, "text": "ok"}, "consent.text"),                 # the core's rule: 10 to 2000 characters
    ({**CONSENT, "purpose": "too short"}, "consent.purpose"),
    ({**CONSENT, "client_ip": "10.9.8.7"}, "consent.client_ip"),  # where it came from is ours to record
])
def test_a_consent_the_core_refuses_is_named_under_consent(client, consent, field):
    answer = client.post("/api/kyc/pan", json={"pan": "ABCDE1234F", "consent": consent})
    error = answer.get_json()["error"]
    assert (answer.status_code, error["code"]) == (400, "CONSENT_REQUIRED")
    assert list(error["fields"]) == [field]
