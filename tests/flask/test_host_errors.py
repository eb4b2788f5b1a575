"""An error inside a Decentro route reaches the host app as its own errors do: the
``got_request_exception`` signal (Sentry's Flask integration listens to it), Flask's
``PROPAGATE_EXCEPTIONS`` rule, and a logged traceback with no personal data in it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from flask import got_request_exception
from flask_helpers import CONSENT

SECRET_LOOKING = "Asha Verma ABCDE1234F 123456789012"  # synthetic, shaped like what must not leak


def _identity_that_fails() -> str:
    raise RuntimeError(f"session store lost the user {SECRET_LOOKING}")


def _pan_request(client: Any) -> Any:
    return client.post("/api/kyc/pan", json={"pan": "ABCDE1234F", "consent": CONSENT})


def test_an_unexpected_error_fires_got_request_exception_and_answers_the_json_500(make_app, caplog):
    app = make_app(config={"TESTING": False}, identity=_identity_that_fails)
    seen: list[BaseException] = []

    def receiver(sender: Any, exception: BaseException, **_: Any) -> None:
        seen.append(exception)

    got_request_exception.connect(receiver, app)
    try:
        with caplog.at_level(logging.ERROR, logger="flask_decentro"):
            answer = _pan_request(app.test_client())
    finally:
        got_request_exception.disconnect(receiver, app)
    assert answer.status_code == 500
    assert answer.get_json()["error"]["code"] == "INTERNAL_ERROR"
    assert len(seen) == 1 and isinstance(seen[0], RuntimeError)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Traceback (most recent call last)" in logged and "_identity_that_fails" in logged
    assert "RuntimeError" in logged
    for secret in SECRET_LOOKING.split():
        assert secret not in logged


def test_under_testing_the_error_propagates_to_the_test_client(make_app):
    app = make_app(identity=_identity_that_fails)  # TESTING=True: Flask propagates
    with pytest.raises(RuntimeError):
        _pan_request(app.test_client())


def test_propagate_exceptions_set_explicitly_is_honoured_outside_testing(make_app):
    app = make_app(config={"TESTING": False, "PROPAGATE_EXCEPTIONS": True}, identity=_identity_that_fails)
    with pytest.raises(RuntimeError):
        _pan_request(app.test_client())


def test_propagate_exceptions_false_wins_over_testing(make_app):
    app = make_app(config={"PROPAGATE_EXCEPTIONS": False}, identity=_identity_that_fails)
    assert _pan_request(app.test_client()).status_code == 500
