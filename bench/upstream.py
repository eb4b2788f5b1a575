"""Billable upstream calls per unique document, from two processes sharing Redis.

``documents`` unique (user, PAN) pairs are each asked for twice (half the requests are
repeats). For even documents the two asks go to different processes, for odd ones to the
same process; each process sends its list from a thread pool, so the repeats of a document
race each other across processes and across threads. The sandbox's stats count what
Decentro would bill.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

from .common import PAN_PATH, live_settings, pan_for, postgres_database, redis_prefix, redis_url, sandbox_stats

__all__ = ["run_upstream_calls"]

THREADS = 8


def _plan(documents: int) -> list[list[int]]:
    """Document indexes each of the two processes asks for, in order."""
    lists: list[list[int]] = [[], []]
    for doc in range(documents):
        if doc % 2 == 0:
            lists[0].append(doc)
            lists[1].append(doc)
        else:
            lists[doc // 2 % 2].extend((doc, doc))
    return lists


def _worker(url: str, database_url: str, prefix: str, docs: list[int], start: Any, out: Any) -> None:
    """One process: its own service (PostgreSQL records, Redis cache), a thread pool."""
    from decentro_adapters.bootstrap import build
    from decentro_adapters.cache.redis_cache import RedisCache

    counts = {"SUCCESS": 0, "cached": 0, "errors": 0}
    with ExitStack() as stack:
        cache = RedisCache(redis_url(), prefix=prefix)
        stack.callback(cache.close)
        system = build(live_settings(url, database_url=database_url), cache=cache)
        stack.callback(system.close)
        service = system.service
        start.wait(30)

        def ask(doc: int) -> dict[str, Any]:
            return service.verify_pan(pan_for(doc), user_id=f"bench-user-{doc}")  # type: ignore[no-any-return]

        with ThreadPoolExecutor(THREADS) as pool:
            for future in [pool.submit(ask, doc) for doc in docs]:
                try:
                    result = future.result(timeout=120)
                except Exception:  # noqa: BLE001 - counted and reported, not hidden
                    counts["errors"] += 1
                    continue
                counts[result["status"]] = counts.get(result["status"], 0) + 1
                counts["cached"] += bool(result["data"].get("cached"))
    out.put(counts)


def run_upstream_calls(url: str, *, documents: int) -> dict[str, Any]:
    """Billable PAN calls / unique documents over ``2 * documents`` requests."""
    context = multiprocessing.get_context("spawn")
    before = sandbox_stats(url)["billable"].get(PAN_PATH, 0)
    with postgres_database() as database_url, redis_prefix() as prefix:
        # postgres_database() already ran the deploy step (the schema upgrade) before the race.
        start, out = context.Event(), context.Queue()
        procs = [context.Process(target=_worker, args=(url, database_url, prefix, docs, start, out))
                 for docs in _plan(documents)]
        for proc in procs:
            proc.start()
        start.set()
        results = [out.get(timeout=600) for _ in procs]
        for proc in procs:
            proc.join(timeout=60)
    billable = sandbox_stats(url)["billable"].get(PAN_PATH, 0) - before
    totals = {key: sum(r.get(key, 0) for r in results) for key in ("SUCCESS", "cached", "errors")}
    return {"requests": 2 * documents, "unique_documents": documents, "processes": 2, "threads": THREADS,
            "billable_calls": billable, "calls_per_unique_document": billable / documents, **totals}
