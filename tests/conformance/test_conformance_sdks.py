"""Decentro's official Python SDKs, as clients no one here wrote, parse every sandbox answer.

``decentro-in-kyc-python-sdk`` 4.4.0 and ``decentro-in-collections-python-sdk`` 1.0.0 call
``decentro-sandbox`` over HTTP; every operation whose endpoint the sandbox serves is called
for success and error answers, and each answer must be accepted by the models the SDK itself
declares for that HTTP status (cases and expectations: ``conformance_cases.py``).
"""

from __future__ import annotations

from typing import Any

import pytest
from conformance_cases import COLLECTIONS_CASES, KYC_CASES

from decentro_sandbox.core import served_paths

pytestmark = pytest.mark.conformance


def _field(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(body, dict) or part not in body:
            return f"<missing {dotted}>"
        body = body[part]
    return body


def _judge(run: dict[str, Any], case: str, expected: tuple[int, list[str], dict[str, object]]) -> None:
    status, models, fields = expected
    record = run["records"].get(case)
    assert record is not None, f"the {run['sdk']} driver did not run {case}"
    assert record["error"] is None, f"{case} raised in the SDK:\n{record['error']}"
    assert record["refused"] == {}, f"the SDK's models refused the sandbox's answer to {case}: {record['refused']}"
    assert record["status"] == status, f"{case}: HTTP {record['status']}, body {record['body']}"
    assert sorted(record["accepted"]) == sorted(models), f"{case}: models that parsed it: {record['accepted']}"
    assert {name: _field(record["body"], name) for name in fields} == fields


@pytest.mark.parametrize("case", sorted(KYC_CASES))
def test_the_kyc_sdk_parses_the_sandbox_answer(kyc_run, case):
    _judge(kyc_run, case, KYC_CASES[case])


@pytest.mark.parametrize("case", sorted(COLLECTIONS_CASES))
def test_the_collections_sdk_parses_the_sandbox_answer(collections_run, case):
    _judge(collections_run, case, COLLECTIONS_CASES[case])


@pytest.mark.parametrize(("run_name", "cases", "version"), [("kyc_run", KYC_CASES, "4.4.0"),
                                                             ("collections_run", COLLECTIONS_CASES, "1.0.0")])
def test_every_sdk_operation_whose_endpoint_the_sandbox_serves_is_called_for_success_and_error(
        request, run_name, cases, version):
    run = request.getfixturevalue(run_name)
    assert run["version"] == version
    served = set(served_paths()) & set(run["sdk_paths"])
    assert set(run["exercised"].values()) == served
    assert set(run["records"]) == set(cases)
    for method in run["exercised"]:
        statuses = {cases[case][0] for case in cases if case.startswith(method)}
        assert any(s < 300 for s in statuses) and any(s >= 400 for s in statuses), (method, statuses)
