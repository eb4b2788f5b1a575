"""The FastAPI example: a PAN check, a payment and a signed callback on the framework-free core."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from decentro_core import Settings, sign_body
from examples.fastapi_app.app import create_app

SECRET = "fastapi-example-webhook-secret-0123456789"
USER = {"X-User-Id": "user-7"}
CONSENT = {"given": True, "text": "I agree that my PAN is verified through Decentro.",
           "purpose": "Customer onboarding identity verification"}


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings.from_mapping({"USE_MOCKS": "true", "DECENTRO_WEBHOOK_SECRET": SECRET,
                                      "DECENTRO_DATABASE_URL": f"sqlite:///{tmp_path / 'fastapi.sqlite3'}"})
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def _signed(client: TestClient, payload: dict[str, object], secret: str = SECRET) -> object:
    raw = json.dumps(payload).encode()
    return client.post("/webhooks/decentro", content=raw,
                       headers={"X-Decentro-Signature": sign_body(raw, secret), "Content-Type": "application/json"})


def test_a_consented_pan_check_succeeds_and_bad_input_is_a_400_naming_the_field(client: TestClient) -> None:
    ok = client.post("/kyc/pan", json={"pan": "ABCDE1234F", "name": "Testa Synthetica", "consent": CONSENT},
                     headers=USER)
    assert ok.status_code == 200 and ok.json()["status"] == "SUCCESS"
    bad = client.post("/kyc/pan", json={"pan": "NOT-A-PAN", "consent": CONSENT}, headers=USER)
    assert bad.status_code == 400 and set(bad.json()["error"]["fields"]) == {"pan"}
    assert "NOT-A-PAN" not in bad.text


def test_a_payment_settles_by_a_signed_callback_and_is_visible_to_its_owner_only(client: TestClient) -> None:
    created = client.post("/payments", json={"amount": 30}, headers=USER).json()  # the sandbox keeps 30 PENDING
    reference = created["data"]["reference_id"]
    assert created["status"] == "PENDING"

    forged = _signed(client, {"callbackTxnId": "CB-F", "transactionStatus": "SUCCESS", "referenceId": reference},
                     secret="not-the-secret")
    assert forged.status_code == 401  # type: ignore[attr-defined]
    assert client.get(f"/payments/{reference}", headers=USER).json()["status"] == "PENDING"

    ack = _signed(client, {"callbackTxnId": "CB-1", "transactionStatus": "SUCCESS", "referenceId": reference})
    assert ack.status_code == 200 and ack.json() == {"response_code": "CB_S00000"}  # type: ignore[attr-defined]
    assert client.get(f"/payments/{reference}", headers=USER).json()["status"] == "SUCCESS"

    stranger = client.get(f"/payments/{reference}", headers={"X-User-Id": "user-8"})
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "UNKNOWN_REFERENCE"


def test_bad_shapes_never_echo_personal_data_and_bad_json_is_a_400(client: TestClient) -> None:
    unconsented = client.post("/kyc/pan", json={"pan": "ABCDE1234F", "name": "Asha Verma"}, headers=USER)
    assert unconsented.status_code == 400 and "consent" in unconsented.json()["error"]["fields"]
    assert "ABCDE1234F" not in unconsented.text and "Asha" not in unconsented.text
    broken = client.post("/payments", content=b"{not json", headers={**USER, "Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_body_naming_one_key_twice_is_a_400_duplicate_key(client: TestClient) -> None:
    raw = b'{"amount": 10, "amount": 99999, "customer_details": {"name": "Testa Synthetica"}}'
    response = client.post("/payments", content=raw, headers={**USER, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "DUPLICATE_KEY"
