"""Every 503 says when to come back (Retry-After), whatever the rate-limit headers (issue #20).

Found in an attack run: with ``DECENTRO_RATELIMIT_HEADERS`` on, flask-limiter puts a
``Retry-After`` on every answer, which hid that the library's own 503s for a store outage
(``STORE_ERROR``) and a callback it could not store had none; with the headers off they
answered 503 without one.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask_helpers import CONSENT, callback, kyc, signed_post

from decentro_core.errors import StoreError


def _down(*_: Any, **__: Any) -> Any:
    raise StoreError("the database is unavailable")


@pytest.mark.parametrize("headers", [False, True])
def test_a_store_outage_answers_503_with_retry_after(make_app: Any, monkeypatch: Any, headers: bool) -> None:
    app = make_app(DECENTRO_RATELIMIT_HEADERS=headers)
    monkeypatch.setattr(app.extensions["decentro"].service, "verify_pan", _down)
    answer = app.test_client().post("/api/kyc/pan", json=kyc(consent=CONSENT))
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "STORE_ERROR"
    assert int(answer.headers["Retry-After"]) >= 1


def test_a_callback_that_cannot_be_stored_answers_503_with_retry_after(make_app: Any, monkeypatch: Any) -> None:
    app = make_app(DECENTRO_RATELIMIT_HEADERS=False)
    monkeypatch.setattr(app.extensions["decentro"].webhooks, "_store_and_process", _down)
    answer = signed_post(app.test_client(), callback("ref-outage"))
    assert answer.status_code == 503
    assert int(answer.headers["Retry-After"]) >= 1
