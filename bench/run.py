"""``python -m bench``: run every benchmark on loopback, write results.json and docs/benchmarks.md.

Options: ``--quick`` (small counts: a smoke run whose figures mean nothing), ``--only NAME``
(repeatable: latency, upstream, wrk, async, throughput, rss, faults, webhooks, aadhaar;
``webhooks`` (the older Python-client webhook load) and ``aadhaar`` (its ZIP cases at a 5 MiB
cap cost a minute of CPU) run only when named), ``--results PATH``, ``--docs PATH``,
``--render`` (rewrite the page from saved results, measuring nothing).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from . import report
from .common import sandbox_process

__all__ = ["main"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PARTS = ("latency", "upstream", "wrk", "async", "throughput", "rss", "faults", "webhooks", "aadhaar")
DEFAULT_PARTS = PARTS[:-2]
FULL = {"latency": {"rounds": 5, "per_round": 200}, "upstream": {"documents": 1000},
        "wrk": {"rounds": 3, "seconds": 8.0, "payments": 12_000}, "async": {"calls": 1000},
        "throughput": {"operations": 400},
        "webhooks": {"rounds": 5, "per_phase": 1000, "phase_seconds": 15.0},
        "rss": {"operations": 100_000, "warmup": 5_000}, "faults": {"operations": 1000},
        "aadhaar": {"repeats": 20}}
QUICK = {"latency": {"rounds": 2, "per_round": 10}, "upstream": {"documents": 20},
         "wrk": {"rounds": 1, "seconds": 1.0, "payments": 500}, "async": {"calls": 40},
         "throughput": {"operations": 24},
         "webhooks": {"rounds": 2, "per_phase": 30, "phase_seconds": 5.0},
         "rss": {"operations": 500, "warmup": 100}, "faults": {"operations": 40},
         "aadhaar": {"repeats": 2}}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small counts: proves the harness works, nothing more")
    p.add_argument("--only", action="append", choices=PARTS, help="run only these parts (repeatable)")
    p.add_argument("--results", default=os.path.join(ROOT, "bench", "results.json"))
    p.add_argument("--docs", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    p.add_argument("--render", action="store_true", help="only rewrite --docs from an existing --results file")
    return p


def _run_parts(parts: Sequence[str], counts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if {"latency", "upstream"} & set(parts):
        with sandbox_process() as url:
            if "latency" in parts:
                from .latency import run_latency

                details["latency"] = run_latency(url, **counts["latency"])
            if "upstream" in parts:
                from .upstream import run_upstream_calls

                details["upstream"] = run_upstream_calls(url, **counts["upstream"])
    if "wrk" in parts:
        from .wrkload import run_wrk

        details["wrk"] = run_wrk(**counts["wrk"])
    if "async" in parts:
        from .concurrency import run_async

        details["async"] = run_async(**counts["async"])
    if "throughput" in parts:
        from .concurrency import run_fault_throughput

        details["throughput"] = run_fault_throughput(**counts["throughput"])
    if "webhooks" in parts:
        from .webhooks import run_webhooks

        details["webhooks"] = run_webhooks(**counts["webhooks"])
    if "rss" in parts:
        from .memory import run_rss

        details["rss"] = run_rss(**counts["rss"])
    if "faults" in parts:
        from .faultrun import run_fault_mix

        details["faults"] = run_fault_mix(**counts["faults"]).summary()
    if "aadhaar" in parts:
        from .aadhaar_refusal import run_both

        details["aadhaar"] = run_both(**counts["aadhaar"])
    return details


def _metrics(details: dict[str, Any]) -> dict[str, dict[str, Any]]:
    values: dict[str, float] = {}
    if "latency" in details:
        lat = details["latency"]
        no_env = lat["ratios_no_env"]
        values["raw_requests_ms"] = lat["ms"]["raw"]["median"]
        values["raw_no_env_ms"] = lat["ms"]["raw_no_env"]["median"]
        values["gateway_vs_raw_no_env"] = no_env["gateway"]
        if "kyc_full_postgres_redis" in no_env:
            values["kyc_full_pg_redis_vs_raw"] = no_env["kyc_full_postgres_redis"]
            values["cache_hit_pg_redis_vs_raw"] = no_env["cache_hit_postgres_redis"]
        values["gateway_vs_raw"] = lat["ratios"]["gateway"]
        values["kyc_full_sqlite_vs_raw"] = no_env["kyc_full_sqlite"]
        values["cache_hit_sqlite_vs_raw"] = no_env["cache_hit"]
        trips = lat.get("round_trips") or {}
        if trips:
            values["pg_round_trips_per_kyc_miss"] = trips["postgres"]
            values["redis_round_trips_per_kyc_miss"] = trips["redis"]
            values["pg_commits_per_kyc_miss"] = trips["commits"]
            if "hit" in trips:
                values["pg_round_trips_per_kyc_hit"] = trips["hit"]["postgres"]
                values["pg_commits_per_kyc_hit"] = trips["hit"]["commits"]
    if "upstream" in details:
        values["upstream_calls_per_unique_document"] = details["upstream"]["calls_per_unique_document"]
    if "wrk" in details:
        values["route_vs_bare_gunicorn"] = details["wrk"]["pan"]["ratio"]
        values["webhook_vs_bare_gunicorn"] = details["wrk"]["webhook"]["ratio"]
    if "async" in details:
        values["async_wall_vs_ideal"] = details["async"]["ratio"]
    if "throughput" in details:
        values["fault_throughput_vs_clean"] = details["throughput"]["ratio"]
        if "ratio_short_backoff" in details["throughput"]:
            values["fault_throughput_vs_clean_backoff_0_1"] = details["throughput"]["ratio_short_backoff"]
    if "webhooks" in details:
        values["webhook_vs_bare"] = details["webhooks"]["ratio"]
    if "rss" in details:
        values["rss_growth_pct"] = details["rss"]["growth_pct"]
    if "aadhaar" in details:
        from .aadhaar_refusal import metrics

        values.update(metrics(details["aadhaar"]))
    ordered = [name for name in report.TARGETS if name in values] + [n for n in values if n not in report.TARGETS]
    return {name: report.verdict(name, values[name]) for name in ordered}


def _write_page(path: str, page: str) -> None:
    """Write the page, keeping the section ``python -m bench.deployfault --docs`` wrote in it."""
    from .deploy.report import carry_section

    previous = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as old:
            previous = old.read()
    with open(path, "w", encoding="utf-8") as out:
        out.write(carry_section(previous, page))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.render:
        with open(args.results, encoding="utf-8") as saved:
            _write_page(args.docs, report.markdown(json.load(saved)))
        return 0
    logging.basicConfig(level=logging.ERROR)  # the library's warnings about demo settings are expected here
    parts = args.only or list(DEFAULT_PARTS)
    details = _run_parts(parts, QUICK if args.quick else FULL)
    results = {
        "command": " ".join([".venv/bin/python -m bench", *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                    "platform": f"{platform.system()} {platform.machine()}"},
        "quick": args.quick, "metrics": _metrics(details), "details": details,
    }
    with open(args.results, "w", encoding="utf-8") as out:
        json.dump(results, out, indent=2)
        out.write("\n")
    _write_page(args.docs, report.markdown(results))
    print(report.table(results["metrics"]))
    print(f"\nwrote {args.results} and {args.docs}")
    return 0
