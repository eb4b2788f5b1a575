"""Live payments need DECENTRO_PAYEE_ACCOUNT: checked at init_app, or the routes switched off."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask
from flask_helpers import build_service, payment

from decentro_adapters.vault.fernet import FernetVault
from decentro_core.errors import ConfigurationError
from flask_decentro import Decentro


def _live(**extra: object) -> dict[str, object]:
    return {"use_mocks": False, "client_id": "id", "client_secret": "s", "api_key": "k",
            "encryption_keys": FernetVault.generate_key(), "audit_keys": ("a" * 43,),
            "DECENTRO_WEBHOOK_SECRET": "w" * 32, **extra}


def test_live_mode_without_a_payee_account_is_refused_at_init_app():
    app = Flask("live")
    with pytest.raises(ConfigurationError, match="DECENTRO_PAYEE_ACCOUNT"):
        Decentro(app, identity=lambda: "u", **_live())
    assert "decentro" not in app.extensions


def test_a_hand_built_live_service_without_a_payee_is_refused_at_init_app_too():
    service = build_service()
    service.settings = dataclasses.replace(service.settings, use_mocks=False)
    with pytest.raises(ConfigurationError, match="DECENTRO_PAYEE_ACCOUNT"):
        Decentro(Flask("hand-built"), identity=lambda: "u", service=service, **_live())


@pytest.mark.parametrize("switch", [{"payments_enabled": False}, {"DECENTRO_PAYMENTS_ENABLED": "false"}])
def test_payments_switched_off_start_without_a_payee_and_mount_no_payment_route(switch):
    app = Flask("no-payments")
    Decentro(app, identity=lambda: "u", **_live(**switch))
    try:
        client = app.test_client()
        created = client.post("/api/payments", json=payment(10))
        assert (created.status_code, created.get_json()["error"]["code"]) == (404, "NOT_FOUND")
        assert client.get("/api/payments/some-reference").status_code == 404
        assert not [r for r in app.url_map.iter_rules() if "/payments" in r.rule]
    finally:
        app.extensions["decentro"].close()


def test_live_mode_with_a_payee_account_mounts_the_payment_routes():
    app = Flask("payee")
    Decentro(app, identity=lambda: "u", **_live(DECENTRO_PAYEE_ACCOUNT="PAYEE0001"))
    try:
        assert {r.rule for r in app.url_map.iter_rules()} >= {"/api/payments", "/api/payments/<reference_id>"}
    finally:
        app.extensions["decentro"].close()


def test_a_payee_missing_at_call_time_is_a_json_503_not_a_500(make_app):
    app = make_app()  # a hand-built service whose settings change after init_app
    service = app.extensions["decentro"].service
    service.settings = dataclasses.replace(service.settings, use_mocks=False, payee_account="")
    answer = app.test_client().post("/api/payments", json=payment(10))
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "FAILURE", "error": {
        "code": "CONFIGURATION_ERROR", "message": "This operation is not configured on this server"}}
