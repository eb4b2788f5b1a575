"""The deployment fault run (issue 10, "Survive a real deployment"): ``python -m bench.deployfault``.

gunicorn serves a Flask app mounting ``Decentro(app, identity=...)`` in live mode
(``bench/deploy/app.py``) against the sandbox on loopback, with a private PostgreSQL and a
private Redis used as production uses them (records; cache and rate-limit storage). A steady
mixed load runs throughout (PAN checks, payments, status reads, the sandbox's signed
callbacks) while one fault is injected per phase: ``hup`` (SIGHUP to the master, several
times), ``kill`` (SIGKILL to workers), ``redis`` and ``postgres`` (stopped and restarted),
``postgres_boot`` (PostgreSQL stopped and a worker killed meanwhile, so its replacement boots
without a database), ``upstream`` (the sandbox holds answers past ``DECENTRO_TIMEOUT``). A
``baseline`` phase without a fault comes first.

Per fault it reports client errors by code, 5xx, non-JSON errors, dropped answers, records
lost, duplicate payments, time to recover and whether the master lived, each against its
target (:mod:`bench.deploy.analysis`). Writes ``bench/out/deployfault.json`` and ``.md``
(git-ignored), gunicorn's and the servers' logs beside them, and with ``--docs`` the
deployment section of docs/benchmarks.md. ``--short`` is the profile the test suite runs.
The machine's own PostgreSQL and Redis are never touched.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from typing import Any

from .common import BENCH_FERNET_KEY
from .deploy import report
from .deploy.analysis import PhaseTimes, phase_report, terminal_statuses, totals
from .deploy.phases import PHASES, run_phase
from .deploy.rig import Profile, deployment, gunicorn_options
from .deploy.starvation import starvation_figures
from .servers import ROOT

__all__ = ["FULL", "OUT", "SHORT", "main", "run_deployment_faults"]

OUT = os.path.join(ROOT, "bench", "out")
FULL = Profile("full")  # production defaults; 12 clients for the bulkheads' 12 slots, so a hang can use them all
# The test suite's run: the same settings scaled down (DECENTRO_TIMEOUT 2 s, DECENTRO_DEADLINE 6 s under
# gunicorn's 10 s, two of each injection).
SHORT = Profile("short", clients=10, pause=0.1, gunicorn_timeout=10, graceful_timeout=10, decentro_timeout=2.0,
                decentro_deadline=6.0,
                client_timeout=20.0, hups=2, kills=2, spacing=0.0, outage=1.5, hang=3.0, hold_extra=1.0,
                per_step=6, observe=6.0, limit=45.0)


def read_records(database_url: str, references: set[str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The operation records of the run's references, and the stored callback events per reference,
    straight from the private PostgreSQL."""
    from decentro_adapters.sql.stores import open_stores
    from decentro_adapters.vault.fernet import FernetVault

    events: dict[str, list[str]] = {}
    with open_stores(database_url, vault=FernetVault([BENCH_FERNET_KEY])) as stores:
        found = {ref: stores.records.get_operation(ref) for ref in sorted(references)}
        for event in stores.records.webhook_events():
            events.setdefault(event.reference_id or "", []).append(
                f"{event.state} attempts={event.attempts} error={event.last_error or '-'}")
    return {ref: record for ref, record in found.items() if record is not None}, events


def run_deployment_faults(profile: Profile = FULL, *, phases: Sequence[str] = tuple(PHASES),
                          out_dir: str = OUT, command: str = "") -> dict[str, Any]:
    """Run the phases in order under load; the results (JSON-ready), written nowhere."""
    os.makedirs(out_dir, exist_ok=True)
    log_path = os.path.join(out_dir, "deployfault-gunicorn.log")
    open(log_path, "wb").close()
    started = time.monotonic()
    with deployment(profile, log_path=log_path, keep_logs=out_dir) as rig:
        times = [run_phase(rig, name) for name in phases]
        rig.load.stop()
        ending = PhaseTimes("end", "-", start=time.monotonic())
        rig.wait(lambda: time.monotonic() >= rig.late_until and rig.deliveries_settled(),
                 "held answers and callback deliveries to finish", ending)
        if times:
            rig.read_log(times[-1])  # what the server logged after the last clients left
        samples = rig.load.snapshot()
        references = {s.reference_id for s in samples if s.reference_id} | {c.reference_id for c in rig.created}
        records, events = read_records(rig.postgres.url, references)
        end = {"master_alive": rig.master_alive(), "master_restarts": len(rig.masters) - 1,
               "notes": ending.notes, "sandbox": rig.sandbox.stats()}
        created = list(rig.created)
    told = terminal_statuses(samples)
    reports = {t.name: {**phase_report(t, samples, records=records, terminal=told, created=created, events=events),
                        **starvation_figures(t, samples)} for t in times}
    return {
        "command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                    "platform": f"{platform.system()} {platform.machine()}"},
        "profile": asdict(profile), "gunicorn": gunicorn_options(profile), "seconds": time.monotonic() - started,
        "requests": len(samples), "payments_created": len(created), "end": end,
        "phases": reports, "totals": totals(reports),
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.deployfault", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--short", action="store_true", help="the test suite's scaled-down profile")
    p.add_argument("--only", action="append", choices=[n for n in PHASES if n != "baseline"],
                   help="run only these faults (repeatable; the baseline always runs first)")
    p.add_argument("--out", default=OUT, help="folder for deployfault.json, .md and the logs")
    p.add_argument("--docs", nargs="?", const=os.path.join(ROOT, "docs", "benchmarks.md"), default=None,
                   help="also rewrite the deployment section of this page (default docs/benchmarks.md)")
    p.add_argument("--cold-boot", action="store_true",
                   help="workers import everything themselves and compile their bytecode (the HUP gap's baseline)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--render", action="store_true", help="only rewrite the tables from --out's deployfault.json")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    shown = list(sys.argv[1:] if argv is None else argv)
    command = " ".join([".venv/bin/python -m bench.deployfault", *map(shlex.quote, shown)])
    phases = ["baseline", *(args.only or [n for n in PHASES if n != "baseline"])]
    saved = os.path.join(args.out, "deployfault.json")
    if args.render:
        with open(saved, encoding="utf-8") as found:
            results = json.load(found)
    else:
        profile = replace(SHORT if args.short else FULL, cold_boot=args.cold_boot)
        results = run_deployment_faults(profile, phases=phases, out_dir=args.out, command=command)
        with open(saved, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2)
            out.write("\n")
    with open(os.path.join(args.out, "deployfault.md"), "w", encoding="utf-8") as out:
        out.write(report.section(results) + "\n")
    if args.docs:
        with open(args.docs, encoding="utf-8") as page:
            text = page.read()
        with open(args.docs, "w", encoding="utf-8") as page:
            page.write(report.splice(text, report.section(results)))
    print(report.table(results))
    print(f"\nmaster alive at the end: {results['end']['master_alive']}; wrote {args.out}/deployfault.json")
    missed = [name for name, total in results["totals"].items() if not total["met"]]
    if missed:
        print("MISSED: " + ", ".join(f"{n} ({', '.join(results['totals'][n]['missed_in'])})" for n in missed))
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
