"""The OpenAPI document: valid 3.1, complete, the same as the checked-in copy, and served."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask
from openapi_spec_validator import validate

from flask_decentro import Decentro
from flask_decentro.cli import decentro_cli
from flask_decentro.openapi import REQUEST_SCHEMAS, build_spec, spec_json
from flask_decentro.schemas import AadhaarXmlBody
from flask_helpers import CONSENT, build_service

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "docs" / "openapi.json"


def _app(**options: object) -> Flask:
    app = Flask("openapi_test")
    app.config.update(TESTING=True)
    Decentro(app, service=build_service(), **options)
    return app


def _document(app: Flask) -> dict:
    state = app.extensions["decentro"]
    return build_spec(state.settings, state.options)


def test_the_document_is_valid_openapi_3_1():
    document = _document(_app())
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_checked_in_copy_is_what_the_command_writes_now(tmp_path):
    app = Flask("default")  # what `flask decentro openapi` sees in an app with the defaults
    Decentro(app)
    output = tmp_path / "openapi.json"
    result = app.test_cli_runner().invoke(decentro_cli, ["openapi", "--output", str(output)])
    app.extensions["decentro"].close()
    assert result.exit_code == 0, result.output
    assert output.read_text(encoding="utf-8") == CHECKED_IN.read_text(encoding="utf-8"), (
        "docs/openapi.json is stale: run `flask --app example_app decentro openapi --output docs/openapi.json`")


def test_the_command_prints_the_document_without_output():
    app = _app()
    result = app.test_cli_runner().invoke(decentro_cli, ["openapi"])
    assert result.exit_code == 0
    assert json.loads(result.output) == _document(app)


def _rule_path(rule: str) -> str:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


@pytest.mark.parametrize("options", [{}, {"url_prefix": "/kyc-api"}, {"payments_enabled": False}])
def test_every_route_the_blueprint_registers_is_in_the_document_with_its_methods(options):
    app = _app(**options)
    paths = _document(app)["paths"]
    registered = {
        (_rule_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules() if rule.endpoint.startswith("decentro.")
        and not rule.endpoint.endswith((".unrouted", ".unrouted_root"))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    documented = {(path, method) for path, operations in paths.items() for method in operations}
    assert registered == documented
    assert ("/kyc-api/kyc/pan" in paths) == (options.get("url_prefix") == "/kyc-api")


def test_request_bodies_are_the_schemas_the_routes_validate_with():
    schemas = _document(_app())["components"]["schemas"]
    for name, schema in REQUEST_SCHEMAS.items():
        assert set(schemas[name]["properties"]) == {f.data_key or key for key, f in schema().fields.items()}, name
        assert schemas[name]["additionalProperties"] is False
    assert set(schemas["AadhaarXmlRequest"]["properties"]) == set(AadhaarXmlBody().fields) - {"file"}
    assert schemas["PanRequest"]["properties"]["pan"]["pattern"] == "^[A-Z]{5}[0-9]{4}[A-Z]$"  # the core's PAN_RE
    assert schemas["ConsentBody"]["properties"]["purpose"]["minLength"] == 21  # the core's consent rule


def test_payments_document_the_idempotency_key_and_link_to_their_status():
    operation = _document(_app())["paths"]["/api/payments"]["post"]
    assert [p["name"] for p in operation["parameters"]] == ["Idempotency-Key"]
    assert {"409", "422"} <= set(operation["responses"])
    link = operation["responses"]["200"]["links"]["GetPaymentStatus"]
    assert link["parameters"] == {"reference_id": "$response.body#/data/reference_id"}


def test_the_callback_documents_the_configured_signature_header():
    document = _document(_app(DECENTRO_WEBHOOK_SIGNATURE_HEADER="X-Hub-Signature"))
    parameters = document["paths"]["/api/webhooks/decentro"]["post"]["parameters"]
    assert [(p["name"], p["in"]) for p in parameters] == [("X-Hub-Signature", "header")]


def test_the_route_serves_the_document_and_the_setting_turns_it_off():
    app = _app()
    answer = app.test_client().get("/api/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.get_data(as_text=True) == spec_json(_document(app))
    off = _app(DECENTRO_OPENAPI_ENABLED=False).test_client()
    assert off.get("/api/openapi.json").status_code == 404
    assert off.get("/api/docs").status_code == 404


def test_the_docs_page_loads_swagger_ui_from_this_server_only():
    client = _app().test_client()
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "//" not in re.sub(r"<!DOCTYPE[^>]*>", "", html).replace("://", "")  # no scheme-relative URL either
    assert not re.search(r"https?://", html)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/api/docs/swagger-ui-bundle.js" in assets
    for asset in assets:
        with client.get(asset) as answer:
            assert answer.status_code == 200, asset
    assert client.get("/api/docs/LICENSE").status_code == 404  # only the page's own files
    assert _app(DECENTRO_DOCS_ENABLED=False).test_client().get("/api/docs").status_code == 404


def test_the_docs_page_without_its_package_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr("flask_decentro.routes.docs_assets_dir", lambda: None)
    answer = _app().test_client().get("/api/docs")
    assert (answer.status_code, answer.get_json()["error"]["code"]) == (404, "DOCS_NOT_INSTALLED")


def test_a_body_the_document_allows_is_accepted_by_the_route():
    """The example the document implies (its required fields, with sandbox values) passes."""
    client = _app().test_client()
    answer = client.post("/api/kyc/pan", json={"pan": "ABCDE1234F", "consent": CONSENT})
    assert (answer.status_code, answer.get_json()["status"]) == (200, "SUCCESS")


def test_the_docs_page_cannot_be_framed_and_runs_only_its_own_scripts():
    import base64
    import hashlib

    page = _app().test_client().get("/api/docs")
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == "'none'" and page.headers["X-Frame-Options"] == "DENY"
    assert policy["default-src"] == "'none'" and "unsafe-inline" not in page.headers["Content-Security-Policy"]
    inline = re.findall(r"<script>(.*?)</script>", page.get_data(as_text=True), flags=re.S)
    digests = {"'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'" for s in inline}
    assert len(inline) == 1 and policy["script-src"].split() == ["'self'", *digests]
