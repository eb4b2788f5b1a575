"""Configuration layering, start-up validation, the cache port and the state object."""

from __future__ import annotations

import logging

import pytest
from flask import Flask
from flask_caching import Cache
from flask_helpers import build_service, kyc

from decentro_core.errors import ConfigurationError
from decentro_adapters.bootstrap import System
from flask_decentro import FLASK_OPTIONS, Decentro, get_service
from flask_decentro.config import merged_mapping


def test_constructor_beats_app_config_beats_environment_beats_default():
    environ = {"DECENTRO_URL_PREFIX": "/env", "DECENTRO_RATELIMIT": "5 per minute", "DECENTRO_TIMEOUT": "7"}
    config = {"DECENTRO_URL_PREFIX": "/config", "DECENTRO_RATELIMIT": "6 per minute"}
    merged = merged_mapping({"url_prefix": "/ctor"}, config, environ)
    assert (merged["DECENTRO_URL_PREFIX"], merged["DECENTRO_RATELIMIT"], merged["DECENTRO_TIMEOUT"]) == (
        "/ctor", "6 per minute", "7")
    assert "DECENTRO_WEBHOOK_MAX_BYTES" not in merged  # left to the default


def test_decentro_use_mocks_in_app_config_beats_use_mocks_in_the_environment():
    merged = merged_mapping({}, {"DECENTRO_USE_MOCKS": False}, {"USE_MOCKS": "true"})
    assert merged["USE_MOCKS"] is False


def test_an_unknown_constructor_option_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        Decentro(Flask("x"), service=build_service(), url_prefixx="/typo")


def test_every_flask_option_is_documented_once():
    keys = [key for key, _, _ in FLASK_OPTIONS]
    assert len(keys) == len(set(keys)) and all(doc for _, _, doc in FLASK_OPTIONS)


def test_the_url_prefix_comes_from_app_config(make_app):
    app = make_app(config={"DECENTRO_URL_PREFIX": "/decentro"})
    assert app.test_client().post("/decentro/kyc/pan", json=kyc()).status_code == 200


def test_live_mode_without_an_identity_callable_fails_at_init_app():
    app = Flask("live")
    app.config.update(DECENTRO_USE_MOCKS=False, DECENTRO_CLIENT_ID="id", DECENTRO_CLIENT_SECRET="s",
                      DECENTRO_API_KEY="k", DECENTRO_ENCRYPTION_KEYS="x" * 44, DECENTRO_WEBHOOK_SECRET="w" * 32,
                      DECENTRO_AUDIT_KEYS="a" * 43)
    with pytest.raises(ConfigurationError, match="identity"):
        Decentro().init_app(app)
    assert "decentro" not in app.extensions


def test_live_mode_without_credentials_names_what_is_missing():
    with pytest.raises(ConfigurationError, match="DECENTRO_CLIENT_ID"):
        Decentro(Flask("live"), identity=lambda: "u", use_mocks=False)


def test_live_mode_without_a_webhook_secret_fails_unless_signatures_are_switched_off():
    live = {"use_mocks": False, "client_id": "id", "client_secret": "s", "api_key": "k",
            "encryption_keys": "x" * 44, "audit_keys": ("a" * 43,)}
    with pytest.raises(ConfigurationError, match="DECENTRO_WEBHOOK_SECRET"):
        Decentro(Flask("a"), identity=lambda: "u", service=build_service(), **live)
    app = Flask("b")
    Decentro(app, identity=lambda: "u", service=build_service(), DECENTRO_WEBHOOK_REQUIRE_SIGNATURE=False,
             DECENTRO_WEBHOOK_CREDENTIAL="c", **live)
    assert app.extensions["decentro"].webhooks.credential == "c"


def test_mock_mode_without_a_webhook_secret_uses_the_demo_secret_loudly(caplog):
    app = Flask("demo")
    Decentro(app, service=build_service())
    assert "demo-webhook-secret-not-for-production" in app.extensions["decentro"].webhooks.secrets
    assert any(r.levelno == logging.WARNING and "PUBLIC demo secret" in r.getMessage() for r in caplog.records)


def test_in_memory_rate_limit_storage_is_warned_about(caplog):
    Decentro(Flask("mem"), service=build_service(), DECENTRO_WEBHOOK_SECRET="w")
    assert any("IN-MEMORY" in r.getMessage() for r in caplog.records)


def test_the_service_is_reachable_through_current_app(app):
    decentro = Decentro()
    with app.app_context():
        assert get_service() is app.extensions["decentro"].service
        assert decentro.service is get_service()


def test_the_host_apps_flask_caching_backend_becomes_the_cache_port(monkeypatch):
    built = {}

    def fake_build(settings, **given):
        built.update(given)
        return System(build_service())

    monkeypatch.setattr("flask_decentro.extension.build", fake_build)
    app = Flask("cached")
    app.config.update(CACHE_TYPE="SimpleCache")
    cache = Cache(app)
    Decentro(app, DECENTRO_WEBHOOK_SECRET="w")
    port = built["cache"]
    port.set("k", b"sealed", ttl=60)
    assert port.get("k") == b"sealed"
    with app.app_context():
        assert cache.get("decentro:k") == b"sealed"


def test_without_flask_caching_the_service_builds_its_own_cache(monkeypatch):
    built = {}
    monkeypatch.setattr("flask_decentro.extension.build",
                        lambda settings, **given: built.update(given) or System(build_service()))
    Decentro(Flask("plain"), DECENTRO_WEBHOOK_SECRET="w")
    assert "cache" not in built
