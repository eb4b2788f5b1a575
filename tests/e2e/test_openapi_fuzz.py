"""Schemathesis against the app over real HTTP, from the document the app serves.

Two servers, each a Flask app with the extension under werkzeug's threaded server on a free
loopback port: mock mode on SQLite, and live mode against ``decentro-sandbox`` (in a thread) on
a fresh PostgreSQL database. Every operation of ``<prefix>/openapi.json`` is generated from
(valid and invalid inputs alike), then a stateful run follows the document's links (open a
payment, read its status by the reference id, settle it by a signed callback). Callbacks are
signed by a hook with the secret the test configured, over the exact bytes sent.

Checks on every answer: no 5xx, status code, content type, headers and body as documented,
an input the document calls invalid refused (4xx), and no personal data of the request echoed
back (:func:`no_personal_data`). The run is
bounded (``MAX_EXAMPLES`` per operation and mode) and derandomized: the same cases every run.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.serving import make_server

from decentro_sandbox.sandbox.server import start_sandbox
from decentro_adapters.vault.fernet import FernetVault
from decentro_core.webhooks import sign_body
from flask_decentro import Decentro

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))
from bench.common import sandbox_env  # noqa: E402

pytestmark = pytest.mark.e2e

WEBHOOK_SECRET = "fuzz-webhook-secret-synthetic-0123456789"  # >= 32 characters: live mode's rule
MAX_EXAMPLES = 40       # per operation and generation mode (positive, negative)
STATEFUL_EXAMPLES = 25  # scenarios of the stateful run, each up to STATEFUL_STEPS calls
STATEFUL_STEPS = 6
LIMITS = "100000 per minute"  # the fuzzer is one client: the limits are tested elsewhere
HYPOTHESIS = settings(
    max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None, print_blob=False,
    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection]
CASES: Counter[str] = Counter()  # generated and sent, by server: docs/e2e.md reports them


# -- the custom check and the signing hook ----------------------------------------------------

PERSONAL_FIELDS = frozenset({"pan", "account_number", "aadhaar_number", "phone", "mobile", "email", "upi_id",
                             "otp", "share_code", "xml", "xml_base64", "zip_base64", "name"})
NAMES = frozenset({"name"})  # a registry's answer may carry the holder's name: errors only


def _personal_values(value: Any, key: str = "", *, in_error: bool) -> Iterator[str]:
    """The request's personal values worth searching for (long enough not to match by chance)."""
    if isinstance(value, dict):
        for name, inner in value.items():
            yield from _personal_values(inner, str(name), in_error=in_error)
    elif isinstance(value, list):
        for inner in value:
            yield from _personal_values(inner, key, in_error=in_error)
    elif isinstance(value, str) and key in PERSONAL_FIELDS and (in_error or key not in NAMES):
        text = value.strip()
        if len(text) >= 6 and len(set(text)) > 1:  # "000000" may sit in any generated id by chance
            yield text


@schemathesis.check
def no_personal_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """No document number, contact, OTP, share code or file of the request is in the answer
    (body or headers); an error answer carries no name either."""
    if not isinstance(case.body, dict):
        return None
    answer = (response.text or "") + json.dumps(dict(response.headers))
    folded = answer.casefold()
    for value in set(_personal_values(case.body, in_error=response.status_code >= 400)):
        if value.casefold() in folded or json.dumps(value)[1:-1].casefold() in folded:
            raise AssertionError(f"The answer ({response.status_code}) echoes a personal value of the request")
    return True


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Decentro's callbacks carry an HMAC of the exact body: sign the bytes that are sent."""
    if not case.operation.path.endswith("/webhooks/decentro"):
        return
    raw = json.dumps(case.body).encode() if isinstance(case.body, (dict, list, str, int, float, bool)) else b""
    kwargs["data"] = raw
    case.headers = {**(case.headers or {}), "X-Decentro-Signature": sign_body(raw, WEBHOOK_SECRET),
                    "Content-Type": "application/json"}


# -- the servers ------------------------------------------------------------------------------


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """``app`` on werkzeug's threaded server on a free loopback port, until the block ends."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="fuzz-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()
        app.extensions["decentro"].close()


@contextmanager
def _clean_environment() -> Iterator[None]:
    """The app reads only what the test gives it, not the developer's DECENTRO_* settings."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if (name.startswith("DECENTRO_") and not name.startswith("DECENTRO_TEST_")) or name in {
                    "USE_MOCKS", "DATABASE_URL"}:
                patch.delenv(name)
        yield


def _common() -> dict[str, Any]:
    return {"DECENTRO_WEBHOOK_SECRET": WEBHOOK_SECRET, "DECENTRO_RATELIMIT": LIMITS,
            "DECENTRO_STATUS_RATELIMIT": LIMITS}


@pytest.fixture(scope="module")
def mock_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Mock mode (the in-process emulator), SQLite in a temporary directory; demo identity."""
    database = tmp_path_factory.mktemp("fuzz") / "decentro.sqlite3"
    with _clean_environment():
        app = Flask("fuzz_mock")
        Decentro(app, USE_MOCKS=True, DECENTRO_DATABASE_URL=f"sqlite:///{database}",
                 DECENTRO_ENCRYPTION_KEYS=FernetVault.generate_key(), **_common())
    with serve(app) as url:
        yield url


@contextmanager
def _postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for the module, upgraded as a deploy does, then dropped."""
    import psycopg2

    from decentro_adapters.sql.migrations import upgrade

    admin_url = os.environ.get("DECENTRO_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        admin = psycopg2.connect(admin_url, connect_timeout=3)
    except psycopg2.Error as exc:
        message = f"PostgreSQL UNAVAILABLE, test not run: {admin_url}: {str(exc).strip()}"
        if os.environ.get("DECENTRO_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (DECENTRO_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    admin.autocommit = True
    name = "decentro_fuzz_" + secrets.token_hex(6)
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    try:
        upgrade(url)
        yield url
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="module")
def live_server() -> Iterator[str]:
    """Live mode against decentro-sandbox (its magic delays shortened), PostgreSQL; a signed-in user."""
    with _postgres_database() as database, start_sandbox(seed=13, timeout_delay=0.2) as sandbox:
        with _clean_environment():
            app = Flask("fuzz_live")
            Decentro(app, identity=lambda: "fuzz-user", DECENTRO_DATABASE_URL=database, DECENTRO_TIMEOUT=2,
                     DECENTRO_MAX_RETRIES=1, DECENTRO_BACKOFF_BASE=0.01, **sandbox_env(sandbox.url), **_common())
        with serve(app) as url:
            yield url


# An invalid input is refused with a 4xx the document names: 413 too (an over-long field can make
# the body larger than the route's limit, refused before it is parsed).
REFUSALS = ["400", "401", "404", "405", "409", "413", "415", "422", "429"]


def _schema(base_url: str) -> Any:
    config = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}})
    schema = schemathesis.openapi.from_url(base_url + "/api/openapi.json", config=config)
    schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True)
    return schema


@pytest.fixture(scope="module")
def mock_schema(mock_server: str) -> Any:
    return _schema(mock_server)


@pytest.fixture(scope="module")
def live_schema(live_server: str) -> Any:
    return _schema(live_server)


# -- the runs ---------------------------------------------------------------------------------

# Every operation of the checked-in document (tests/flask/test_openapi.py keeps it current).
DOCUMENT = json.loads((ROOT / "docs" / "openapi.json").read_text(encoding="utf-8"))
OPERATIONS = [(method.upper(), path) for path, methods in DOCUMENT["paths"].items() for method in methods]


def _modes(method: str, path: str) -> list[schemathesis.GenerationMode]:
    """Valid inputs always; invalid ones where the document constrains an input (a body, an
    enum or pattern): an operation without one has no invalid request to make."""
    definition = DOCUMENT["paths"][path][method.lower()]
    constrained = "requestBody" in definition or any(
        set(parameter.get("schema", {})) - {"type"} for parameter in definition.get("parameters", []))
    modes = [schemathesis.GenerationMode.POSITIVE]
    return modes + [schemathesis.GenerationMode.NEGATIVE] if constrained else modes


def _fuzz(schema: Any, method: str, path: str, server: str) -> None:
    """``MAX_EXAMPLES`` cases of each mode for one operation, each sent and checked."""
    operation = schema[path][method]
    for mode in _modes(method, path):
        @given(case=operation.as_strategy(generation_mode=mode))
        @HYPOTHESIS
        def run(case: Any) -> None:
            CASES[server] += 1
            response = case.call()
            case.validate_response(response, checks=CHECKS, additional_checks=[no_personal_data])

        run()


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_mock_mode_on_sqlite_answers_every_case_as_documented(mock_schema: Any, method: str, path: str) -> None:
    _fuzz(mock_schema, method, path, "mock")


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
def test_live_mode_against_the_sandbox_on_postgresql_answers_every_case_as_documented(
        live_schema: Any, method: str, path: str) -> None:
    _fuzz(live_schema, method, path, "live")


def _stateful(schema: Any, server: str) -> None:
    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any) -> None:
            CASES[server + "-stateful"] += 1
            case.validate_response(response, checks=CHECKS, additional_checks=[no_personal_data])

    Workflow.run(settings=settings(HYPOTHESIS, max_examples=STATEFUL_EXAMPLES, stateful_step_count=STATEFUL_STEPS))


def test_mock_mode_stateful_payment_status_and_callback(mock_schema: Any) -> None:
    _stateful(mock_schema, "mock")
    assert CASES["mock-stateful"] > STATEFUL_EXAMPLES  # the links were followed: more than one call each


def test_live_mode_stateful_payment_status_and_callback(live_schema: Any) -> None:
    _stateful(live_schema, "live")
    assert CASES["live-stateful"] > STATEFUL_EXAMPLES


def test_the_personal_data_check_can_fail() -> None:
    from types import SimpleNamespace

    case = SimpleNamespace(body={"pan": "ABCDE1234F", "customer_details": {"name": "Testa Synthetica"}})
    clean = SimpleNamespace(status_code=200, text='{"status": "SUCCESS"}', headers={})
    named = SimpleNamespace(status_code=200, text='{"registered_name": "Testa Synthetica"}', headers={})
    assert no_personal_data(None, clean, case) is True
    assert no_personal_data(None, named, case) is True  # a registry may answer the holder's name
    for echo in (SimpleNamespace(status_code=200, text='{"pan": "abcde1234f"}', headers={}),
                 SimpleNamespace(status_code=400, text='{"error": "Testa Synthetica"}', headers={}),
                 SimpleNamespace(status_code=404, text="", headers={"X-Debug": "ABCDE1234F"})):
        with pytest.raises(AssertionError, match="echoes"):
            no_personal_data(None, echo, case)


def test_every_documented_operation_was_fuzzed_in_both_modes(mock_schema: Any, live_schema: Any) -> None:
    """Runs last in this module: the counts above cover each server (docs/e2e.md cites them)."""
    print(f"\nschemathesis cases sent: {dict(sorted(CASES.items()))} over {len(OPERATIONS)} operations")
    assert CASES["mock"] >= len(OPERATIONS) and CASES["live"] >= len(OPERATIONS)
