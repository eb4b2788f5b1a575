"""RSS growth over many operations through the blocking service in mock mode.

Stores: Peewee on a SQLite file (the in-memory record store keeps every record by design,
so it would measure retention, not leaks). Cache: the in-memory cache with its default bound
(``MemoryCache.DEFAULT_MAX_ENTRIES``). Every operation is a PAN check for a user never seen
before (a cache miss: consent, lock, record, audit, sealing, two cache entries), so 100,000
operations are 100,000 distinct users: the cache must evict and drop its lock entries, or
memory grows with the user count.
The mock gateway's emulator remembers every reference id it saw, as Decentro does; that is
the fake upstream's state, not the library's, so it is reset every ``RESET_EVERY`` operations.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from .common import rss_kib

__all__ = ["run_rss"]

RESET_EVERY = 10_000
PAN = "ABCDE1234F"


def _op(service: Any, i: int) -> None:
    result = service.verify_pan(PAN, user_id=f"bench-rss-user-{i}")
    if result["status"] != "SUCCESS" or result["data"].get("cached"):
        raise RuntimeError("unexpected outcome in the RSS benchmark")


def run_rss(*, operations: int, warmup: int, samples: int = 10) -> dict[str, Any]:
    """RSS (KiB) after warm-up, every ``operations / samples`` operations, and the growth."""
    from decentro_adapters.bootstrap import build
    from decentro_core.memory import MemoryCache
    from decentro_core.settings import Settings

    with tempfile.TemporaryDirectory(prefix="decentro-bench-rss-") as folder:
        database_url = "sqlite:///" + os.path.join(folder, "rss.sqlite3")
        settings = Settings.from_mapping({"USE_MOCKS": "true", "DECENTRO_DATABASE_URL": database_url})
        cache = MemoryCache()
        with build(settings, cache=cache) as system:
            service = system.service
            before_kib = rss_kib()
            for i in range(-warmup, 0):
                _op(service, i)
            service.ports.gateway.emulator.reset()
            start_kib = rss_kib()
            started = time.perf_counter()
            curve = [start_kib]
            step = max(operations // samples, 1)
            for i in range(1, operations + 1):
                _op(service, i)
                if i % RESET_EVERY == 0:
                    service.ports.gateway.emulator.reset()
                if i % step == 0:
                    curve.append(rss_kib())
            elapsed = time.perf_counter() - started
            end_kib = rss_kib()
            held = {"cache_entries": cache.size, "cache_max_entries": cache.max_entries,
                    "lock_entries": cache.lock_entries}
    growth = (end_kib - start_kib) / start_kib * 100
    return {"operations": operations, "warmup": warmup, "store": "peewee-sqlite-file", "cache": "memory",
            "distinct_users": operations + warmup, "before_warmup_kib": before_kib, **held,
            "start_kib": start_kib, "end_kib": end_kib, "growth_pct": growth, "curve_kib": curve,
            "seconds": elapsed, "ops_per_second": operations / elapsed}
