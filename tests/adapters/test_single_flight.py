"""Two processes missing the same key at once make exactly one upstream call (RedisCache.lock)."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest
import redis

from decentro_adapters.cache.redis_cache import RedisCache

pytestmark = pytest.mark.redis
KEY = "kyc:pan:fingerprint"


def fetch_through_cache(cache: RedisCache, counter: redis.Redis, counter_key: str) -> bytes:
    """The pattern the service uses: miss, lock, look again, call upstream once, set."""
    cached = cache.get(KEY)
    if cached is not None:
        return cached
    with cache.lock(KEY, timeout=20) as won:
        assert won, "the lock must be won within its timeout"
        cached = cache.get(KEY)
        if cached is not None:
            return cached
        counter.incr(counter_key)  # stands for the call to Decentro
        time.sleep(0.3)  # a slow upstream keeps the window open for the other process
        result = b"sealed-result"
        cache.set(KEY, result, ttl=60)
        return result


def _worker(url: str, prefix: str, start: Any, results: Any) -> None:
    counter = redis.Redis.from_url(url)
    try:
        with RedisCache(url, prefix=prefix) as cache:
            start.wait(timeout=30)
            results.put(fetch_through_cache(cache, counter, prefix + "upstream-calls"))
    finally:
        counter.close()


def test_two_processes_missing_the_same_key_call_upstream_exactly_once(redis_url: str, redis_prefix: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(redis_url, redis_prefix, start, results)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0]
    values = [results.get(timeout=5) for _ in workers]
    results.close()
    results.join_thread()
    client = redis.Redis.from_url(redis_url)
    try:
        assert int(client.get(redis_prefix + "upstream-calls") or 0) == 1
    finally:
        client.close()
    assert values == [b"sealed-result", b"sealed-result"]
