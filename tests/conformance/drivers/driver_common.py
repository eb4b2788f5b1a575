"""Shared by the SDK drivers (which run inside each SDK's own venv): arguments, records, output.

A driver calls the SDK against the sandbox and records, per case, the HTTP status, the body,
and which of the SDK's models accepted the body (or why one refused it). It prints one JSON
document on stdout; the test in the project's venv judges it against ``conformance_cases``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import uuid
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import conformance_cases  # noqa: E402  (tests/conformance, shared with the tests)

PURPOSE = "For Testing Purpose Only"  # Decentro's spec example (more than 20 characters)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--module-secret", required=True)
    parser.add_argument("--provider-secret", required=True)
    return parser.parse_args()


def ref() -> str:
    return "conformance-" + uuid.uuid4().hex


class Recorder:
    """Collects one record per case; a case's exception is recorded, never raised."""

    def __init__(self, sdk: str, cases: dict[str, Any]) -> None:
        self.sdk, self.cases = sdk, cases
        self.records: dict[str, dict[str, Any]] = {}
        self.exercised: dict[str, str] = {}

    def record(self, case: str, status: int | None, body: Any, checks: list[tuple[str, Callable[[], Any]]]) -> None:
        """Run each ``(model name, check)``; a check that returns normally accepted the body."""
        if case not in self.cases:
            raise KeyError(f"{case} is not in conformance_cases")
        accepted, refused = [], {}
        for name, check in checks:
            try:
                check()
            except Exception as exc:  # the model refused the answer: that is the finding
                refused[name] = f"{type(exc).__name__}: {exc}"[:2000]
            else:
                accepted.append(name)
        self.records[case] = {"status": status, "body": body, "accepted": accepted, "refused": refused,
                              "error": None}

    def failed(self, case: str) -> None:
        self.records[case] = {"status": None, "body": None, "accepted": [], "refused": {},
                              "error": traceback.format_exc()[-4000:]}

    def output(self, *, version: str, sdk_paths: list[str]) -> None:
        json.dump({"sdk": self.sdk, "version": version, "sdk_paths": sorted(sdk_paths),
                   "exercised": self.exercised, "records": self.records}, sys.stdout)
        sys.stdout.write("\n")
        sys.stdout.flush()


def run(recorder: Recorder, case: str, step: Callable[[], None]) -> None:
    try:
        step()
    except Exception:  # recorded for the test to report; the other cases still run
        recorder.failed(case)
