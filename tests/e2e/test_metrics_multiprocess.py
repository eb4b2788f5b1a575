"""/metrics under gunicorn with several workers adds up every worker (PROMETHEUS_MULTIPROC_DIR).

gunicorn serves a small app with the extension (mock mode, SQLite) and ``--max-requests 4``,
so workers are replaced while the requests run and at least five processes count some of
them: one scrape must still report every call, whichever worker answers it.
"""

from __future__ import annotations

import os
import re
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client", reason="the metrics extra is part of the dev extra")
pytest.importorskip("gunicorn", reason="gunicorn is part of the dev extra")

import requests  # noqa: E402

from bench.servers import ROOT, gunicorn_app, no_control_socket  # noqa: E402
from decentro_adapters.sql.migrations import upgrade  # noqa: E402

pytestmark = pytest.mark.e2e

APP = textwrap.dedent("""
    from flask import Flask
    from flask_decentro import Decentro

    def create_app():
        app = Flask("metrics_multiprocess")
        app.add_url_rule("/health", "health", lambda: "ok")
        Decentro(app)
        return app
""")
CONSENT = {"given": True, "text": "I agree to this PAN check.",
           "purpose": "Demo customer onboarding identity verification"}
CALLS = 20


def test_a_scrape_adds_up_every_gunicorn_worker(tmp_path: Path) -> None:
    (tmp_path / "metrics_app.py").write_text(APP)
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    database = f"sqlite:///{tmp_path}/decentro.sqlite3"
    upgrade(database)
    keep = {k: v for k, v in os.environ.items() if not k.startswith("DECENTRO_") and k not in {"USE_MOCKS"}}
    env = {**keep, "PYTHONPATH": ROOT, "USE_MOCKS": "true", "DECENTRO_DATABASE_URL": database,
           "DECENTRO_METRICS": "prometheus", "DECENTRO_METRICS_ENDPOINT": "/metrics",
           "DECENTRO_RATELIMIT": "1000 per minute", "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}
    options = ["-w", "2", "--max-requests", "4", "--timeout", "60", "--graceful-timeout", "5",
               "--pythonpath", str(tmp_path), *no_control_socket()]
    with gunicorn_app("metrics_app:create_app()", env, options=options,
                      log_path=str(tmp_path / "gunicorn.log")) as server:
        def verify(n: int) -> int:
            body = {"pan": f"ABCPE{1100 + n}F", "user_id": f"user-{n}", "consent": CONSENT}
            return requests.post(server.url + "/api/kyc/pan", json=body, timeout=30).status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            assert list(pool.map(verify, range(CALLS))) == [200] * CALLS
        scraped = requests.get(server.url + "/metrics", timeout=30)
    assert scraped.status_code == 200
    found = re.search(r'^decentro_calls_total\{module="kyc",operation="pan",outcome="SUCCESS"\} (\S+)$',
                      scraped.text, flags=re.M)
    assert found is not None and float(found.group(1)) == CALLS
    counting = {p.name for p in multiproc.glob("counter_*.db")}
    assert len(counting) >= 5, counting  # 20 requests, 4 per worker: the sum spans several processes
