"""The payment routes over the mock gateway's UPI amounts (10 success, 20 failure, 30 pending)."""

from __future__ import annotations

import pytest
from flask_helpers import payment


def _open(client, amount):
    response = client.post("/api/payments", json=payment(amount))
    assert (response.status_code, response.get_json()["status"]) == (200, "PENDING")
    return response.get_json()["data"]["reference_id"]


@pytest.mark.parametrize(("amount", "final"), [(10, "SUCCESS"), (20, "FAILURE"), (30, "PENDING")])
def test_a_payment_opens_pending_and_its_status_follows_the_sandbox_amounts(client, amount, final):
    reference_id = _open(client, amount)
    status = client.get(f"/api/payments/{reference_id}")
    assert (status.status_code, status.get_json()["status"]) == (200, final)


def test_an_unknown_payment_reference_answers_404(client):
    response = client.get("/api/payments/no-such-reference")
    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "UNKNOWN_REFERENCE")


def test_a_payment_body_with_bad_fields_answers_400_with_each_field(client, service):
    response = client.post("/api/payments", json={"amount": "ten", "currency": "USD", "tip": 1})
    assert response.status_code == 400
    assert {"amount", "currency", "customer_details", "tip"} <= set(response.get_json()["error"]["fields"])
    assert service.ports.gateway.requests == []


def test_a_non_positive_amount_is_refused_by_the_core(client):
    response = client.post("/api/payments", json=payment(0))
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "VALIDATION_ERROR")


def test_with_an_identity_a_payment_is_visible_to_its_owner_only(make_app):
    users = iter(["owner", "owner", "stranger"])
    app = make_app(identity=lambda: next(users))
    client = app.test_client()
    reference_id = client.post("/api/payments", json=payment(10)).get_json()["data"]["reference_id"]
    assert client.get(f"/api/payments/{reference_id}").status_code == 200
    assert client.get(f"/api/payments/{reference_id}").status_code == 404


def test_an_idempotency_key_header_makes_a_repeated_post_answer_the_first_payment(client, service):
    headers = {"Idempotency-Key": "checkout-7f3a"}
    first = client.post("/api/payments", json=payment(30), headers=headers)
    again = client.post("/api/payments", json=payment(30), headers=headers)
    changed = client.post("/api/payments", json=payment(31), headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.get_json()["data"]["reference_id"] == first.get_json()["data"]["reference_id"]
    assert again.get_json()["data"]["idempotent_replay"] is True
    assert (changed.status_code, changed.get_json()["error"]["code"]) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert len([r for r in service.ports.gateway.requests if r.method == "POST"]) == 1
