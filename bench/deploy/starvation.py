"""Issue 20's part of the deployment fault run: what never calls Decentro keeps answering.

- the phase ``upstream_slow`` (:func:`bench.deploy.phases.upstream_slow`): the sandbox answers
  every request after ``slow_share`` of ``DECENTRO_TIMEOUT`` (Decentro slow but under the
  timeout, so no timeout trips the breaker), for ``hang`` seconds at least. Without a bulkhead,
  every server thread ends up waiting on it and nothing answers; with one, callbacks and status
  reads of settled payments go on.
- :func:`protected_latency`: the spread (p99 included) of the answers to callbacks and to status
  reads of payments a client had already been told were settled, sent while the fault lasted;
  target p99 <= :data:`PROTECTED_P99_TARGET_S`.
- :func:`answer_gap`: the longest stretch after each injection with no answer at all (a reload's
  gap: new workers booting while the old ones stop); target <= :data:`HUP_GAP_TARGET_S`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .analysis import PhaseTimes
from .load import Sample

__all__ = ["HUP_GAP_TARGET_S", "PROTECTED_P99_TARGET_S", "answer_gap", "protected_latency", "starvation_figures",
           "starvation_markdown"]

PROTECTED_P99_TARGET_S = 1.0
HUP_GAP_TARGET_S = 0.5
GAP_WINDOW_S = 10.0  # after an injection, how long the gap is looked for


def _protected(sample: Sample) -> bool:
    return sample.kind == "callback" or (sample.kind == "status" and sample.settled)


def protected_latency(samples: Iterable[Sample], start: float, end: float) -> dict[str, float | int]:
    """Callbacks and settled status reads sent in ``[start, end)``: count, median, p99, max, seconds."""
    times = sorted(s.done - s.sent for s in samples if start <= s.sent < end and _protected(s))
    if not times:
        return {"count": 0}
    return {"count": len(times), "median": round(times[len(times) // 2], 3),
            "p99": round(times[min(len(times) - 1, int(len(times) * 0.99))], 3), "max": round(times[-1], 3)}


def answer_gap(samples: Iterable[Sample], injections: Sequence[float], *, window: float = GAP_WINDOW_S) -> float | None:
    """The longest time without any answer within ``window`` seconds of each injection (or of
    the phase's start for none), the longest over all: seconds."""
    done = sorted(s.done for s in samples)
    worst: float | None = None
    for moment in injections:
        ends = [t for t in done if moment < t <= moment + window]
        if not ends:
            return window
        marks = [moment, *ends]
        gap = max(b - a for a, b in zip(marks, marks[1:]))
        worst = gap if worst is None else max(worst, gap)
    return None if worst is None else round(worst, 3)


def starvation_figures(phase: PhaseTimes, samples: list[Sample]) -> dict[str, Any]:
    """The phase's figures for issue 20: the answer gap after its injections (for a reload, the
    HUP gap), and the protected requests' latency while its fault lasted."""
    mine = [s for s in samples if phase.start <= s.sent < phase.end]
    start = phase.injections[0] if phase.injections else phase.start
    end = phase.returned if phase.returned is not None else phase.end
    gap = answer_gap(mine, phase.injections or [phase.start])
    protected = protected_latency(mine, start, end)
    return {"answer_gap_s": gap, "protected_latency_s": protected,
            "starvation_targets": {
                "hup_gap": gap is not None and gap <= HUP_GAP_TARGET_S if phase.name == "hup" else None,
                "protected_p99": (int(protected["count"]) > 0 and protected["p99"] <= PROTECTED_P99_TARGET_S)
                if phase.name == "upstream_slow" else None}}


def starvation_markdown(results: dict[str, Any]) -> str:
    """Per phase: the answer gap (for ``hup``, the HUP gap; target <= 0.5 s) and the callbacks' and
    settled status reads' latency while the fault lasted (for ``upstream_slow``, p99 <= 1 s)."""
    rows = ["| phase | longest time without any answer after an injection | callbacks and settled status reads "
            "during the fault: n, median, p99, max |", "|---|---|---|"]
    for name, f in results["phases"].items():
        if "answer_gap_s" not in f:
            continue
        targets, gap, p = f["starvation_targets"], f["answer_gap_s"], f["protected_latency_s"]
        gap_text = "-" if gap is None else f"{gap:.2f} s"
        if targets["hup_gap"] is not None:
            gap_text += f" (target <= {HUP_GAP_TARGET_S} s{'' if targets['hup_gap'] else ': **MISSED**'})"
        spread = "none sent" if not p.get("count") else (
            f"{p['count']}, {p['median']:.2f} s, {p['p99']:.2f} s, {p['max']:.2f} s")
        if targets["protected_p99"] is not None:
            spread += f" (p99 target <= {PROTECTED_P99_TARGET_S:g} s{'' if targets['protected_p99'] else ': **MISSED**'})"
        rows.append(f"| {name} | {gap_text} | {spread} |")
    return "\n".join(rows)
