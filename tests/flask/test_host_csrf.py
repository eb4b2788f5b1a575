"""A host app with Flask-WTF's global ``CSRFProtect``: the Decentro blueprint exempts itself
(its JSON routes need a Content-Type no cross-site form can send, callbacks are signed), so
the routes work, whichever of the two extensions the host sets up first. The one form route,
the Aadhaar file upload, refuses what a browser says came from another site, as a token check
would. The host's own form routes stay protected."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask_helpers import CONSENT, WEBHOOK_SECRET, build_service, callback, kyc, signed_post

from flask_decentro import Decentro

flask_wtf_csrf = pytest.importorskip("flask_wtf.csrf", reason="flask-wtf is part of the dev extra")


def _host_app(*, csrf_first: bool) -> Flask:
    app = Flask("host_with_csrf")
    app.config.update(SECRET_KEY="test-only-secret", TESTING=True)
    csrf = flask_wtf_csrf.CSRFProtect()
    if csrf_first:
        csrf.init_app(app)
    Decentro(app, service=build_service(), DECENTRO_WEBHOOK_SECRET=WEBHOOK_SECRET)
    if not csrf_first:
        csrf.init_app(app)

    @app.post("/loans")
    def apply_for_loan() -> str:
        return "applied"

    return app


def _upload(client: Any, **headers: str) -> Any:
    data = {"share_code": "1234", "consent": json.dumps(CONSENT), "file": (io.BytesIO(b"xml_content"), "a.xml")}
    return client.post("/api/kyc/aadhaar-xml", data=data, content_type="multipart/form-data", headers=headers)


@pytest.mark.parametrize("csrf_first", [True, False], ids=["csrf-before-decentro", "csrf-after-decentro"])
def test_the_api_and_the_webhook_work_under_a_global_csrf_protect(csrf_first):
    client = _host_app(csrf_first=csrf_first).test_client()
    answer = client.post("/api/kyc/pan", json=kyc())
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json()["status"] == "SUCCESS"
    assert signed_post(client, callback("not-ours")).status_code == 200
    assert _upload(client).get_json()["status"] == "SUCCESS"


@pytest.mark.parametrize("csrf_first", [True, False], ids=["csrf-before-decentro", "csrf-after-decentro"])
def test_the_hosts_own_form_routes_stay_protected(csrf_first):
    client = _host_app(csrf_first=csrf_first).test_client()
    assert client.post("/loans", data={"amount": "1000"}).status_code == 400  # no CSRF token


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "https://attacker.example"},
    {"Origin": "null"},
], ids=["fetch-metadata", "foreign-origin", "opaque-origin"])
def test_a_form_upload_from_another_site_is_refused(headers):
    client = _host_app(csrf_first=True).test_client()
    answer = _upload(client, **headers)
    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "CROSS_SITE_REQUEST"


def test_a_same_origin_form_upload_is_accepted():
    client = _host_app(csrf_first=True).test_client()
    answer = _upload(client, **{"Sec-Fetch-Site": "same-origin", "Origin": "http://localhost"})
    assert answer.status_code == 200 and answer.get_json()["status"] == "SUCCESS"


def test_an_origin_differing_only_in_scheme_is_the_same_host_behind_a_tls_proxy():
    client = _host_app(csrf_first=True).test_client()
    assert _upload(client, Origin="https://localhost").status_code == 200
