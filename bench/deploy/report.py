"""The deployment fault run's tables: stdout, bench/out/deployfault.md and its docs/benchmarks.md section.

The section sits between two markers in docs/benchmarks.md; :func:`splice` replaces it (or
inserts it before "## Run it"), and :func:`carry_section` keeps it when ``python -m bench``
rewrites the rest of the page.
"""

from __future__ import annotations

import re
from typing import Any

from .analysis import TARGETS
from .starvation import starvation_markdown

__all__ = ["BEGIN", "END", "SECTIONS", "carry_section", "markdown", "markers", "section", "splice", "table"]

BEGIN = "<!-- deployfault:begin (written by python -m bench.deployfault --docs) -->"
END = "<!-- deployfault:end -->"
TARGET_NAMES = {"master_alive": "master alive", "records_lost": "records lost",
                "duplicate_payments": "duplicate payments", "non_json_errors": "non-JSON (HTML) errors",
                "recovery_s": "recovery after the return"}


def _mark(met: bool | None, text: str) -> str:
    return text if met is not False else f"**{text} MISSED**"


def _errors(errors: dict[str, int], limit: int = 4) -> str:
    if not errors:
        return "-"
    shown = [f"`{code}` {n}" for code, n in list(errors.items())[:limit]]
    rest = sum(list(errors.values())[limit:])
    return ", ".join(shown) + (f", other {rest}" if rest else "")


def _recovery(f: dict[str, Any]) -> str:
    if f["targets"]["recovery_s"] is None:
        return "-"
    value = "never" if f["recovery_s"] is None else f"{f['recovery_s']:.1f} s"
    late = f["failed_after_recovery_window"]
    text = value + (f", {late} failed later" if late else "")
    return _mark(f["targets"]["recovery_s"], text)


def markdown(results: dict[str, Any]) -> str:
    """The per-fault table and the targets, in Markdown."""
    head = ("| fault | requests (ok) | errors by code | 5xx | non-JSON | no answer | slowest answer | records lost "
            "| duplicate payments | recovery | master alive |\n|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for f in results["phases"].values():
        t = f["targets"]
        injected = f" x{f['injections']}" if f["injections"] > 1 else ""
        rows.append(
            f"| {f['fault']}{injected} | {f['requests']} ({f['ok']}) | {_errors(f['errors'])} | {f['http_5xx']} "
            f"| {_mark(t['non_json_errors'], str(f['non_json_errors']))} | {f['no_answer']} "
            f"| {f['latency_s'].get('max', 0):.1f} s "
            f"| {_mark(t['records_lost'], str(f['records_lost']))} "
            f"| {_mark(t['duplicate_payments'], str(f['duplicate_payments']))} | {_recovery(f)} "
            f"| {_mark(t['master_alive'], 'yes' if f['master_alive'] else 'no')} |")
    totals = ["| target | wanted | result |", "|---|---|---|"]
    for name, total in results["totals"].items():
        where = ", ".join(total["missed_in"])
        totals.append(f"| {TARGET_NAMES[name]} | {TARGETS[name]} | "
                      f"{'met in every phase' if total['met'] else '**MISSED** in ' + where} |")
    return "\n".join([head, *rows, "", *totals])


ROUTINE = ("Booting worker", "Handling signal", "Worker exiting", "Hang up", "app loaded in worker")
FIRST = ("Reason:", "failed to boot", "Shutting down", "deadlock", "WORKER TIMEOUT", "outlived", "could not be recorded",
         "can be replayed")
ABSOLUTE_PATH = re.compile(r"""(^|[\s"'(])/""")


def _notable(log_lines: dict[str, int], limit: int = 7) -> list[str]:
    """The log lines worth a reader's time: failures first, routine lines and machine paths never."""
    kept = [(text, n) for text, n in log_lines.items()
            if not any(word in text for word in ROUTINE) and not ABSOLUTE_PATH.search(text)]
    kept.sort(key=lambda item: (not any(word in item[0] for word in FIRST), "bench: " not in item[0], -item[1]))
    return [f"`{text}` x{n}" for text, n in kept[:limit]]


def _evidence(results: dict[str, Any]) -> str:
    lines = []
    for name, f in results["phases"].items():
        notable = _notable(f["log_lines"])
        extra = list(f["notes"]) + f["lost_examples"][:2] + f["late_failures"][:2]
        if f["callbacks_undelivered"]:
            extra.append(f"{f['callbacks_undelivered']} callback(s) given up by the sandbox after every attempt")
        latency = f["latency_s"]
        lines.append(f"- **{name}**: answers in {latency.get('median', 0):.2f} s (median), "
                     f"{latency.get('max', 0):.1f} s at most"
                     f"{'; log: ' + ', '.join(notable) if notable else ''}{'; ' + '; '.join(extra) if extra else ''}")
    return "\n".join(lines)


def section(results: dict[str, Any]) -> str:
    """The docs/benchmarks.md section, markers included."""
    p, m = results["profile"], results["machine"]
    return f"""{BEGIN}
## Deployment fault run (`python -m bench.deployfault`)

gunicorn serves a Flask app with `Decentro(app, identity=...)` in live mode against the sandbox,
with a private PostgreSQL (records) and Redis (cache, rate-limit storage), under a steady mixed
load ({p['clients']} client threads: PAN checks with new synthetic users and PANs, payments,
status reads, and the sandbox's signed callbacks). One fault per phase. gunicorn
`{' '.join(results['gunicorn'])}`; `DECENTRO_TIMEOUT={p['decentro_timeout']:g}`; clients wait
{p['client_timeout']:g} s. Settings explained in [deployment.md](deployment.md).

- Command: `{results['command']}` ({results['seconds']:.0f} s, profile `{p['name']}`)
- Date: {results['date']}; machine: {m['nproc']} CPUs, Python {m['python']}
- Raw results: `bench/out/deployfault.json` (git-ignored), gunicorn's log next to it

{markdown(results)}

Requests that never call Decentro while it is slow, and the gap a reload leaves (issue 20;
`bench/deploy/starvation.py`; the baseline's gap is what steady load alone leaves):

{starvation_markdown(results)}

Errors are `HTTP status + error.code`; `no answer` is a dropped connection or the client's
timeout. Recovery: seconds from the service's return (for a reload or a killed worker, the
last injection) until every kind of request succeeded again, and no request sent 5 s after
the return or later failed. Records lost: a reference id a client got back without its record
(or with another status than the client was told), or a payment the sandbox created without
a record. Duplicates: payments the sandbox created more than once for one purpose or one
reference id. Where a target is missed the table says MISSED: the run is not tuned to hide it.

What each phase showed (gunicorn's and the app's log lines, counted):

{_evidence(results)}
{END}"""


def markers(name: str, command: str) -> tuple[str, str]:
    """The begin and end markers of a section of docs/benchmarks.md written by ``command``."""
    return f"<!-- {name}:begin (written by {command}) -->", f"<!-- {name}:end -->"


SECTIONS = ((BEGIN, END), markers("events", "python -m bench.events --docs"),
            markers("redis-cut", "hand, from python -m bench.deployfault --only redis_cut"))
"""Sections other commands write into docs/benchmarks.md, kept when the page is re-rendered."""


def splice(page: str, new_section: str, begin: str = BEGIN, end: str = END) -> str:
    """``page`` with its section between ``begin`` and ``end`` (the deployment section by
    default) replaced by ``new_section`` (inserted before "## Run it" when absent)."""
    if begin in page and end in page:
        before, rest = page.split(begin, 1)
        return before + new_section + rest.split(end, 1)[1]
    anchor = "\n## Run it"
    if anchor in page:
        before, after = page.split(anchor, 1)
        return before.rstrip("\n") + "\n\n" + new_section + "\n" + anchor + after
    return page.rstrip("\n") + "\n\n" + new_section + "\n"


def carry_section(previous: str, page: str) -> str:
    """``page`` (freshly rendered) with the sections other commands wrote in ``previous`` kept."""
    for begin, end in SECTIONS:
        if begin in previous and end in previous:
            kept = begin + previous.split(begin, 1)[1].split(end, 1)[0] + end
            page = splice(page, kept, begin, end)
    return page


def table(results: dict[str, Any]) -> str:
    """A short text summary for stdout."""
    lines = [f"{'phase':10} {'requests':>8} {'ok':>6} {'5xx':>5} {'nonJSON':>7} {'noans':>6} {'lost':>5} "
             f"{'dup':>4} {'recovery':>9}  master  missed"]
    for name, f in results["phases"].items():
        rec = "-" if f["targets"]["recovery_s"] is None else ("never" if f["recovery_s"] is None
                                                              else f"{f['recovery_s']:.1f}s")
        missed = ",".join(k for k, v in f["targets"].items() if v is False) or "-"
        lines.append(f"{name:10} {f['requests']:>8} {f['ok']:>6} {f['http_5xx']:>5} {f['non_json_errors']:>7} "
                     f"{f['no_answer']:>6} {f['records_lost']:>5} {f['duplicate_payments']:>4} {rec:>9}  "
                     f"{'alive' if f['master_alive'] else 'DEAD':6}  {missed}")
    return "\n".join(lines)
