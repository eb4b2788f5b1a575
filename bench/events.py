"""What outcome events cost per settled payment: a signed callback settling a PENDING payment.

Three variants of the same callback path (HMAC check, sealed store, dedupe, status update,
audit append) through :class:`~decentro_core.webhooks.WebhookProcessor`, in one process:

* ``no_outbox``: the event row is not written (what the library did before outcome events);
* ``outbox``: the event row is written in the callback's transaction, nobody listens (it waits);
* ``inline``: written, then delivered after the commit to one handler that does nothing (the
  claim and the delivery record: two more statements).

Each round settles ``--calls`` fresh payments per variant, the variants interleaved round by
round; the figure is the median over rounds of the per-callback median, in milliseconds, on a
SQLite file and on PostgreSQL. ``python -m bench.events`` prints JSON and writes
``bench/events.json``; ``--docs`` also writes its section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from unittest import mock

from decentro_core.events import EventDispatcher
from decentro_core.webhooks import WebhookProcessor, sign_body

from .common import BENCH_AUDIT_KEY, BENCH_FERNET_KEY, postgres_database
from .webhooks import callback_body

VARIANTS = ("no_outbox", "outbox", "inline")
SECRET = "bench-events-secret"
OUT = Path(__file__).with_name("events.json")


@contextmanager
def _sqlite() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="decentro-bench-events-") as folder:
        yield f"sqlite:///{folder}/events.sqlite3"


def _seed(stores: Any, count: int) -> list[str]:
    from decentro_core.ports import OperationRecord

    now = datetime.now(timezone.utc)
    references = [str(uuid.uuid4()) for _ in range(count)]
    with stores.database.atomic():
        for ref in references:
            stores.records.save_operation(OperationRecord(ref, "upi_payment", "PENDING", now, now))
    return references


def _round(stores: Any, vault: Any, variant: str, calls: int) -> float:
    """Median milliseconds per callback for ``calls`` fresh payments under ``variant``."""
    dispatcher = EventDispatcher(stores.records.outbox, lambda: datetime.now(timezone.utc), mode="inline")
    if variant == "inline":
        dispatcher.on("payment.succeeded", lambda event: None, name="bench.noop")
    processor = WebhookProcessor(stores.records, vault, stores.audit, secrets=[SECRET], events=dispatcher)
    bodies = [callback_body(ref) for ref in _seed(stores, calls)]
    signed = [(body, sign_body(body, SECRET)) for body in bodies]
    timings = []
    patch = mock.patch("decentro_core.webhooks.processor.outcome_event", lambda *a, **k: None) \
        if variant == "no_outbox" else _nothing()
    with patch:
        for body, signature in signed:
            started = time.perf_counter()
            ack = processor.receive(body, signature=signature)
            timings.append((time.perf_counter() - started) * 1000)
            assert ack.http_status == 200 and ack.outcome == "SUCCESS", ack
    return statistics.median(timings)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def measure(url: str, *, rounds: int, calls: int) -> dict[str, Any]:
    from decentro_adapters.sql.audit import PeeweeAuditSink
    from decentro_adapters.sql.stores import open_stores
    from decentro_adapters.vault.fernet import FernetVault
    from decentro_core.audit import AuditKeyring

    vault = FernetVault([BENCH_FERNET_KEY])
    per_round: dict[str, list[float]] = {v: [] for v in VARIANTS}
    with open_stores(url, vault=vault, schema="upgrade") as opened:
        stores = replace(opened, audit=PeeweeAuditSink(opened.database, opened.models,
                                                       AuditKeyring([BENCH_AUDIT_KEY])))
        _round(stores, vault, "outbox", calls)  # warm-up: connections, statement caches
        for _ in range(rounds):
            for variant in VARIANTS:
                per_round[variant].append(_round(stores, vault, variant, calls))
        delivered = len(stores.records.outbox.events(state="delivered", limit=10 ** 6))
    medians = {v: statistics.median(ms) for v, ms in per_round.items()}
    return {
        "ms_per_callback": {v: round(m, 3) for v, m in medians.items()},
        "outbox_write_ms": round(medians["outbox"] - medians["no_outbox"], 3),
        "inline_dispatch_ms": round(medians["inline"] - medians["outbox"], 3),
        "event_cost_ms": round(medians["inline"] - medians["no_outbox"], 3),
        "event_cost_pct": round(100 * (medians["inline"] / medians["no_outbox"] - 1), 1),
        "rounds": rounds, "calls_per_round": calls, "delivered": delivered,
        "per_round_ms": {v: [round(x, 3) for x in ms] for v, ms in per_round.items()},
    }


def section(results: dict[str, Any], command: str) -> str:
    """The docs/benchmarks.md section, markers included."""
    from .deploy.report import SECTIONS

    begin, end = SECTIONS[1]
    rows = []
    for store in ("sqlite", "postgresql"):
        r = results[store]
        ms = r["ms_per_callback"]
        rows.append(f"| {store} | {ms['no_outbox']:.3f} | {ms['outbox']:.3f} | {ms['inline']:.3f} | "
                    f"{r['outbox_write_ms']:.3f} | {r['inline_dispatch_ms']:.3f} | "
                    f"{r['event_cost_ms']:.3f} ({r['event_cost_pct']:+.1f} %) |")
    sample = results["sqlite"]
    return "\n".join([
        begin,
        "## Cost of outcome events per settled payment (`python -m bench.events`)",
        "",
        "One signed callback settling one PENDING payment through `WebhookProcessor.receive` (HMAC,",
        "sealed store, dedupe, status update, audit append), in milliseconds: the median over "
        f"{sample['rounds']} rounds of the",
        f"per-callback median of {sample['calls_per_round']} payments, the three variants interleaved round by round.",
        "`no_outbox`: the event row is not written (as before outcome events); `outbox`: written in",
        "the callback's transaction, nobody listens; `inline`: written already claimed, then delivered",
        "after the commit to one handler that does nothing (one more statement: the delivery record,",
        "committed without waiting for its WAL flush on PostgreSQL).",
        "",
        "| store | no_outbox | outbox | inline | outbox row | inline delivery | events in all |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"- Date: {results['date']}; command: `{command}`; raw results: `bench/events.json`.",
        f"- Machine: {results.get('machine', 'see the top of this page')}.",
        end,
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--docs", action="store_true", help="also write the section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    with _sqlite() as url:
        results["sqlite"] = measure(url, rounds=args.rounds, calls=args.calls)
    with postgres_database() as url:
        results["postgresql"] = measure(url, rounds=args.rounds, calls=args.calls)
    results["machine"] = _machine()
    OUT.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    if args.docs:
        from .deploy.report import SECTIONS, splice

        command = "python -m bench.events --docs" + "".join(
            f" --{k} {v}" for k, v in (("rounds", args.rounds), ("calls", args.calls)) if v != {"rounds": 5, "calls": 200}[k])
        docs = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        begin, end = SECTIONS[1]
        docs.write_text(splice(docs.read_text(encoding="utf-8"), section(results, command), begin, end),
                        encoding="utf-8")
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "per_round_ms"} if isinstance(v, dict) else v
                      for k, v in results.items()}, indent=2))
    return 0


def _machine() -> str:
    import os
    import platform

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()} {platform.machine()}, "
            f"load average at the end {load}")


if __name__ == "__main__":
    raise SystemExit(main())
