"""Route and webhook throughput under gunicorn, loaded by ``wrk``: the extension against bare routes.

One gunicorn (2 sync workers) serves :mod:`bench.route_app` in live mode against the sandbox
(its own process), with a fresh PostgreSQL database (records) and a private ``redis-server``
(cache and rate-limit counts, as production configures them). ``wrk`` (C, 2 threads, 8
connections) alternates phases between the two routes of a pair, the order swapped each round;
the figure is the median over rounds of requests per second, the ratio taken round by round.

- PAN: ``POST /api/kyc/pan`` (a new signed-in user every request: a cache miss, consent, lock,
  write-ahead record, upstream call, settle, audit, two cache writes) against ``POST /bare/pan``
  (JSON parse, the same upstream call).
- Webhook: ``POST /api/webhooks/decentro`` (HMAC, sealed store, dedupe, status change, audit;
  each callback for its own PENDING payment) against ``POST /bare/webhook`` (HMAC + JSON parse),
  the same signed bodies for both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from .common import BENCH_FERNET_KEY, postgres_database, sandbox_env, sandbox_process
from .servers import gunicorn_app, no_control_socket

__all__ = ["run_wrk"]

SECRET = "bench-webhook-secret-0123456789abcdefghij"
WORKERS = 2
THREADS, CONNECTIONS = 2, 8
PAN_BODY = {"pan": "ABCDE1234F", "consent": {"given": True, "text": "I agree to the KYC check of my PAN.",
                                             "purpose": "Customer identity verification for onboarding"}}

PAN_SCRIPT = """
local counter = 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
request = function()
  counter = counter + 1
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Bench-User"] = "%(run)s-" .. tid .. "-" .. counter
  return wrk.format("POST", wrk.path, wrk.headers, [==[%(body)s]==])
end
"""

WEBHOOK_SCRIPT_HEAD = """
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
request = function()
  local i = ((n * %(threads)d + tid - 1) %% #bodies) + 1
  n = n + 1
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Decentro-Signature"] = signatures[i]
  return wrk.format("POST", wrk.path, wrk.headers, bodies[i])
end
"""


def _wrk(url: str, script: str, seconds: float) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    try:
        out = subprocess.run(["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{max(1, int(seconds))}s", "-s", lua.name,
                              url], capture_output=True, text=True, timeout=seconds + 60, check=True).stdout
    finally:
        os.unlink(lua.name)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": rate, "requests": total, "non_2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sum(map(int, errors.groups())) if errors else 0}


def _webhook_script(bodies: list[tuple[bytes, str]]) -> str:
    lines = ["bodies = {}", "signatures = {}"]
    for n, (body, signature) in enumerate(bodies, start=1):
        lines.append(f"bodies[{n}] = [==[{body.decode()}]==]")
        lines.append(f'signatures[{n}] = "{signature}"')
    return "\n".join(lines) + WEBHOOK_SCRIPT_HEAD % {"threads": THREADS}


@contextmanager
def _server(sandbox: str, database_url: str, redis_url: str) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECENTRO_") and k != "USE_MOCKS"}
    env.update(sandbox_env(sandbox))
    env.update({"PYTHONPATH": os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                "DECENTRO_DATABASE_URL": database_url, "DECENTRO_CACHE_URL": redis_url,
                "DECENTRO_RATELIMIT_STORAGE_URI": redis_url, "DECENTRO_RATELIMIT": "1000000 per minute",
                "DECENTRO_WEBHOOK_SECRET": SECRET, "DECENTRO_ENCRYPTION_KEYS": BENCH_FERNET_KEY})
    options = ["-w", str(WORKERS), "--timeout", "60", "--graceful-timeout", "5", *no_control_socket()]
    with gunicorn_app("bench.route_app:create_app()", env, options=options) as server:
        yield server.url


def _pairs(url: str, phases: dict[str, tuple[str, str]], *, rounds: int, seconds: float) -> dict[str, Any]:
    results: dict[str, list[dict[str, float]]] = {name: [] for name in phases}
    names = list(phases)
    for name in names:  # warm-up, not counted
        path, script = phases[name]
        _wrk(url + path, script, 1)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            path, script = phases[name]
            results[name].append(_wrk(url + path, script, seconds))
    a, b = names
    ratios = [x["rps"] / y["rps"] for x, y in zip(results[a], results[b])]
    return {"rounds": [{n: results[n][i] for n in names} for i in range(rounds)],
            f"{a}_rps": statistics.median(x["rps"] for x in results[a]),
            f"{b}_rps": statistics.median(x["rps"] for x in results[b]),
            "non_2xx": sum(x["non_2xx"] for n in names for x in results[n]),
            "socket_errors": sum(x["socket_errors"] for n in names for x in results[n]),
            "ratio": statistics.median(ratios)}


def run_wrk(*, rounds: int, seconds: float, payments: int) -> dict[str, Any]:
    """Both pairs on one server; ``payments`` PENDING payments receive the callbacks."""
    from decentro_core.webhooks import sign_body

    from .deploy.services import PrivateRedis
    from .webhooks import _seed_payments, callback_body

    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    with ExitStack() as stack:
        sandbox = stack.enter_context(sandbox_process())
        database_url = stack.enter_context(postgres_database())
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="decentro-bench-redis-"))
        redis_server = PrivateRedis(folder)
        redis_server.start()
        stack.callback(redis_server.stop)
        references = _seed_payments(database_url, payments)
        bodies = [(body, sign_body(body, SECRET)) for body in map(callback_body, references)]
        url = stack.enter_context(_server(sandbox, database_url, redis_server.url))
        pan = json.dumps(PAN_BODY)
        run_id = os.urandom(4).hex()
        pan_result = _pairs(url, {"route": ("/api/kyc/pan", PAN_SCRIPT % {"run": "r" + run_id, "body": pan}),
                                  "bare": ("/bare/pan", PAN_SCRIPT % {"run": "b" + run_id, "body": pan})},
                            rounds=rounds, seconds=seconds)
        hook_script = _webhook_script(bodies)
        hook_result = _pairs(url, {"webhook": ("/api/webhooks/decentro", hook_script),
                                   "bare": ("/bare/webhook", hook_script)}, rounds=rounds, seconds=seconds)
        delivered = sum(r["webhook"]["requests"] for r in hook_result["rounds"])
    return {"workers": WORKERS, "worker_class": "sync", "wrk": {"threads": THREADS, "connections": CONNECTIONS},
            "seconds": seconds, "store": "postgresql", "cache": "redis (private)", "mode": "live (sandbox)",
            "pan": pan_result, "webhook": hook_result, "payments": payments,
            "webhook_redeliveries": max(0, delivered - payments)}


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(run_wrk(rounds=1, seconds=3, payments=3000), indent=1))
