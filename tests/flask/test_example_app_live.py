"""The demo app starts in live mode, as the README's "Going live" sets it up, against the
offline sandbox: it signs a user in (demo sign-in, the session as ``identity``), verifies a
PAN and opens a payment through the live gateway."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask_helpers import CONSENT, payment

from decentro_sandbox.sandbox.server import start_sandbox
from decentro_core.errors import ConfigurationError
from example_app import create_app

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))
from bench.common import sandbox_env  # noqa: E402

LIVE_CONFIG = {"TESTING": True, "SECRET_KEY": "test-only-session-key"}


@pytest.fixture
def live_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with start_sandbox(seed=7) as sandbox:
        for name, value in {**sandbox_env(sandbox.url), "DECENTRO_WEBHOOK_SECRET": "w" * 32}.items():
            monkeypatch.setenv(name, value)
        yield


@pytest.fixture
def live_app(live_env: None) -> Iterator[Flask]:
    app = create_app(LIVE_CONFIG)
    yield app
    app.extensions["decentro"].close()


def test_the_demo_starts_in_live_mode_and_serves_a_signed_in_user(live_app):
    state = live_app.extensions["decentro"]
    assert state.settings.use_mocks is False and state.identity is not None
    client = live_app.test_client()
    assert "Live mode" in client.get("/").get_data(as_text=True)
    anonymous = client.post("/api/kyc/pan", json={"pan": "ABCDE1234F", "consent": CONSENT})
    assert anonymous.status_code == 401
    assert client.post("/demo/sign-in", json={"user_id": "live-demo-user"}).status_code == 200
    pan = client.post("/api/kyc/pan", json={"pan": "ABCDE1234F", "consent": CONSENT})
    assert (pan.status_code, pan.get_json()["status"]) == (200, "SUCCESS"), pan.get_json()
    opened = client.post("/api/payments", json=payment(10))
    assert opened.status_code == 200 and opened.get_json()["data"]["reference_id"], opened.get_json()


def test_the_demo_in_live_mode_needs_a_session_secret(live_env):
    with pytest.raises(ConfigurationError, match="FLASK_SECRET_KEY"):
        create_app({"TESTING": True})


def test_the_live_demo_sign_in_refuses_a_repeated_user_id(live_app):
    client = live_app.test_client()
    response = client.post("/demo/sign-in", data=b'{"user_id": "ravi", "user_id": "admin"}',
                           content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "DUPLICATE_KEY"
    assert client.post("/api/kyc/pan", json={"pan": "ABCDE1234F", "consent": CONSENT}).status_code == 401
