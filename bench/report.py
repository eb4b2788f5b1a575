"""The results table, the bar chart and docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

__all__ = ["chart", "markdown", "table"]

# name -> (target text, test, unit shown)
TARGETS: dict[str, tuple[str, Any]] = {
    "raw_requests_ms": ("baseline", None),
    "gateway_vs_raw": ("<= 1.05", lambda v: v <= 1.05),
    "kyc_full_vs_raw": ("<= 1.5", lambda v: v <= 1.5),
    "kyc_full_pg_redis_vs_raw": ("reported", None),
    "cache_hit_vs_raw": ("<= 0.1", lambda v: v <= 0.1),
    "upstream_calls_per_unique_document": ("1.00", lambda v: abs(v - 1.0) < 1e-9),
    "webhook_vs_bare": (">= 0.6", lambda v: v >= 0.6),
    "rss_growth_pct": ("< 10", lambda v: v < 10),
    # bench/aadhaar_refusal.py: hostile uploads at a 5 MiB cap; ZIPs at the adapter's default cap
    "aadhaar_xml_refusal_cpu_ms": ("< 100", lambda v: v < 100),
    "aadhaar_xml_refusal_peak_rss_mib": ("< 20", lambda v: v < 20),
    "aadhaar_zip_refusal_cpu_ms": ("< 100", lambda v: v < 100),
    "aadhaar_zip_refusal_cpu_ms_at_5mib": ("reported", None),
    "aadhaar_genuine_verify_ms": ("reported", None),
    "aadhaar_genuine_zip_verify_ms": ("reported", None),
}


def verdict(name: str, value: float) -> dict[str, Any]:
    target, test = TARGETS[name]
    return {"value": value, "target": target, "met": None if test is None else bool(test(value))}


def _mark(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "-"}[met]


def table(metrics: dict[str, dict[str, Any]]) -> str:
    """A fixed-width text table for stdout."""
    lines = [f"{'metric':38} {'value':>10} {'target':>10}  result", "-" * 70]
    for name, m in metrics.items():
        lines.append(f"{name:38} {m['value']:>10.3f} {m['target']:>10}  {_mark(m['met'])}")
    return "\n".join(lines)


def chart(bars: dict[str, float], *, width: int = 40) -> str:
    """A Unicode bar chart, scaled to the largest value."""
    if not bars:
        return "(not run)"
    top = max(bars.values()) or 1.0
    lines = []
    for label, value in bars.items():
        cells = value / top * width
        full = int(cells)
        part = " ▏▎▍▌▋▊▉"[int((cells - full) * 8)]
        lines.append(f"{label:26} {'█' * full}{part.strip()} {value:.3f}")
    return "\n".join(lines)


def markdown(results: dict[str, Any]) -> str:
    metrics = results["metrics"]
    details = results["details"]
    rows = "\n".join(f"| `{name}` | {m['value']:.3f} | {m['target']} | {_mark(m['met'])} |"
                     for name, m in metrics.items())
    lat = details.get("latency", {}).get("ms", {})
    ms_chart = chart({name: v["median"] for name, v in lat.items()}) if lat else "(not run)"
    ratio_chart = chart({name: m["value"] for name, m in metrics.items()
                         if name.endswith(("_vs_raw", "_vs_bare"))})
    machine = results["machine"]
    return TEMPLATE.format(
        command=results["command"], date=results["date"], nproc=machine["nproc"], python=machine["python"],
        platform=machine["platform"], quick=" (QUICK smoke run: counts scaled down)" if results["quick"] else "",
        rows=rows, ms_chart=ms_chart, ratio_chart=ratio_chart, faults=_faults(details.get("faults")),
        **_detail_fields(details),
    )


def _faults(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "(not run)"
    kinds = sorted({o for d in summary["distribution"].values() for o in d})
    head = "| operation | " + " | ".join(kinds) + " |\n|---|" + "---|" * len(kinds)
    rows = [f"| {op} | " + " | ".join(str(d.get(k, 0)) for k in kinds) + " |"
            for op, d in summary["distribution"].items()]
    injected = ", ".join(f"{k}: {v}" for k, v in sorted(summary["faults_injected"].items()))
    return "\n".join([
        head, *rows, "",
        f"- {summary['operations']} operations in {summary['seconds']:.1f} s; outcomes: {summary['outcomes']}",
        f"- faults injected: {injected}; {summary['requests_reaching_emulator']} requests reached the emulator",
        f"- payments created by the sandbox: {summary['payments_created']}, at most "
        f"{summary['max_creations_per_payment']} per logical payment; "
        f"{summary['outcome_unknown']} writes answered PENDING with reconciliation OUTCOME_UNKNOWN",
        f"- untyped failures: {len(summary['unexpected'])}",
    ])


def _detail_fields(d: dict[str, Any]) -> dict[str, Any]:
    lat, up, hook, rss = d.get("latency", {}), d.get("upstream", {}), d.get("webhooks", {}), d.get("rss", {})
    return {
        "lat_rounds": lat.get("rounds", "-"), "lat_per_round": lat.get("per_round", "-"),
        "up_requests": up.get("requests", "-"), "up_unique": up.get("unique_documents", "-"),
        "up_billable": up.get("billable_calls", "-"), "up_cached": up.get("cached", "-"),
        "up_errors": up.get("errors", "-"),
        "hook_rps": f"{hook.get('webhook_rps', 0):.0f}", "bare_rps": f"{hook.get('bare_rps', 0):.0f}",
        "hook_rounds": hook.get("rounds", "-"), "hook_per_phase": hook.get("per_phase", "-"),
        "hook_failed": hook.get("failed_requests", "-"),
        "rss_ops": rss.get("operations", "-"), "rss_start": rss.get("start_kib", "-"),
        "rss_end": rss.get("end_kib", "-"), "rss_curve": ", ".join(str(v) for v in rss.get("curve_kib", [])),
        "rss_rate": f"{rss.get('ops_per_second', 0):.0f}",
    }


TEMPLATE = """\
# Benchmarks{quick}

Measured on loopback against the offline sandbox (`decentro_adapters.emulator.sandbox`, in its own
process). Every figure is a median over rounds; ratios are taken round by round with the
variants interleaved call by call, so drift in the machine cancels out.

- Command: `{command}`
- Date: {date}
- Machine: {nproc} CPUs (nproc), Python {python}, {platform}
- Raw results: `bench/results.json` (per-round medians, spreads, the RSS curve, the fault mix)
- The full run took 72 s on this machine (`time .venv/bin/python -m bench`); `--quick` is a smoke run.
- `webhook_vs_bare` sits close to its target: full runs measured 0.605 and 0.626, so a single
  run on a busy machine can fall below 0.6.

## Results

| metric | value | target | result |
|---|---|---|---|
{rows}

Where a target is missed it says MISSED: the benchmark is not tuned to hide it (see
"What the misses cost" below).

## Milliseconds per call (median of {lat_rounds} rounds x {lat_per_round} calls)

```
{ms_chart}
```

## Ratios (lower is better for `_vs_raw`, higher for `webhook_vs_bare`)

```
{ratio_chart}
```

## What each figure measures

- `raw_requests_ms`: a bare `requests.Session` posting Decentro's PAN body with the static
  headers and reading the JSON (what a user would write from the guide).
- `gateway_vs_raw`: `RequestsGateway.send` alone for the same request.
- `kyc_full_vs_raw`: `BlockingDecentroService.verify_pan` in live mode against the sandbox,
  a fresh `user_id` per call (a cache miss): validation, consent row, cache lock, write-ahead
  record, sealing with `FernetVault`, the HTTP call, record update, hash-chained audit row,
  two sealed cache writes. Peewee on a SQLite file, in-memory cache.
  `kyc_full_pg_redis_vs_raw` is the same on PostgreSQL (a fresh database) with Redis.
- `cache_hit_vs_raw`: the same `user_id` and PAN again, answered from the cache (the consent
  row and the audit row are still written: both are legal records of the request).
- `upstream_calls_per_unique_document`: {up_requests} KYC requests for {up_unique} unique
  (user, PAN) pairs, each asked twice, from two processes (multiprocessing spawn, 8 threads
  each, PostgreSQL records, one Redis); billable calls counted by the sandbox's
  `/_sandbox/stats`: {up_billable} billable, {up_cached} answers served from cache, {up_errors} errors.
- `webhook_vs_bare`: callbacks per second through the extension's route
  (`/api/webhooks/decentro`: HMAC, sealed store, dedupe, audit, status update; one in ten an
  exact redelivery) against `POST /bare` (reads the body, answers 200), both served by the same
  gunicorn (2 sync workers) from `bench/webhook_app.py`, loaded by 8 client threads;
  {hook_rounds} alternating rounds of up to {hook_per_phase} requests: {hook_rps} vs {bare_rps}
  requests/s, {hook_failed} failed. PostgreSQL store: with two worker processes SQLite
  serialises every write on one file lock, so the comparison would measure SQLite's lock.
  The load generator shares the machine's CPUs with the server.
- `rss_growth_pct`: RSS (`/proc/self/status`) after a warm-up and after {rss_ops} operations
  through the blocking service in mock mode (Peewee SQLite file store, in-memory cache with 50
  users; half full PAN checks without `user_id`, half cache hits); the mock emulator's memory
  of reference ids is reset every 10,000 operations (that is the fake upstream's state).
  RSS went {rss_start} -> {rss_end} KiB; curve (KiB): {rss_curve}; {rss_rate} operations/s.

## Where the time goes (cProfile, this machine) and what was done about it

A first run missed three targets; profiling (`cProfile`, 500-1,000 calls, sandbox in its own
process, SQLite file store) found where, and the fixes were made in the code, not here:

- `kyc_full_vs_raw` was 2.83. The store wrote each operation twice with a SELECT before each
  upsert, and peewee built every statement's SQL in Python. Now the runner writes from the
  record it holds (no read before a write), the hot statements are compiled once per store
  (`INSERT ... ON CONFLICT DO UPDATE`), and the audit append reads the last hash in one query.
  The next profile showed `requests` re-reading proxy and CA variables from `os.environ` on
  every request (`trust_env`): the live gateway now reads them once when it is built. A cache
  miss also seals its result once for both cache entries.
- `webhook_vs_bare` was 0.38: 16 SQL statements per callback, each in its own transaction. Now
  one INSERT stores the event and one transaction (`RecordStore.apply_callback`) locks the
  operation, saves its new status, appends the audit row and marks the event processed; on
  PostgreSQL about 8 round trips.
- `cache_hit_vs_raw` stays above 0.1 by choice: a hit still writes the consent record and the
  audit event (the legal record of that request), and those two rows are most of its time.
  Meeting 0.1 (about 80 microseconds here) would mean writing them off the request path or not
  at all on a hit: a product decision, not a tuning one.

## Fault run (also a CI test: `tests/e2e/test_fault_run.py`)

Live mode over real HTTP against the sandbox with 20% of answers faulted at random (seeded):
500, 502, 503, 429, a delay past the client's 0.3 s timeout on a request the sandbox did
process, a reset connection, malformed JSON. A payment is followed by a status check.
`raised:CODE` counts typed `DecentroError`s by code.

{faults}

Note: the run caps its injected `sleep` at 0.02 s to keep it short (the number of attempts is
unchanged).

## Webhook fault run (a CI test: `tests/e2e/test_webhook_fault_run.py`)

The sandbox delivers signed callbacks over HTTP to `bench/webhook_app.py` under gunicorn
(2 workers x 4 threads, PostgreSQL). 20 payments: 12 settle at once with every callback sent
twice and in swapped pairs; the receiver is killed (SIGKILL) and 4 settle while nobody
listens, so first attempts fail and the sandbox's retries reach a restarted receiver; then the
receiver sleeps before applying (`BENCH_WEBHOOK_SLEEP`), 4 settle, it is killed with the 4
events `received`, restarted, and `flask decentro webhooks replay --all` replays them
("replayed 4, still failing 0"). Checked: 20 stored events for 20 distinct callbacks, all
`processed`; exactly one callback audit event per payment (applied once); every payment
record holds its terminal status; the sandbox counted duplicate sends and failed attempts.
It runs in about 10 s.

## Run it

```
.venv/bin/python -m bench            # everything, writes bench/results.json and this file
.venv/bin/python -m bench --quick    # a smoke run with small counts (does not mean anything)
.venv/bin/python -m bench --only latency --only webhooks   # some parts (latency, upstream, webhooks, rss, faults, aadhaar)
.venv/bin/python -m bench --render   # rewrite this page from bench/results.json
```

Needs PostgreSQL (`DECENTRO_TEST_DATABASE_URL`, default
`postgresql://postgres@127.0.0.1:5432/postgres`; a fresh database is created and dropped) and
Redis (`DECENTRO_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/0`; a unique key prefix,
deleted after).
"""
