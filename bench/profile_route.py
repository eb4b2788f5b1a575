"""Profile the Flask PAN route: ``python -m bench.profile_route [--requests N] [--top K]``.

The extension in live mode against the sandbox (its own process), PostgreSQL (a fresh
database) and Redis (a unique prefix) for the cache and the rate-limit counts, as
``bench/route_app.py`` runs under gunicorn; requests go through Flask's test client, each from a
new signed-in user (a cache miss). Prints the CPU milliseconds per request (``time.process_time``),
cProfile's top functions by own CPU time (its timer is ``time.process_time``), and own CPU
time grouped by package, so where the route's
CPU goes is visible at a glance (the network waits are not CPU and do not show).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import time
from collections import defaultdict
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

from .common import BENCH_FERNET_KEY, postgres_database, redis_url, sandbox_env, sandbox_process
from .wrkload import PAN_BODY, SECRET

__all__ = ["main", "profile_pan_route"]

GROUPS = ("flask_decentro/schemas", "flask_decentro/routes", "flask_decentro", "flask_limiter", "limits",
          "marshmallow", "decentro_core", "decentro_adapters", "peewee", "playhouse", "psycopg2", "redis",
          "requests", "urllib3", "cryptography", "werkzeug", "flask", "json", "http", "socket", "ssl")


def _group(filename: str) -> str:
    for name in GROUPS:
        if f"/{name}/" in filename or f"/{name}.py" in filename or filename.endswith(f"/{name}"):
            return name
    return "other" if "/" in filename else filename


def profile_pan_route(requests_count: int, *, ratelimit_headers: bool = True) -> dict[str, Any]:
    from flask import Flask, request

    from flask_decentro import Decentro

    with ExitStack() as stack:
        sandbox = stack.enter_context(sandbox_process())
        database_url = stack.enter_context(postgres_database())
        prefix = f"decentro-bench-profile-{os.urandom(4).hex()}:"
        env = {**sandbox_env(sandbox), "DECENTRO_DATABASE_URL": database_url, "DECENTRO_CACHE_URL": redis_url(),
               "DECENTRO_RATELIMIT_STORAGE_URI": redis_url(), "DECENTRO_RATELIMIT": "1000000 per minute",
               "DECENTRO_RATELIMIT_KEY_PREFIX": prefix + "limits", "DECENTRO_WEBHOOK_SECRET": SECRET,
               "DECENTRO_ENCRYPTION_KEYS": BENCH_FERNET_KEY,
               "DECENTRO_RATELIMIT_HEADERS": "true" if ratelimit_headers else "false"}
        app = Flask("decentro_profile")
        app.config.update(env)
        from decentro_adapters.cache.redis_cache import RedisCache

        cache = RedisCache(redis_url(), prefix=prefix)
        stack.callback(cache.close)
        from decentro_adapters.bootstrap import build
        from decentro_core.settings import Settings

        system = build(Settings.from_mapping(env).check(), cache=cache)
        stack.callback(system.close)
        Decentro(app, identity=lambda: request.headers.get("X-Bench-User"), service=system.service)
        client = app.test_client()
        body = json.dumps(PAN_BODY)

        def one(n: int, label: str) -> None:
            answer = client.post("/api/kyc/pan", data=body, content_type="application/json",
                                 headers={"X-Bench-User": f"profile-{label}-{prefix}-{n}"})
            assert answer.status_code == 200, answer.get_data()

        for n in range(30):
            one(n, "warmup")
        profiler = cProfile.Profile(time.process_time)  # CPU time: the network waits do not count
        cpu, wall = time.process_time(), time.perf_counter()
        profiler.enable()
        for n in range(requests_count):
            one(n, "timed")
        profiler.disable()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        import redis as redis_py

        client_r = redis_py.Redis.from_url(redis_url())
        keys = list(client_r.scan_iter(match=prefix + "*", count=500))
        if keys:
            client_r.delete(*keys)
        client_r.close()
    stats = pstats.Stats(profiler)
    by_group: dict[str, float] = defaultdict(float)
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_group[_group(filename)] += own
        rows.append((own, calls, cumulative, f"{filename.rsplit('site-packages/', 1)[-1]}:{line}({name})"))
    total = sum(by_group.values()) or 1.0
    return {"requests": requests_count, "cpu_ms_per_request": cpu / requests_count * 1000,
            "wall_ms_per_request": wall / requests_count * 1000, "ratelimit_headers": ratelimit_headers,
            "own_time_share": {k: round(v / total, 3) for k, v in sorted(by_group.items(), key=lambda kv: -kv[1])},
            "top": [{"own_ms_per_request": own / requests_count * 1000, "calls_per_request": calls / requests_count,
                     "cumulative_ms_per_request": cumulative / requests_count * 1000, "function": where}
                    for own, calls, cumulative, where in sorted(rows, reverse=True)[:40]]}


def main(argv: Sequence[str] | None = None) -> int:
    import logging

    logging.basicConfig(level=logging.ERROR)
    parser = argparse.ArgumentParser(prog="python -m bench.profile_route", description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--no-ratelimit-headers", action="store_true")
    args = parser.parse_args(argv)
    result = profile_pan_route(args.requests, ratelimit_headers=not args.no_ratelimit_headers)
    print(f"{result['requests']} requests: {result['cpu_ms_per_request']:.2f} ms CPU, "
          f"{result['wall_ms_per_request']:.2f} ms wall per request (profiler on)")
    print("own time by package:", json.dumps(result["own_time_share"]))
    for row in result["top"][: args.top]:
        print(f"{row['own_ms_per_request']:7.3f} ms {row['calls_per_request']:6.1f}x "
              f"{row['cumulative_ms_per_request']:7.3f} ms cum  {row['function']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
