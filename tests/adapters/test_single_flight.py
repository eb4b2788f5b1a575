"""Two processes missing the same key at once make exactly one upstream call (RedisCache.lock).

The overlap is made certain by state, not hoped for with a sleep: every process counts its
cache miss in Redis before it asks for the lock, and the one that wins the lock holds its
"upstream call" open until both misses are counted. So the other process has certainly
missed the cache and is waiting on the lock while the call is in flight; it must then find
the value under the lock instead of calling upstream again. Limits are generous (a busy
machine may take many seconds to spawn a Python process) and only bound a hang.
"""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest
import redis

from decentro_adapters.cache.redis_cache import RedisCache

pytestmark = pytest.mark.redis
KEY = "kyc:pan:fingerprint"
PROCESSES = 2
WAIT = 120.0  # seconds: a limit for a busy machine, never an expected duration


def _wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {WAIT}s waiting for {what}")
        time.sleep(0.01)


def fetch_through_cache(cache: RedisCache, counter: redis.Redis, prefix: str) -> bytes:
    """The pattern the service uses: miss, lock, look again, call upstream once, set."""
    cached = cache.get(KEY)
    if cached is not None:
        return cached
    counter.incr(prefix + "misses")
    with cache.lock(KEY, timeout=WAIT) as won:
        assert won, "the lock must be won within its timeout"
        cached = cache.get(KEY)
        if cached is not None:
            return cached
        counter.incr(prefix + "upstream-calls")  # stands for the call to Decentro
        # A slow upstream: still in flight when every process has missed and queues on the lock.
        _wait_for(lambda: int(counter.get(prefix + "misses") or 0) >= PROCESSES, "every process to miss")
        result = b"sealed-result"
        cache.set(KEY, result, ttl=600)
        return result


def _worker(url: str, prefix: str, start: Any, results: Any) -> None:
    counter = redis.Redis.from_url(url)
    try:
        with RedisCache(url, prefix=prefix) as cache:
            start.wait(timeout=WAIT)
            results.put(fetch_through_cache(cache, counter, prefix))
    finally:
        counter.close()


def test_two_processes_missing_the_same_key_call_upstream_exactly_once(redis_url: str, redis_prefix: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(PROCESSES), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(redis_url, redis_prefix, start, results)) for _ in range(PROCESSES)]
    for w in workers:
        w.start()
    values = [results.get(timeout=WAIT) for _ in workers]  # before join: a full queue would block exit
    for w in workers:
        w.join(timeout=WAIT)
    results.close()
    results.join_thread()
    assert [w.exitcode for w in workers] == [0] * PROCESSES
    client = redis.Redis.from_url(redis_url)
    try:
        assert int(client.get(redis_prefix + "misses") or 0) == PROCESSES  # both really overlapped
        assert int(client.get(redis_prefix + "upstream-calls") or 0) == 1
    finally:
        client.close()
    assert values == [b"sealed-result"] * PROCESSES
