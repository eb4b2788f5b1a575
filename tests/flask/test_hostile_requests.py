"""Hostile requests get a typed 4xx, never a 500: found in review, kept as regressions."""

from __future__ import annotations

import io
import json

import pytest
from flask import Flask

from flask_decentro import Decentro
from flask_helpers import build_service

from decentro_core.webhooks import sign_body

CONSENT = {"given": True, "text": "I agree to this identity check.",
           "purpose": "Customer onboarding identity verification"}


@pytest.fixture
def client():
    app = Flask("hostile")
    app.config.update(DECENTRO_RATELIMIT="1000 per minute", DECENTRO_WEBHOOK_SECRET="test-secret")
    Decentro(app)
    with app.test_client() as test_client:
        yield test_client
    app.extensions["decentro"].close()


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


def test_a_form_field_without_a_name_is_refused_not_a_500(client):
    """Found by schemathesis: a part with name="" parses as a field named None."""
    boundary = "fuzz0boundary"
    parts = [('name=""', b"[]"), ('name="consent"', json.dumps(CONSENT).encode()), ('name="share_code"', b"1234"),
             ('name="file"; filename="a.xml"', b"<x/>")]
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; {disposition}\r\n\r\n".encode() + value
                    + b"\r\n" for disposition, value in parts) + f"--{boundary}--\r\n".encode()
    answer = client.post("/api/kyc/aadhaar-xml", data=body,
                         content_type=f"multipart/form-data; boundary={boundary}")
    assert answer.status_code == 400 and "_body" in answer.get_json()["error"]["fields"]


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


def _raw_json(client, path: str, text: str):  # type: ignore[no-untyped-def]
    """JSON written by hand: json.dumps cannot produce a lone surrogate escape."""
    return client.post(path, data=text.encode(), content_type="application/json")


@pytest.mark.parametrize(("body", "field"), [
    ('{"pan": "ABCDE1234F", "consent": {"given": true, "text": "I agree\\u0000 to the check", '
     '"purpose": "Customer onboarding identity verification"}}', "consent.text"),
    ('{"pan": "ABCDE1234F", "consent": {"given": true, "text": "I agree to the check", '
     '"purpose": "Customer onboarding \\ud800 verification"}}', "consent.purpose"),
    ('{"pan": "ABCDE1234F\\u0000", "consent": ' + json.dumps(CONSENT) + "}", "pan"),
    ('{"pan": "ABCDE1234F", "user_id": "u\\u0000", "consent": ' + json.dumps(CONSENT) + "}", "user_id"),
])
def test_unstorable_text_is_a_400_naming_the_field_never_a_500(client, body: str, field: str) -> None:
    response = _raw_json(client, "/api/kyc/pan", body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert field in response.get_json()["error"]["fields"]


def test_a_payment_purpose_with_a_lone_surrogate_is_a_400(client) -> None:
    response = _raw_json(client, "/api/payments", '{"amount": 10, "purpose": "Order \\udc00", "customer_details": '
                                                   '{"name": "Testa Synthetica", "email": "t@example.com", "phone": "9876500011"}}')
    assert response.status_code == 400 and "purpose" in response.get_json()["error"]["fields"]


@pytest.mark.parametrize("path", ["/api/payments/%00", "/api/payments/%ED%A0%80", "/api/payments/" + "r" * 500])
def test_an_impossible_reference_id_is_an_unknown_payment(client, path: str) -> None:
    response = client.get(path)
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "UNKNOWN_REFERENCE")


def test_a_callback_with_an_unstorable_id_is_refused_as_a_bad_payload(client) -> None:
    raw = b'{"callbackTxnId": "CB\\u0000", "transactionStatus": "SUCCESS", "referenceId": "r-1"}'
    response = client.post("/api/webhooks/decentro", data=raw, content_type="application/json",
                           headers={"X-Decentro-Signature": sign_body(raw, "test-secret")})
    assert response.status_code == 400 and response.get_json() == {"response_code": "CB_E00009"}


def test_every_error_under_the_prefix_is_json_with_a_code_and_the_host_app_keeps_its_own() -> None:
    app = Flask("host")
    app.config.update(DECENTRO_WEBHOOK_SECRET="test-secret")
    app.add_url_rule("/hello", "hello", lambda: "hi")
    Decentro(app, service=build_service())
    client = app.test_client()
    missing, wrong_method = client.get("/api/no-such-route"), client.get("/api/payments")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "NOT_FOUND")
    assert (wrong_method.status_code, wrong_method.get_json()["error"]["code"]) == (405, "METHOD_NOT_ALLOWED")
    assert "POST" in wrong_method.headers["Allow"]
    assert client.delete("/api/kyc/pan").status_code == 405
    assert client.get("/hello").get_data(as_text=True) == "hi"
    assert client.get("/elsewhere").mimetype == "text/html"  # not ours: Flask's own page
