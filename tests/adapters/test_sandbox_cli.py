"""The ``decentro-sandbox`` command: flags become a fault plan; the process serves and stops."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import requests
import test_emulator_support as req
from test_sandbox_support import KYC_HEADERS

from decentro_sandbox.sandbox import FaultPlan, Latency
from decentro_sandbox.sandbox.__main__ import build_parser, options_from_args


def _options(*argv: str) -> dict:
    return options_from_args(build_parser().parse_args(list(argv)))


def test_the_defaults_are_loopback_port_8765_with_credentials():
    options = _options()
    assert (options["host"], options["port"]) == ("127.0.0.1", 8765)
    assert options["credentials"].client_id == "sandbox-client-id"
    assert _options("--no-auth")["credentials"] is None


def test_fault_latency_and_random_flags_become_a_plan(tmp_path):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"faults": [{"path": "*", "kind": "reset"}]}))
    options = _options("--faults", str(plan_file), "--fault", "/v2/payments/upi/link:503:2",
                       "--fault", "*:delay:1:250", "--latency", "normal:20:5", "--random-faults", "0.2")
    plan = options["faults"]
    assert plan["faults"] == [
        {"path": "*", "kind": "reset"},
        {"path": "/v2/payments/upi/link", "kind": "503", "count": 2},
        {"path": "*", "kind": "delay", "count": 1, "delay_ms": 250.0},
    ]
    assert plan["latency"] == {"kind": "normal", "mean_ms": 20.0, "stddev_ms": 5.0}
    assert plan["random"]["rate"] == 0.2
    FaultPlan().load(plan)  # the plan the flags make is one the server accepts


def test_latency_samples_follow_their_distribution_and_never_go_negative():
    import random

    rng = random.Random(0)
    assert Latency.from_json({"kind": "fixed", "ms": 40}).sample_seconds(rng) == 0.04
    uniform = [Latency.from_json({"kind": "uniform", "low_ms": 10, "high_ms": 20}).sample_seconds(rng)
               for _ in range(50)]
    assert all(0.01 <= s <= 0.02 for s in uniform)
    normal = Latency.from_json({"kind": "normal", "mean_ms": 0, "stddev_ms": 50})
    assert min(normal.sample_seconds(rng) for _ in range(50)) == 0.0
    with pytest.raises(ValueError):
        Latency.from_json({"kind": "poisson"})


def test_the_command_serves_until_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "decentro_sandbox.sandbox", "--port", "0", "--seed", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Decentro sandbox listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1].strip()
        with requests.Session() as http:
            answer = http.post(url + req.PAN_PATH, json=req.pan(), headers=KYC_HEADERS, timeout=5)
            assert answer.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
