"""The Cache contract: MemoryCache, CachelibCache and RedisCache behave alike."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import cachelib
import pytest
import redis

from decentro_adapters.cache.cachelib_cache import CachelibCache
from decentro_adapters.cache.redis_cache import RedisCache
from decentro_core.errors import StoreError
from decentro_core.memory import MemoryCache
from decentro_core.ports import Cache

SEALED = b"gAAAAB\x00\xff-not-utf8-\x80"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "cachelib", pytest.param("redis", marks=pytest.mark.redis)])
def cache(request: pytest.FixtureRequest) -> Iterator[Cache]:
    if request.param == "memory":
        yield MemoryCache()
    elif request.param == "cachelib":
        yield CachelibCache(cachelib.SimpleCache())
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        with RedisCache(url, prefix=prefix) as opened:
            yield opened


def test_a_missing_key_reads_as_none(cache: Cache) -> None:
    assert cache.get("absent") is None


def test_a_value_set_is_read_back_byte_for_byte(cache: Cache) -> None:
    cache.set("kyc:pan:abc", SEALED, ttl=60)
    assert cache.get("kyc:pan:abc") == SEALED


def test_setting_again_replaces_the_value(cache: Cache) -> None:
    cache.set("k", b"one", ttl=60)
    cache.set("k", b"two", ttl=60)
    assert cache.get("k") == b"two"


def test_a_deleted_key_is_gone_and_deleting_twice_is_harmless(cache: Cache) -> None:
    cache.set("k", b"v", ttl=60)
    cache.delete("k")
    cache.delete("k")
    assert cache.get("k") is None


def test_a_value_set_with_a_ttl_of_zero_is_not_kept(cache: Cache) -> None:
    cache.set("k", b"old", ttl=60)
    cache.set("k", b"v", ttl=0)
    assert cache.get("k") is None


def test_a_free_lock_is_won_and_can_be_won_again_after_release(cache: Cache) -> None:
    with cache.lock("k", timeout=1) as won:
        assert won is True
    with cache.lock("k", timeout=1) as won_again:
        assert won_again is True


def test_a_held_lock_is_not_won_by_another_thread_within_the_timeout(cache: Cache) -> None:
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with cache.lock("k", timeout=5) as won:
            assert won
            held.set()
            done.wait(timeout=10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(timeout=10)
        with cache.lock("k", timeout=0.2) as won:
            assert won is False
        with cache.lock("other-key", timeout=0.2) as other:
            assert other is True
    finally:
        done.set()
        holder.join(timeout=10)
    with cache.lock("k", timeout=1) as won_after:
        assert won_after is True


def test_the_lock_is_released_when_the_block_raises(cache: Cache) -> None:
    with pytest.raises(RuntimeError), cache.lock("k", timeout=1):
        raise RuntimeError("upstream failed")
    result: list[bool] = []

    def try_lock() -> None:
        with cache.lock("k", timeout=1) as won:
            result.append(won)

    other = threading.Thread(target=try_lock)
    other.start()
    other.join(timeout=10)
    assert result == [True]


# -- Expiry (memory with a fake clock; Redis by the TTL it stores) ---------------------------


def test_the_memory_cache_forgets_a_value_when_its_ttl_has_passed() -> None:
    clock = FakeClock()
    cache = MemoryCache(monotonic=clock)
    cache.set("k", b"v", ttl=60)
    clock.now += 59
    assert cache.get("k") == b"v"
    clock.now += 1
    assert cache.get("k") is None


@pytest.mark.redis
def test_redis_stores_the_value_under_the_prefix_with_its_ttl(redis_url: str, redis_prefix: str) -> None:
    with RedisCache(redis_url, prefix=redis_prefix) as cache:
        cache.set("k", b"v", ttl=60)
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.get(redis_prefix + "k") == b"v"
        assert 0 < client.pttl(redis_prefix + "k") <= 60_000
    finally:
        client.close()


HOLDER = """
import sys, time
from decentro_adapters.cache.redis_cache import RedisCache
cache = RedisCache(sys.argv[1], prefix=sys.argv[2], lock_lease=3.0)
with cache.lock("k", timeout=5) as won:
    print("held" if won else "lost", flush=True)
    time.sleep(600)
"""


@pytest.mark.redis
def test_a_lock_whose_holder_was_killed_is_free_after_one_short_lease(redis_url: str, redis_prefix: str) -> None:
    with subprocess.Popen([sys.executable, "-c", HOLDER, redis_url, redis_prefix], stdout=subprocess.PIPE,
                          text=True) as holder:
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        finally:
            holder.kill()  # SIGKILL: no release, no more renewals
            holder.wait(timeout=30)
    with RedisCache(redis_url, prefix=redis_prefix, lock_lease=3.0) as cache, cache.lock("k", timeout=30) as won:
        assert won is True


@pytest.mark.redis
def test_a_living_holder_keeps_its_short_lease_renewed_for_a_long_call(redis_url: str, redis_prefix: str) -> None:
    with RedisCache(redis_url, prefix=redis_prefix, lock_lease=3.0) as cache:
        with cache.lock("k", timeout=1) as won:
            assert won is True
            with cache.lock("k", timeout=6.5) as also:  # twice the lease: only renewal keeps it held
                assert also is False
        with cache.lock("k", timeout=1) as again:
            assert again is True


@pytest.mark.redis
def test_locks_held_at_once_by_several_threads_are_all_renewed_by_one_thread(redis_url: str,
                                                                             redis_prefix: str) -> None:
    import threading

    with RedisCache(redis_url, prefix=redis_prefix, lock_lease=1.5) as cache, \
            RedisCache(redis_url, prefix=redis_prefix, lock_lease=1.5) as other:
        holding, release, outcomes = threading.Barrier(4), threading.Event(), []

        def hold(key: str) -> None:
            with cache.lock(key, timeout=1) as won:
                outcomes.append(won)
                holding.wait(timeout=30)
                release.wait(timeout=30)

        def renewers() -> int:
            return sum(t.name == "decentro-lock-renewal" for t in threading.enumerate())

        before = renewers()
        holders = [threading.Thread(target=hold, args=(f"k{n}",)) for n in range(3)]
        for thread in holders:
            thread.start()
        holding.wait(timeout=30)
        try:
            during = renewers()
            for n in range(3):  # each wait is twice the lease: only renewal keeps the lock held
                with other.lock(f"k{n}", timeout=3.2) as stolen:
                    assert stolen is False
        finally:
            release.set()
            for thread in holders:
                thread.join(timeout=30)
        assert outcomes == [True, True, True] and during <= before + 1
        with other.lock("k0", timeout=1) as freed:
            assert freed is True


def test_an_unreachable_redis_raises_store_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with RedisCache(f"redis://127.0.0.1:{port}/0", socket_timeout=1) as cache:
        with pytest.raises(StoreError):
            cache.get("k")
        with pytest.raises(StoreError), cache.lock("k", timeout=0.1):
            pass


def test_a_failing_cachelib_backend_raises_store_error() -> None:
    class Broken(cachelib.SimpleCache):
        def get(self, key: str) -> None:
            raise OSError("disk full")

    with pytest.raises(StoreError):
        CachelibCache(Broken()).get("k")


# -- The in-memory cache is bounded ----------------------------------------------------------


def test_the_memory_cache_keeps_at_most_max_entries_evicting_the_least_recently_used() -> None:
    cache = MemoryCache(max_entries=3)
    for key in ("a", "b", "c"):
        cache.set(key, key.encode(), ttl=60)
    assert cache.get("a") == b"a"  # a is now the most recently used
    cache.set("d", b"d", ttl=60)
    assert cache.size == 3
    assert cache.get("b") is None  # the least recently used went
    assert [cache.get(k) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]


def test_memory_cache_lock_entries_are_dropped_on_release_even_with_waiters() -> None:
    cache = MemoryCache()
    for n in range(1000):
        with cache.lock(f"user-{n}:lock", timeout=1) as won:
            assert won
    assert cache.lock_entries == 0
    held = threading.Event()
    release = threading.Event()
    results: list[bool] = []

    def holder() -> None:
        with cache.lock("k", timeout=1) as won:
            results.append(won)
            held.set()
            release.wait(timeout=30)

    def waiter() -> None:
        with cache.lock("k", timeout=30) as won:
            results.append(won)

    first = threading.Thread(target=holder)
    first.start()
    assert held.wait(timeout=30)
    second = threading.Thread(target=waiter)
    second.start()
    deadline = time.monotonic() + 30
    while cache._locks.users("k") < 2 and time.monotonic() < deadline:  # the waiter is queued
        time.sleep(0.01)
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert results == [True, True]  # the waiter got the same lock, not a fresh one
    assert cache.lock_entries == 0


# -- Redis outages are cheap, and never a wrong hit -----------------------------------------


def test_a_cache_cut_from_redis_works_in_process_and_leaves_redis_alone_meanwhile(silent_redis: Any,
                                                                                   within: Any) -> None:
    from decentro_adapters.bootstrap import _cache
    from decentro_core.settings import Settings

    cache = _cache(Settings.from_mapping({"DECENTRO_CACHE_URL": silent_redis.url, "DECENTRO_REDIS_COOLDOWN": 60}))
    assert isinstance(cache, RedisCache)
    held, release, outcomes = threading.Event(), threading.Event(), []

    def holder() -> None:
        with cache.lock("doc:lock", timeout=5) as won:
            outcomes.append(won)
            held.set()
            release.wait(timeout=60)

    def session() -> list[object]:
        seen: list[object] = [cache.get("doc")]
        cache.set("doc", SEALED, ttl=60)
        seen.append(cache.get("doc"))  # what this process verified is not verified again
        thread = threading.Thread(target=holder)
        thread.start()
        held.wait(timeout=60)
        with cache.lock("doc:lock", timeout=0) as second:  # single flight between this process's threads
            seen.append(second)
        release.set()
        thread.join(timeout=60)
        return seen

    try:
        assert within(60, session) == [None, SEALED, False]
        assert outcomes == [True] and cache.degraded
        assert silent_redis.connections == 1  # one try opened the breaker
    finally:
        release.set()
        cache.close()


def test_a_cache_that_may_not_fail_open_refuses_at_once_while_redis_is_cut(silent_redis: Any, within: Any) -> None:
    with RedisCache(silent_redis.url, socket_timeout=0.25, cooldown=60) as cache:
        def tries() -> int:
            refused = 0
            for _ in range(5):
                with pytest.raises(StoreError):
                    cache.get("k")
                refused += 1
            return refused

        assert within(60, tries) == 5
    assert silent_redis.connections == 1


@pytest.mark.redis
def test_values_kept_through_an_outage_are_dropped_when_redis_answers_again(redis_url: str, redis_prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    down = threading.Event()
    real_get, real_set = client.get, client.set

    def cut(call: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if down.is_set():
                raise redis.ConnectionError("cut")
            return call(*args, **kwargs)
        return wrapped

    client.get, client.set = cut(real_get), cut(real_set)  # type: ignore[method-assign]
    cache = RedisCache(redis_url, prefix=redis_prefix, cooldown=0.01, local_fallback=True, client=client)
    other = redis.Redis.from_url(redis_url)
    try:
        down.set()
        cache.set("mine", b"kept-in-process", ttl=60)
        cache.set("theirs", b"stale-here", ttl=60)
        assert cache.get("mine") == b"kept-in-process" and cache.degraded
        other.set(redis_prefix + "theirs", b"fresh-in-redis")  # another host wrote it meanwhile
        down.clear()
        deadline = time.monotonic() + 60
        while cache.degraded:  # the next call after the cooldown tries Redis and closes the breaker
            assert time.monotonic() < deadline, "the cache never went back to Redis"
            cache.get("probe")
        assert cache.get("mine") is None  # Redis never had it: no in-process leftover served
        assert cache.get("theirs") == b"fresh-in-redis"
    finally:
        other.close()
        cache.close()


def test_kyc_checks_on_a_host_cut_from_redis_verify_a_document_once(silent_redis: Any, within: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from decentro_adapters.bootstrap import build
    from decentro_core.settings import Settings

    settings = Settings.from_mapping({"USE_MOCKS": "true", "DECENTRO_CACHE_URL": silent_redis.url,
                                      "DECENTRO_REDIS_COOLDOWN": 60})
    system = build(settings)
    consent = {"given": True, "text": "I agree that my PAN is verified.",
               "purpose": "Customer onboarding identity verification"}
    try:
        def checks() -> list[dict[str, Any]]:
            with ThreadPoolExecutor(4) as pool:
                return list(pool.map(lambda _: system.service.verify_pan("ABCDE1234F", user_id="u-1",
                                                                         consent=consent), range(4)))

        answers = within(60, checks)
        assert {a["status"] for a in answers} == {"SUCCESS"}
        stats = system.service.ports.gateway.emulator.stats()  # type: ignore[attr-defined]
        assert stats["requests"]["/kyc/public_registry/validate"] == 1  # the others waited, then hit
    finally:
        system.close()


def test_the_cache_breaker_is_reported_to_the_instruments(silent_redis: Any, within: Any) -> None:
    from decentro_adapters.cache.redis_cache import BREAKER_MODULE
    from decentro_core.observability import NoInstruments

    changes: list[tuple[str, str]] = []

    class Recording(NoInstruments):
        def breaker(self, module: str, change: Any) -> None:
            changes.append((module, change))

    with RedisCache(silent_redis.url, cooldown=60, local_fallback=True, instruments=Recording()) as cache:
        assert within(60, lambda: [cache.get("k") for _ in range(3)]) == [None, None, None]
    assert changes == [(BREAKER_MODULE, "opened")]  # calls served in-process are not counted as rejections
