"""The async face under 1,000 concurrent calls, and throughput under upstream faults.

Both in live mode against the sandbox in its own process, records on a fresh PostgreSQL
database, the cache on Redis under a unique prefix (as production runs them).

- :func:`run_async`: 1,000 ``await verify_pan`` at once (each a new user: a cache miss)
  through :class:`decentro_core.async_service.DecentroService`, the sandbox answering after
  a fixed 50 ms. ``ideal`` is 50 ms plus the CPU time this process spent on the calls
  (``time.process_time``, every thread): what the calls would take if they only ever waited on
  the upstream together. ``async_wall_vs_ideal`` is the wall time over that.
- :func:`run_fault_throughput`: 8 threads run the fault run's seeded operation mix (PAN, bank,
  CKYC, SMS, payment links and collections) for a fixed count, once against a clean sandbox
  and once against one faulting 20% of answers (500, 502, 503, 429, reset, malformed, and a
  delay past the client's timeout). Backoff sleeps are real (the defaults: 0.5 s doubling),
  unlike the fault run's, which caps them. ``fault_throughput_vs_clean`` is operations per
  second with faults over without.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

from .common import live_settings, postgres_database, redis_prefix, redis_url, sandbox_process

__all__ = ["run_async", "run_fault_throughput"]

UPSTREAM_MS = 50
FAULT_KINDS = "500,502,503,429,delay,reset,malformed"
CLIENT_TIMEOUT = 0.3
SANDBOX_DELAY = 0.6
THREADS = 8
SHORT_BACKOFF = 0.1


@contextmanager
def _system(sandbox: str, stack: ExitStack, **overrides: Any) -> Iterator[Any]:
    from decentro_adapters.bootstrap import build
    from decentro_adapters.cache.redis_cache import RedisCache

    database_url = stack.enter_context(postgres_database())
    prefix = stack.enter_context(redis_prefix())
    cache = RedisCache(redis_url(), prefix=prefix)
    stack.callback(cache.close)
    with build(live_settings(sandbox, database_url=database_url, **overrides), cache=cache) as system:
        yield system


def run_async(*, calls: int = 1000, workers: int | None = None) -> dict[str, Any]:
    from decentro_core.async_service import DecentroService

    with ExitStack() as stack:
        sandbox = stack.enter_context(sandbox_process("--latency", f"fixed:{UPSTREAM_MS}"))
        overrides = {} if workers is None else {"async_workers": workers}
        system = stack.enter_context(_system(sandbox, stack, **overrides))
        service = DecentroService(blocking=system.service)
        stack.callback(service._executor.shutdown)
        run = f"async-{random.getrandbits(32):08x}"

        async def everything(count: int, label: str) -> list[dict[str, Any]]:
            return list(await asyncio.gather(*(service.verify_pan("ABCDE1234F", user_id=f"{run}-{label}-{n}")
                                               for n in range(count))))

        asyncio.run(everything(min(50, calls), "warmup"))
        cpu, started = time.process_time(), time.perf_counter()
        results = asyncio.run(everything(calls, "timed"))
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        ok = sum(r["status"] == "SUCCESS" for r in results)
        threads = service.settings.async_workers
    ideal = UPSTREAM_MS / 1000 + cpu
    return {"calls": calls, "succeeded": ok, "upstream_ms": UPSTREAM_MS, "async_workers": threads,
            "wall_s": wall, "cpu_s": cpu, "cpu_ms_per_call": cpu / calls * 1000, "ideal_s": ideal,
            "ratio": wall / ideal, "calls_per_s": calls / wall}


def _throughput(sandbox: str, operations: int, seed: int, **overrides: Any) -> dict[str, Any]:
    from .faultrun import _one, _operations

    with ExitStack() as stack:
        system = stack.enter_context(_system(sandbox, stack, timeout=CLIENT_TIMEOUT, connect_timeout=1.0,
                                             **overrides))
        work = _operations(system.service, random.Random(seed))
        jobs = [next(work) for _ in range(operations)]
        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            done = list(pool.map(lambda job: _one(*job), jobs))
        seconds = time.perf_counter() - started
        # Collect requests retried off the callers' threads: how long after the last answer they settle.
        system.service.wait_for_retries(60.0)
        drained = time.perf_counter() - started - seconds
    outcomes: dict[str, int] = {}
    for call in done:
        outcomes[call.outcome] = outcomes.get(call.outcome, 0) + 1
    return {"operations": operations, "seconds": seconds, "ops_per_s": operations / seconds,
            "outcomes": dict(sorted(outcomes.items())), "untyped": sum(c.outcome == "untyped" for c in done),
            "retry_scheduled": sum(c.reconciliation == "RETRY_SCHEDULED" for c in done),
            "background_settled_after_s": drained}


def run_fault_throughput(*, operations: int = 400, seed: int = 20240601, rate: float = 0.2) -> dict[str, Any]:
    with sandbox_process() as clean_url:
        clean = _throughput(clean_url, operations, seed)
    with sandbox_process("--random-faults", str(rate), "--random-kinds", FAULT_KINDS, "--seed", str(seed),
                         "--timeout-delay", str(SANDBOX_DELAY)) as faulty_url:
        faulty = _throughput(faulty_url, operations, seed)
        # Beside the target, for the reader choosing DECENTRO_BACKOFF_BASE: the same run, 0.1 s first backoff.
        short = _throughput(faulty_url, operations, seed, backoff_base=SHORT_BACKOFF)
    return {"threads": THREADS, "rate": rate, "client_timeout": CLIENT_TIMEOUT, "clean": clean, "faults": faulty,
            "ratio": faulty["ops_per_s"] / clean["ops_per_s"], "short_backoff": SHORT_BACKOFF,
            "faults_short_backoff": short, "ratio_short_backoff": short["ops_per_s"] / clean["ops_per_s"]}


if __name__ == "__main__":
    import json
    import logging

    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(run_async(calls=300), indent=1))
    print(json.dumps(run_fault_throughput(operations=120), indent=1))
