"""The fault run: 1,000 live operations over real HTTP against a sandbox faulting 20% of answers.

Every kind of fault is injected (500, 502, 503, 429, a delay past the client's timeout on a
request the sandbox did process, a reset connection, malformed JSON), seeded. The run itself
lives in ``bench/faultrun.py`` so the benchmark report shows the same figures.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # bench/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from bench.faultrun import FAULT_KINDS, FaultRun, run_fault_mix  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

OPERATIONS = 1000
TERMINAL_OR_PENDING = {"SUCCESS", "FAILURE", "PENDING"}


@pytest.fixture(scope="module")
def run() -> FaultRun:
    return run_fault_mix(operations=OPERATIONS, seed=20240601, rate=0.2)


def test_the_run_made_a_thousand_operations_of_every_kind(run):
    kinds = Counter(call.kind for call in run.calls)
    assert len(run.calls) == OPERATIONS
    assert set(kinds) == {"pan", "bank", "ckyc", "payment_link", "payment_collect", "payment_status", "sms"}


def test_every_kind_of_fault_was_injected_at_about_a_fifth_of_the_answers(run):
    injected = run.sandbox_stats["faults_injected"]
    received = sum(run.sandbox_stats["requests"].values())
    assert set(injected) == set(FAULT_KINDS)
    assert 0.15 <= sum(injected.values()) / received <= 0.25


def test_every_operation_ends_in_a_status_or_a_typed_error_with_a_code(run):
    unexpected = [call.unexpected for call in run.calls if call.unexpected]
    assert unexpected == []
    for call in run.calls:
        status_or_code = call.outcome.removeprefix("raised:")
        assert call.outcome in TERMINAL_OR_PENDING or (call.outcome.startswith("raised:") and status_or_code)


def test_no_operation_is_lost_every_reference_the_sandbox_saw_has_a_record(run):
    seen = {s.reference_id for s in run.seen if s.reference_id}
    assert seen, "the spy saw no requests"
    assert [ref for ref in seen if run.records.get(ref) is None] == []


def test_every_operation_called_has_a_record_with_its_latest_outcome(run):
    latest: dict[str, str] = {}  # a payment's status check updates the payment's record
    for call in run.calls:
        assert call.reference_id, f"{call.kind} {call.outcome} has no reference id"
        latest[call.reference_id] = "FAILURE" if call.outcome.startswith("raised:") else call.outcome
    missing = [ref for ref in latest if run.records.get(ref) is None]
    assert missing == []
    assert {ref: run.records[ref].status for ref in latest} == latest


def test_no_payment_was_created_twice_by_reference_or_by_logical_payment(run):
    by_reference, by_purpose = run.payment_creations()
    payments = [c for c in run.calls if c.kind.startswith("payment_") and c.kind != "payment_status"]
    ours = {c.reference_id for c in payments}
    assert by_reference and max(by_reference.values()) == 1
    assert max(by_purpose.values()) == 1  # each logical payment has its own purpose text
    assert set(by_reference) <= ours  # no payment was created that we do not know of
    purpose_of = {c.purpose: c.reference_id for c in payments}
    created = [s for s in run.seen if s.reference_id in by_reference and s.status == 200]
    assert all(purpose_of[s.purpose] == s.reference_id for s in created)


def test_a_payment_whose_answer_was_lost_is_pending_and_was_created_once(run):
    by_reference, _ = run.payment_creations()
    unknown = [c for c in run.calls if c.kind.startswith("payment_") and c.reconciliation == "OUTCOME_UNKNOWN"]
    assert unknown, "the seed should lose at least one payment answer"
    assert all(c.outcome == "PENDING" for c in unknown)
    assert any(by_reference[c.reference_id] == 1 for c in unknown)
    assert all(by_reference[c.reference_id] <= 1 for c in unknown)
