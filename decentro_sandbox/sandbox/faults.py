"""Fault injection for the sandbox server: next-N faults per path, latency, random faults.

A plan is built from plain JSON (CLI ``--faults file.json`` or ``POST /_sandbox/faults``)::

    {"faults": [{"path": "/kyc/public_registry/validate", "kind": "503", "count": 2},
                {"path": "*", "kind": "delay", "delay_ms": 3000}],
     "latency": {"kind": "uniform", "low_ms": 5, "high_ms": 20},
     "random": {"rate": 0.2, "kinds": ["500", "503", "429", "reset"], "seed": 7}}

Kinds: ``"500"``, ``"502"``, ``"503"``, ``"429"`` (that HTTP answer), ``"delay"`` (the
request is processed, its answer held ``delay_ms``; ``"process": false`` holds it without
processing), ``"reset"`` (the socket is closed with a TCP reset, no answer), ``"malformed"``
(HTTP 200 with truncated JSON). Apart from a processed delay, a faulted request never reaches
the emulator, so its ``reference_id`` stays unused.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FAULT_KINDS", "FaultPlan", "FaultRule", "Latency"]

FAULT_KINDS = frozenset({"500", "502", "503", "429", "delay", "reset", "malformed"})
_LATENCY_FIELDS = frozenset({"ms", "low_ms", "high_ms", "mean_ms", "stddev_ms"})


@dataclass(frozen=True)
class FaultRule:
    """The next ``count`` requests to ``path`` (``"*"``: any path) meet ``kind``."""

    path: str
    kind: str
    count: int = 1
    delay_ms: float = 0.0
    process: bool = True

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> FaultRule:
        kind = str(raw.get("kind", ""))
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}")
        count = int(raw.get("count", 1))
        if count < 1:
            raise ValueError("fault count must be at least 1")
        return cls(str(raw.get("path", "*")), kind, count, float(raw.get("delay_ms", 0)),
                   bool(raw.get("process", True)))


@dataclass(frozen=True)
class Latency:
    """Added to every answer: ``fixed`` (ms), ``uniform`` (low_ms..high_ms) or ``normal``."""

    kind: str = "fixed"
    ms: float = 0.0
    low_ms: float = 0.0
    high_ms: float = 0.0
    mean_ms: float = 0.0
    stddev_ms: float = 0.0

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Latency:
        kind = str(raw.get("kind", "fixed"))
        numbers = {k: float(v) for k, v in raw.items() if k != "kind"}
        if kind not in {"fixed", "uniform", "normal"} or not set(numbers) <= _LATENCY_FIELDS:
            raise ValueError("latency: kind fixed (ms), uniform (low_ms, high_ms) or normal (mean_ms, stddev_ms)")
        return cls(kind, **numbers)

    def sample_seconds(self, rng: random.Random) -> float:
        if self.kind == "uniform":
            ms = rng.uniform(self.low_ms, self.high_ms)
        elif self.kind == "normal":
            ms = rng.gauss(self.mean_ms, self.stddev_ms)
        else:
            ms = self.ms
        return max(ms, 0.0) / 1000


class FaultPlan:
    """Thread-safe: which fault the next request meets, and how long it waits first."""

    def __init__(self, *, seed: int | None = None, default_delay_ms: float = 35_000) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        self.default_delay_ms = default_delay_ms
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._rules: list[list[Any]] = []  # [rule, remaining]
            self._latency: Latency | None = None
            self._rate = 0.0
            self._random_kinds: tuple[str, ...] = ()
            self._rng = random.Random(self._seed)

    def load(self, raw: Mapping[str, Any]) -> None:
        """Add the rules of a JSON plan (see the module docstring); validates everything first."""
        rules = [FaultRule.from_json(item) for item in raw.get("faults", [])]
        latency = Latency.from_json(raw["latency"]) if raw.get("latency") else None
        chaos = raw.get("random") or {}
        rate = float(chaos.get("rate", 0.0))
        kinds = tuple(str(k) for k in chaos.get("kinds", ("500", "503", "429", "reset", "malformed")))
        if not 0.0 <= rate <= 1.0 or not set(kinds) <= FAULT_KINDS or (rate and not kinds):
            raise ValueError("random.rate must be in [0, 1] with known kinds")
        with self._lock:
            self._rules.extend([rule, rule.count] for rule in rules)
            if latency is not None:
                self._latency = latency
            if chaos:
                self._rate, self._random_kinds = rate, kinds
                if "seed" in chaos:
                    self._rng = random.Random(int(chaos["seed"]))

    def latency_seconds(self) -> float:
        with self._lock:
            return self._latency.sample_seconds(self._rng) if self._latency else 0.0

    def next_fault(self, path: str) -> FaultRule | None:
        """The fault this request meets, if any; a next-N rule wins over random faults."""
        with self._lock:
            for entry in self._rules:
                rule, remaining = entry
                if rule.path in ("*", path) and remaining > 0:
                    entry[1] -= 1
                    self._rules = [e for e in self._rules if e[1] > 0]
                    return rule  # type: ignore[no-any-return]
            if self._rate and self._rng.random() < self._rate:
                kind = self._rng.choice(self._random_kinds)
                return FaultRule(path, kind, 1, self.default_delay_ms)
            return None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "faults": [{"path": r.path, "kind": r.kind, "remaining": n} for r, n in self._rules],
                "latency": None if self._latency is None else self._latency.__dict__,
                "random": {"rate": self._rate, "kinds": list(self._random_kinds)},
            }
