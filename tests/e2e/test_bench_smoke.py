"""``python -m bench --quick`` runs end to end and writes its results and its page.

A smoke run with tiny counts: it proves the harness works (sandbox, services, gunicorn,
two processes), not how fast anything is, so nothing here asserts a timing.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
METRICS = {"gateway_vs_raw_no_env", "kyc_full_pg_redis_vs_raw", "cache_hit_pg_redis_vs_raw", "route_vs_bare_gunicorn",
           "webhook_vs_bare_gunicorn", "async_wall_vs_ideal", "fault_throughput_vs_clean", "pg_round_trips_per_kyc_miss",
           "redis_round_trips_per_kyc_miss", "rss_growth_pct", "upstream_calls_per_unique_document",
           "raw_requests_ms", "raw_no_env_ms", "gateway_vs_raw", "kyc_full_sqlite_vs_raw", "cache_hit_sqlite_vs_raw",
           "pg_commits_per_kyc_miss", "pg_round_trips_per_kyc_hit", "pg_commits_per_kyc_hit",
           "fault_throughput_vs_clean_backoff_0_1"}

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
TIMEOUT = 900  # seconds: bounds a hang; the quick run takes seconds on an idle machine


def test_the_quick_bench_writes_every_metric_with_its_verdict_and_the_page(tmp_path, postgres_url, redis_url):
    missing = [tool for tool in ("wrk", "redis-server") if shutil.which(tool) is None]
    if missing:  # Debian's packages wrk and redis-server; CI (.ci/run) installs them
        message = f"{', '.join(missing)} UNAVAILABLE, bench smoke run not run: not on the PATH"
        if os.environ.get("DECENTRO_REQUIRE_SERVICES") == "1":
            pytest.fail(message + " (DECENTRO_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    results, docs = tmp_path / "results.json", tmp_path / "benchmarks.md"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--results", str(results), "--docs", str(docs)],
                          cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(results.read_text())
    assert data["quick"] is True and set(data["metrics"]) == METRICS
    for name, metric in data["metrics"].items():
        assert isinstance(metric["value"], float) and metric["value"] >= 0, name
        assert metric["met"] in (True, False, None)
    assert data["details"]["upstream"]["errors"] == 0
    wrk = data["details"]["wrk"]
    assert wrk["pan"]["non_2xx"] == wrk["webhook"]["non_2xx"] == 0
    assert data["details"]["async"]["succeeded"] == data["details"]["async"]["calls"]
    assert data["details"]["throughput"]["faults"]["untyped"] == 0
    assert data["details"]["faults"]["unexpected"] == []
    page = docs.read_text()
    assert "| `route_vs_bare_gunicorn` |" in page and "python -m bench --quick" in page
    assert "rss_growth_pct" in done.stdout
