"""RSS growth over many operations through the blocking service in mock mode.

Stores: Peewee on a SQLite file (the in-memory record store keeps every record by design,
so it would measure retention, not leaks). Cache: the in-memory cache, with a bounded set
of 50 users, so it stays bounded. Operations alternate a full PAN check without ``user_id``
(consent, record, audit, sealing, no cache) and a cached PAN check for one of the 50 users.
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
USERS = 50
PAN = "ABCDE1234F"


def _op(service: Any, i: int) -> None:
    if i % 2:
        result = service.verify_pan(PAN, user_id=f"bench-rss-{i % USERS}")
    else:
        result = service.verify_pan(PAN)
    if result["status"] != "SUCCESS":
        raise RuntimeError("unexpected outcome in the RSS benchmark")


def run_rss(*, operations: int, warmup: int, samples: int = 10) -> dict[str, Any]:
    """RSS (KiB) after warm-up, every ``operations / samples`` operations, and the growth."""
    from decentro_adapters.bootstrap import build
    from decentro_core.memory import MemoryCache
    from decentro_core.settings import Settings

    with tempfile.TemporaryDirectory(prefix="decentro-bench-rss-") as folder:
        database_url = "sqlite:///" + os.path.join(folder, "rss.sqlite3")
        settings = Settings.from_mapping({"USE_MOCKS": "true", "DECENTRO_DATABASE_URL": database_url})
        with build(settings, cache=MemoryCache()) as system:
            service = system.service
            for i in range(warmup):
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
    growth = (end_kib - start_kib) / start_kib * 100
    return {"operations": operations, "warmup": warmup, "store": "peewee-sqlite-file", "cache": "memory",
            "start_kib": start_kib, "end_kib": end_kib, "growth_pct": growth, "curve_kib": curve,
            "seconds": elapsed, "ops_per_second": operations / elapsed}
