"""``python -m bench.aadhaar_refusal`` runs its cases in fresh processes and reports outcomes.

A smoke run of two cheap cases: it proves the harness works; no timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_refusal_bench_reports_each_case_from_a_fresh_process():
    command = [sys.executable, "-m", "bench.aadhaar_refusal", "--repeats", "1", "--json",
               "--case", "many_elements", "--case", "huge_text", "--case", "genuine"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads(done.stdout)
    cases = results["cases"]
    assert results["max_bytes"] == 5 * 1024 * 1024
    assert cases["many_elements"]["outcome"] == "AADHAAR_XML_UNSAFE"
    assert cases["many_elements"]["bytes"] > 4_500_000
    assert cases["huge_text"]["outcome"] == "AADHAAR_XML_UNSAFE"
    assert cases["genuine"]["outcome"].startswith("key-")  # verified, by the pinned test key
    for case in cases.values():
        assert case["cpu_ms"] >= 0 and isinstance(case["peak_rss_growth_kib"], int)
