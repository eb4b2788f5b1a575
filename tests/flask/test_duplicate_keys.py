"""A JSON object naming one key twice is refused at every entry point (HTTP 400 DUPLICATE_KEY).

``json.loads`` keeps the last of repeated keys; a proxy, WAF or log reader in front may keep the
first, so ``{"amount": 10, "amount": 99999}`` would be checked as ₹10 and paid as ₹99,999.
"""

from __future__ import annotations

import io
import json
import logging

from flask_helpers import CONSENT, NAME, callback, payment, signed_post

from decentro_core.webhooks import sign_body
from flask_decentro.config import DEMO_WEBHOOK_SECRET

CUSTOMER = json.dumps({"name": NAME, "email": "testa@example.com", "phone": "9876500011"})
CONSENT_JSON = json.dumps(CONSENT)


def _post(client, path: str, raw: str, **kwargs):
    return client.post(path, data=raw.encode(), content_type="application/json", **kwargs)


def _refused(response, field: str) -> None:
    body = response.get_json()
    assert response.status_code == 400, body
    assert body["error"]["code"] == "DUPLICATE_KEY" and field in body["error"]["fields"], body


def test_a_payment_naming_its_amount_twice_is_refused_and_nothing_is_opened(client, service):
    raw = f'{{"amount": 10, "amount": 99999, "customer_details": {CUSTOMER}}}'
    _refused(_post(client, "/api/payments", raw), "amount")
    assert service.ports.gateway.requests == []
    assert client.post("/api/payments", json=payment(10)).status_code == 200  # the same body, once: fine


def test_a_consent_given_false_then_true_is_refused_nested(client, service):
    consent = CONSENT_JSON.replace('"given": true', '"given": false, "given": true')
    _refused(_post(client, "/api/kyc/pan", f'{{"pan": "ABCDE1234F", "consent": {consent}}}'), "given")
    deeper = f'{{"pan": "ABCDE1234F", "consent": {CONSENT_JSON}, "x": [{{"a": 1, "a": 2}}]}}'
    _refused(_post(client, "/api/kyc/pan", deeper), "a")
    assert service.ports.gateway.requests == []


def test_the_aadhaar_upload_refuses_a_consent_field_naming_a_key_twice(client, service):
    consent = CONSENT_JSON.replace('"given": true', '"given": false, "given": true')
    response = client.post("/api/kyc/aadhaar-xml", content_type="multipart/form-data", data={
        "file": (io.BytesIO(b"<OfflinePaperlessKyc referenceId='x'/>"), "offline.xml"),
        "share_code": "1234", "consent": consent})
    _refused(response, "given")


def test_a_repeated_key_that_is_no_plain_name_is_not_echoed(client):
    _refused(_post(client, "/api/kyc/pan", '{"ABCDE1234F Testa": 1, "ABCDE1234F Testa": 2}'), "_body")
    assert "ABCDE1234F" not in _post(client, "/api/kyc/pan", '{"ABCDE1234F x": 1, "ABCDE1234F x": 2}').get_data(
        as_text=True)


def test_a_callback_naming_its_status_twice_is_refused_with_cb_e00009_and_nothing_applied(client, service, caplog):
    reference_id = client.post("/api/payments", json=payment(30)).get_json()["data"]["reference_id"]
    clean = json.dumps(callback(reference_id, "FAILURE"))
    raw = clean.replace('"transactionStatus": "FAILURE"',
                        '"transactionStatus": "FAILURE", "transactionStatus": "SUCCESS"').encode()
    assert raw != clean.encode()
    with caplog.at_level(logging.WARNING, logger="decentro.webhooks"):
        response = signed_post(client, raw)
    assert (response.status_code, response.get_json()) == (400, {"response_code": "CB_E00009"})
    assert service.ports.records.get_operation(reference_id).status == "PENDING"
    assert list(service.ports.records.webhook_events()) == []
    refused = [r for r in caplog.records if getattr(r, "error_code", None) == "DUPLICATE_KEY"]
    assert len(refused) == 1 and reference_id not in refused[0].getMessage()


def test_a_callback_with_a_nested_repeated_key_is_refused(client, service):
    reference_id = client.post("/api/payments", json=payment(30)).get_json()["data"]["reference_id"]
    clean = json.dumps(callback(reference_id, extra={"bank": "x"}))
    raw = clean.replace('"bank": "x"', '"bank": "x", "bank": "y"').encode()
    assert signed_post(client, raw).status_code == 400
    assert service.ports.records.get_operation(reference_id).status == "PENDING"


def test_the_demo_routes_refuse_a_repeated_key(tmp_path):
    from example_app import create_app

    app = create_app({"TESTING": True, "DECENTRO_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"})
    try:
        client = app.test_client()
        response = _post(client, "/demo/simulate-callback",
                         '{"reference_id": "r-1", "status": "FAILURE", "status": "SUCCESS"}')
        assert response.status_code == 400 and response.get_json()["error"]["code"] == "DUPLICATE_KEY"
        raw = b'{"callbackTxnId": "CB-1", "transactionStatus": "SUCCESS", "referenceId": "a", "referenceId": "b"}'
        ack = client.post("/api/webhooks/decentro", data=raw, content_type="application/json",
                          headers={"X-Decentro-Signature": sign_body(raw, DEMO_WEBHOOK_SECRET)})
        assert (ack.status_code, ack.get_json()) == (400, {"response_code": "CB_E00009"})
    finally:
        app.extensions["decentro"].close()
