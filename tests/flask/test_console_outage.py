"""The console during a database outage: 503 with its own page, one masked WARNING, no traceback.

A real outage of the console's PostgreSQL database (new connections refused, open ones
terminated), not a mock: the store's driver error is what the console meets in production.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import urlsplit

import pytest
from flask import Flask

from flask_decentro import Decentro

PREFIX = "/decentro/console"
PAGES = ("/", "/payments", "/payments/ref-1", "/callbacks", "/events", "/audit", "/consents")


def _allow_connections(url: str, allowed: bool) -> None:
    import psycopg2

    name = urlsplit(url).path.lstrip("/")
    admin = psycopg2.connect(os.environ.get("DECENTRO_TEST_DATABASE_URL",
                                            "postgresql://postgres@127.0.0.1:5432/postgres"), connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        if not allowed:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (name,))
    admin.close()


@pytest.fixture
def console(postgres_url: str):
    app = Flask("console_outage")
    # TESTING off: an unhandled error is answered (500) and logged as in production, not raised.
    app.config.update(TESTING=False, SECRET_KEY="console-test-secret", DECENTRO_DATABASE_URL=postgres_url,
                      DECENTRO_WEBHOOK_SECRET="w" * 32)
    Decentro(app, operator=lambda: True)
    assert app.test_client().get(PREFIX + "/").status_code == 200  # up: the pool holds a connection
    _allow_connections(postgres_url, False)
    try:
        yield app
    finally:
        _allow_connections(postgres_url, True)
        app.extensions["decentro"].close()


def test_a_database_outage_answers_503_with_the_consoles_page_and_one_masked_line(console, caplog):
    client = console.test_client()
    for path in PAGES:
        caplog.clear()
        with caplog.at_level(logging.INFO):
            response = client.get(PREFIX + path)
        text = response.get_data(as_text=True)
        assert response.status_code == 503, (path, text[:200])
        assert response.mimetype == "text/html" and "database" in text.lower() and "console.css" in text
        assert response.headers["Retry-After"] and response.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert not any(r.exc_info for r in caplog.records), path  # no traceback
        assert "psycopg2" not in caplog.text and "Traceback" not in caplog.text
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "STORE_ERROR" in warnings[0].getMessage(), [r.getMessage() for r in warnings]
