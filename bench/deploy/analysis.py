"""What each phase of the deployment fault run did to clients, records and payments, against the targets.

Targets (issue 10), judged per fault and never relaxed here:

- ``master_alive``: the gunicorn master is alive at the end of the phase (and was not restarted);
- ``records_lost`` = 0: every reference id a client got back (a PAN check, a payment) has its
  record afterwards with a sane status (a PAN check: the status the client was told; a
  payment: the terminal status a status read or a delivered callback told, else any), and
  every payment the sandbox created has a record;
- ``duplicate_payments`` = 0: no logical payment (one purpose text) and no reference id was
  created twice by the sandbox;
- ``non_json_errors`` = 0: every error answer is a JSON object (no HTML page);
- ``recovery``: every kind of request (PAN, payment, status, callback) succeeds within 5 s of
  the service's return (for a reload or a killed worker, of the last injection), and no request
  sent later than that fails.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .load import KINDS, Sample

__all__ = ["PhaseTimes", "RECOVERY_TARGET_S", "TARGETS", "phase_report", "totals"]

RECOVERY_TARGET_S = 5.0
TERMINAL = frozenset({"SUCCESS", "FAILURE"})
SANE_PAYMENT = frozenset({"PENDING", "SUCCESS", "FAILURE"})
TARGETS = {
    "master_alive": "alive",
    "records_lost": "0",
    "duplicate_payments": "0",
    "non_json_errors": "0",
    "recovery_s": f"<= {RECOVERY_TARGET_S:.0f} s",
}


@dataclass
class PhaseTimes:
    """One phase: when it ran, when faults went in, when the service was back, what was noticed."""

    name: str
    fault: str
    start: float
    end: float = 0.0
    injections: list[float] = field(default_factory=list)
    returned: float | None = None
    master_alive: bool = True
    master_restarted: bool = False
    notes: list[str] = field(default_factory=list)
    log_lines: dict[str, int] = field(default_factory=dict)
    log_examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Creation:
    """A payment the sandbox created (answered 2xx): our reference id and the purpose text sent."""

    reference_id: str
    purpose: str


def _recovery(samples: list[Sample], returned: float | None) -> tuple[float | None, list[str], dict[str, float | None]]:
    """Seconds until every kind succeeded with a request sent after ``returned``; late failures; per kind."""
    if returned is None:
        return None, [], {}
    after = [s for s in samples if s.sent >= returned]
    per_kind: dict[str, float | None] = {}
    for kind in KINDS:
        done = [s.done for s in after if s.kind == kind and s.ok]
        per_kind[kind] = round(min(done) - returned, 3) if done else None
    late = [f"{s.kind} sent {s.sent - returned:.1f} s after the return: {s.outcome}"
            for s in after if not s.ok and s.sent >= returned + RECOVERY_TARGET_S]
    worst = None if any(v is None for v in per_kind.values()) else max(v for v in per_kind.values() if v is not None)
    return worst, late, per_kind


def _record_problems(samples: list[Sample], records: Mapping[str, Any], terminal: Mapping[str, str],
                     created: Iterable[Creation]) -> tuple[int, list[str], list[str]]:
    """References whose record is missing or not sane, with a few examples (synthetic ids)."""
    problems: dict[str, str] = {}
    for s in samples:
        if not (s.ok and s.reference_id and s.kind in ("pan", "payment")):
            continue
        record = records.get(s.reference_id)
        if record is None:
            problems[s.reference_id] = f"{s.kind}: no record"
        elif s.kind == "pan" and record.status != s.status:
            problems[s.reference_id] = f"pan: client told {s.status}, record {record.status}"
        elif s.kind == "payment" and record.status not in SANE_PAYMENT:
            problems[s.reference_id] = f"payment: record {record.status}"
        elif s.kind == "payment" and s.reference_id in terminal and record.status != terminal[s.reference_id]:
            problems[s.reference_id] = f"payment: told {terminal[s.reference_id]}, record {record.status}"
    for c in created:
        if records.get(c.reference_id) is None:
            problems.setdefault(c.reference_id, "payment created by Decentro: no record")
    examples = [f"{ref}: {why}" for ref, why in sorted(problems.items())[:5]]
    return len(problems), examples, sorted(problems)[:3]


def _trace(ref: str, samples: list[Sample], records: Mapping[str, Any], events: Mapping[str, list[str]],
           origin: float) -> dict[str, Any]:
    """Everything the run saw of one reference id: requests and callbacks (seconds from the phase
    start), the record, the stored callback events."""
    record = records.get(ref)
    return {
        "reference_id": ref,
        "seen": [f"{s.kind} sent +{s.sent - origin:.2f}s answered +{s.done - origin:.2f}s: {s.outcome} {s.status or ''}"
                 for s in samples if s.reference_id == ref],
        "record": None if record is None else f"{record.status} (updated {record.updated_at:%H:%M:%S.%f})",
        "callback_events": list(events.get(ref, [])),
    }


def _duplicates(samples: list[Sample], created: list[Creation]) -> tuple[int, int, int]:
    """Extra creations per logical payment (purpose) and per reference id, and creations in all."""
    ours = {s.purpose for s in samples if s.kind == "payment" and s.purpose}
    mine = [c for c in created if c.purpose in ours]
    by_purpose, by_reference = Counter(c.purpose for c in mine), Counter(c.reference_id for c in mine)
    extra = sum(n - 1 for n in by_purpose.values() if n > 1)
    extra_ref = sum(n - 1 for n in by_reference.values() if n > 1)
    return extra, extra_ref, len(mine)


def terminal_statuses(samples: Iterable[Sample]) -> dict[str, str]:
    """The terminal status clients were told per payment: status reads, then delivered callbacks."""
    told: dict[str, str] = {}
    for s in samples:
        if s.ok and s.reference_id and s.status in TERMINAL and s.kind in ("status", "callback"):
            told.setdefault(s.reference_id, s.status)
    return told


def phase_report(phase: PhaseTimes, samples: list[Sample], *, records: Mapping[str, Any],
                 terminal: Mapping[str, str], created: list[Creation],
                 events: Mapping[str, list[str]] | None = None) -> dict[str, Any]:
    """The figures of one phase (samples sent during it) and each target's verdict."""
    mine = [s for s in samples if phase.start <= s.sent < phase.end]
    errors = Counter(s.outcome for s in mine if not s.ok)
    lost, examples, traced = _record_problems(mine, records, terminal, _created_in(mine, created))
    duplicates, duplicates_by_reference, creations = _duplicates(mine, created)
    recovery, late, per_kind = _recovery(mine, phase.returned)
    latencies = [s.done - s.sent for s in mine if s.kind != "callback"]
    delivered = {s.reference_id for s in samples if s.kind == "callback" and s.ok}
    undelivered = {s.reference_id for s in mine if s.kind == "callback"} - delivered
    figures = {
        "fault": phase.fault, "seconds": round(phase.end - phase.start, 1), "injections": len(phase.injections),
        "requests": len(mine), "ok": sum(s.ok for s in mine),
        "by_kind": {k: {"sent": sum(s.kind == k for s in mine), "ok": sum(s.kind == k and s.ok for s in mine)}
                    for k in KINDS},
        "errors": dict(errors.most_common()),
        "http_5xx": sum(1 for s in mine if s.http_status is not None and s.http_status >= 500),
        "non_json_errors": sum(s.non_json for s in mine), "no_answer": sum(s.no_answer for s in mine),
        "records_lost": lost, "lost_examples": examples,
        "lost_traces": [_trace(ref, samples, records, events or {}, phase.start) for ref in traced],
        "payments_created": creations, "duplicate_payments": duplicates,
        "duplicate_references": duplicates_by_reference,
        "callbacks_undelivered": len(undelivered),
        "recovery_s": recovery, "recovery_by_kind": per_kind,
        "failed_after_recovery_window": len(late), "late_failures": late[:5],
        "latency_s": _spread(latencies), "master_alive": phase.master_alive and not phase.master_restarted,
        "master_restarted": phase.master_restarted, "notes": phase.notes,
        "log_lines": phase.log_lines, "log_examples": phase.log_examples,
    }
    figures["targets"] = _verdicts(figures, judged_recovery=phase.returned is not None)
    return figures


def _created_in(samples: list[Sample], created: list[Creation]) -> list[Creation]:
    purposes = {s.purpose for s in samples if s.kind == "payment"}
    return [c for c in created if c.purpose in purposes]


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"median": round(statistics.median(ordered), 3),
            "p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 3), "max": round(ordered[-1], 3)}


def _verdicts(f: Mapping[str, Any], *, judged_recovery: bool) -> dict[str, bool | None]:
    recovery = f["recovery_s"]
    return {
        "master_alive": bool(f["master_alive"]),
        "records_lost": f["records_lost"] == 0,
        "duplicate_payments": f["duplicate_payments"] == 0 and f["duplicate_references"] == 0,
        "non_json_errors": f["non_json_errors"] == 0,
        "recovery_s": (recovery is not None and recovery <= RECOVERY_TARGET_S
                       and f["failed_after_recovery_window"] == 0) if judged_recovery else None,
    }


def totals(phases: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Every target over every phase: met only where met in each."""
    missed = {name: [phase for phase, f in phases.items() if f["targets"][name] is False] for name in TARGETS}
    return {name: {"target": TARGETS[name], "met": not where, "missed_in": where} for name, where in missed.items()}
