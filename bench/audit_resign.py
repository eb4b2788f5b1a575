"""Audit re-signing speed: ``python -m bench.audit_resign [--rows N]`` writes N audit rows under an
old key, then on a fresh PostgreSQL database and on a SQLite file times, in the same run, a plain
``verify()`` (the baseline: one walk) and ``resign()`` (``flask decentro rotate-audit-key``: the
walk plus the rewrite). On PostgreSQL a thread appends throughout the re-signing and reports its
slowest append, which is how long appenders waited for the re-signing's final locked stretch."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from .common import on_each_database

__all__ = ["main", "resign_timed"]

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def resign_timed(url: str, rows: int) -> dict[str, Any]:
    from decentro_adapters.sql.audit import PeeweeAuditSink
    from decentro_adapters.sql.stores import open_stores
    from decentro_core.audit import AuditKeyring, generate_audit_key
    from decentro_core.ports import AuditEvent

    old, new = generate_audit_key(), generate_audit_key()
    with open_stores(url, schema="upgrade") as stores:
        old_sink = PeeweeAuditSink(stores.database, stores.models, AuditKeyring([old]))
        previous = ""
        with stores.database.atomic():
            for start in range(0, rows, 1000):
                batch = []
                for i in range(start, min(rows, start + 1000)):
                    event = AuditEvent("system", "pan", "ABCDE****F", "SUCCESS", T0 + timedelta(seconds=i), f"T{i}")
                    values = old_sink.values(previous, event)
                    previous = values[-1]
                    batch.append(dict(zip(("actor", "action", "subject", "outcome", "occurred_at", "operation_id",
                                           "reference_id", "row_hash"), values)))
                stores.models.audit.insert_many(batch).execute()
        sink = PeeweeAuditSink(stores.database, stores.models, AuditKeyring([new, old]))
        started = time.perf_counter()
        assert sink.verify().ok
        verify_s = time.perf_counter() - started
        waits: list[float] = []
        done = threading.Event()

        def append() -> None:  # PostgreSQL only: SQLite's one writer would just queue behind it
            n = 0
            while not done.is_set():
                began = time.perf_counter()
                sink.append(AuditEvent("bench", "pan", "ABCDE****F", "SUCCESS", T0, f"A{n}"))
                waits.append(time.perf_counter() - began)
                n += 1
                time.sleep(0.01)

        appender = threading.Thread(target=append) if url.startswith("postgres") else None
        if appender is not None:
            appender.start()
        started = time.perf_counter()
        report = sink.resign()
        resign_s = time.perf_counter() - started
        done.set()
        if appender is not None:
            appender.join(timeout=60)
        assert report.ok and PeeweeAuditSink(stores.database, stores.models, AuditKeyring([new])).verify().ok
    return {"rows": rows, "verify_s": round(verify_s, 2), "resign_s": round(resign_s, 2),
            "resigned": report.resigned, "appends_during": len(waits),
            "slowest_append_ms": round(max(waits) * 1000, 1) if waits else None}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audit_resign", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="audit rows to re-sign")
    args = parser.parse_args(argv)
    on_each_database("audit", lambda url: resign_timed(url, args.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
