"""Per-call latency, side by side: raw requests, the gateway, the full service, a cache hit.

All variants are timed call by call in one interleaved loop against the same sandbox, so the
ratios compare like with like. Every KYC call through the service uses a fresh ``user_id``
(a cache miss: consent, lock, sealing, record, audit); the cache-hit variant repeats one
``user_id`` and PAN.
"""

from __future__ import annotations

import itertools
import os
import statistics
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import requests

from decentro_core.ports import GatewayRequest

from .common import (
    PAN_PATH,
    interleaved,
    live_settings,
    median_ratio,
    pan_body,
    postgres_database,
    raw_headers,
    redis_prefix,
    redis_url,
    spread,
)

__all__ = ["run_latency"]

PAN = "ABCDE1234F"


def _raw(url: str, stack: ExitStack, *, trust_env: bool = True) -> Callable[[], Any]:
    """What a user writes from the guide; ``trust_env=False`` skips re-reading proxy variables
    from the environment on every request (the fair baseline: the gateway reads them once)."""
    session = stack.enter_context(requests.Session())
    session.trust_env = trust_env
    headers = raw_headers()

    def call() -> Any:
        response = session.post(url + PAN_PATH, json=pan_body(PAN), headers=headers, timeout=5)
        response.raise_for_status()
        return response.json()

    return call


def _gateway(url: str, database_url: str, stack: ExitStack) -> Callable[[], Any]:
    from decentro_adapters.gateway.live import RequestsGateway

    gateway = RequestsGateway(live_settings(url, database_url=database_url))
    stack.callback(gateway.close)

    def call() -> Any:
        body = pan_body(PAN)
        response = gateway.send(GatewayRequest("POST", PAN_PATH, "kyc", body["reference_id"], body))
        assert response.status_code == 200
        return response

    return call


def _service(url: str, database_url: str, stack: ExitStack, **ports: Any) -> Any:
    from decentro_adapters.bootstrap import build

    system = build(live_settings(url, database_url=database_url), **ports)
    stack.callback(system.close)
    return system.service


def _kyc_full(service: Any, label: str) -> Callable[[], Any]:
    users = itertools.count()

    def call() -> Any:
        result = service.verify_pan(PAN, user_id=f"bench-{label}-{next(users)}")
        assert result["status"] == "SUCCESS" and not result["data"].get("cached")
        return result

    return call


def _cache_hit(service: Any, user: str = "bench-cache-hit") -> Callable[[], Any]:
    service.verify_pan(PAN, user_id=user)

    def call() -> Any:
        result = service.verify_pan(PAN, user_id=user)
        assert result["data"].get("cached") is True
        return result

    return call


@contextmanager
def _variants(url: str, *, with_postgres: bool) -> Iterator[tuple[dict[str, Callable[[], Any]], dict[str, Any]]]:
    from decentro_core.memory import MemoryCache

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="decentro-bench-") as folder:
        sqlite_url = "sqlite:///" + os.path.join(folder, "bench.sqlite3")
        sqlite_service = _service(url, sqlite_url, stack, cache=MemoryCache())
        variants = {
            "raw": _raw(url, stack),
            "raw_no_env": _raw(url, stack, trust_env=False),
            "gateway": _gateway(url, sqlite_url, stack),
            "kyc_full_sqlite": _kyc_full(sqlite_service, "sqlite"),
            "cache_hit": _cache_hit(sqlite_service),
        }
        extra: dict[str, Any] = {}
        if with_postgres:
            from decentro_adapters.cache.redis_cache import RedisCache

            from .roundtrips import CountingRedis, RoundTrips

            pg_url = stack.enter_context(postgres_database())
            prefix = stack.enter_context(redis_prefix())
            counter = RoundTrips()  # counts Redis commands all along (an increment); PostgreSQL only at the end
            cache = RedisCache(redis_url(), prefix=prefix, client=CountingRedis(redis_url(), counter))
            stack.callback(cache.close)
            pg_service = _service(url, pg_url, stack, cache=cache)
            variants["kyc_full_postgres_redis"] = _kyc_full(pg_service, "pg")
            variants["cache_hit_postgres_redis"] = _cache_hit(pg_service, "bench-cache-hit-pg")
            extra.update(service=pg_service, counter=counter, pg_url=pg_url)
        yield variants, extra


def run_latency(url: str, *, rounds: int, per_round: int, with_postgres: bool = True) -> dict[str, Any]:
    """Median milliseconds per call of each variant, the ratios to raw requests (the default
    session) and to the fair baseline (``raw_no_env``), and round trips per KYC miss."""
    with _variants(url, with_postgres=with_postgres) as (variants, extra):
        cpu: dict[str, list[float]] = {}
        medians = interleaved(variants, rounds=rounds, per_round=per_round, warmup=min(per_round, 20), cpu=cpu)
        trips: dict[str, Any] = {}
        if with_postgres:
            from .roundtrips import kyc_hit_round_trips, kyc_miss_round_trips

            service, counter = extra["service"], extra["counter"]
            kyc_miss_round_trips(service, service.ports.records._db, counter, misses=10, label="bench-rt")
            trips = {"misses": 10, "postgres": counter.postgres / 10, "redis": counter.redis / 10,
                     "commits": counter.commits / 10, "statements": counter.statements[: counter.postgres // 10]}
            counter.reset()
            kyc_hit_round_trips(service, service.ports.records._db, counter, hits=10, label="bench-rt-hit")
            trips["hit"] = {"hits": 10, "postgres": counter.postgres / 10, "redis": counter.redis / 10,
                            "commits": counter.commits / 10,
                            "statements": counter.statements[: counter.postgres // 10]}
            trips["waits"] = service_waits(extra["pg_url"])
    ms = {name: spread(values) for name, values in medians.items()}
    ratios = {name: median_ratio(medians, name, "raw") for name in medians if name != "raw"}
    no_env = {name: median_ratio(medians, name, "raw_no_env") for name in medians if name != "raw_no_env"}
    return {"rounds": rounds, "per_round": per_round, "ms": ms, "ratios": ratios, "ratios_no_env": no_env,
            "round_trips": trips, "cpu_ms": {name: statistics.median(values) for name, values in cpu.items()}}


def service_waits(pg_url: str, *, samples: int = 300) -> dict[str, float]:
    """What one round trip costs on this machine, medians in milliseconds: a PostgreSQL
    ``SELECT 1``, an auto-committed ``INSERT`` into a logged table (the round trip plus the
    commit's WAL flush), and a Redis ``PING``; the bench's own database and a plain client."""
    import time

    import psycopg2
    import redis

    def median_ms(call: Callable[[], Any]) -> float:
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    connection = psycopg2.connect(pg_url)
    connection.autocommit = True
    client = redis.Redis.from_url(redis_url())
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE bench_commit_probe (x integer)")
            select = median_ms(lambda: cursor.execute("SELECT 1"))
            commit = median_ms(lambda: cursor.execute("INSERT INTO bench_commit_probe VALUES (1)"))
            cursor.execute("DROP TABLE bench_commit_probe")
        ping = median_ms(client.ping)
    finally:
        connection.close()
        client.close()
    return {"pg_select_ms": select, "pg_insert_commit_ms": commit, "redis_ping_ms": ping}
