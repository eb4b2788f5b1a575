"""The sandbox server over real HTTP on 127.0.0.1: credentials, references, faults, stats."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests
import test_emulator_support as req
from test_sandbox_support import KYC_HEADERS, PAYMENT_HEADERS, wait_until

from decentro_sandbox.sandbox import SandboxServer, start_sandbox


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with start_sandbox(timeout_delay=0.5, seed=1) as server:
        yield server


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _pan(sandbox, http, body, *, headers=KYC_HEADERS, timeout=5.0):
    return http.post(sandbox.url + req.PAN_PATH, json=body, headers=headers, timeout=timeout)


def _faults(sandbox, http, *faults, **plan):
    response = http.post(sandbox.url + "/_sandbox/faults", json={"faults": list(faults), **plan}, timeout=5)
    assert response.status_code == 200
    return response.json()


def test_a_request_with_valid_credentials_gets_decentros_answer(sandbox, http):
    response = _pan(sandbox, http, req.pan())
    assert response.status_code == 200 and response.json()["kycResult"]["idStatus"] == "VALID"
    assert response.headers["Content-Type"] == "application/json"


def test_requests_without_or_with_wrong_credentials_are_refused(sandbox, http):
    missing = _pan(sandbox, http, req.pan(), headers={})
    wrong = _pan(sandbox, http, req.pan(), headers={**KYC_HEADERS, "module_secret": "guess"})
    assert (missing.status_code, missing.json()["responseKey"]) == (401, "error_empty_module_secret")
    assert (wrong.status_code, wrong.json()["responseKey"]) == (401, "error_unauthorized_module")


def test_payments_need_the_provider_secret_too(sandbox, http):
    url = sandbox.url + req.LINK_PATH
    assert http.post(url, json=req.link(), headers=KYC_HEADERS, timeout=5).status_code == 401
    assert http.post(url, json=req.link(), headers=PAYMENT_HEADERS, timeout=5).status_code == 200


def test_a_duplicate_reference_is_refused(sandbox, http):
    body = req.pan()
    assert _pan(sandbox, http, body).status_code == 200
    again = _pan(sandbox, http, body)
    assert (again.status_code, again.json()["responseCode"]) == (400, "E00019")


def test_the_next_two_answers_are_503_then_the_same_reference_succeeds(sandbox, http):
    _faults(sandbox, http, {"path": req.PAN_PATH, "kind": "503", "count": 2})
    body = req.pan()
    assert [_pan(sandbox, http, body).status_code for _ in range(3)] == [503, 503, 200]


@pytest.mark.parametrize("kind", ["500", "502", "429"])
def test_injected_http_faults_answer_their_status(sandbox, http, kind):
    _faults(sandbox, http, {"path": "*", "kind": kind})
    response = _pan(sandbox, http, req.pan())
    assert response.status_code == int(kind)
    assert (kind == "429") == ("Retry-After" in response.headers)


def test_a_fault_on_another_path_leaves_this_one_alone(sandbox, http):
    _faults(sandbox, http, {"path": req.BANK_PATH, "kind": "500"})
    assert _pan(sandbox, http, req.pan()).status_code == 200


def test_a_delay_past_the_client_timeout_times_out_and_the_request_was_processed(sandbox, http):
    _faults(sandbox, http, {"kind": "delay", "delay_ms": 400})
    body = req.pan()
    with pytest.raises(requests.ReadTimeout):
        _pan(sandbox, http, body, timeout=0.1)
    assert wait_until(lambda: sandbox.stats()["billable"].get(req.PAN_PATH) == 1)
    assert _pan(sandbox, http, body).json()["responseCode"] == "E00019"


def test_an_unprocessed_delay_times_out_and_leaves_the_reference_unused(sandbox, http):
    _faults(sandbox, http, {"kind": "delay", "delay_ms": 300, "process": False})
    body = req.pan()
    with pytest.raises(requests.ReadTimeout):
        _pan(sandbox, http, body, timeout=0.1)
    assert _pan(sandbox, http, body).status_code == 200


def test_the_magic_timeout_pan_gets_no_answer(sandbox, http):
    with pytest.raises(requests.ReadTimeout):
        _pan(sandbox, http, req.pan("ABCDE0408F"), timeout=0.1)


def test_a_reset_connection_is_a_connection_error(sandbox, http):
    _faults(sandbox, http, {"kind": "reset"})
    with pytest.raises(requests.ConnectionError):
        _pan(sandbox, http, req.pan())
    assert _pan(sandbox, http, req.pan()).status_code == 200


def test_a_malformed_answer_is_not_json(sandbox, http):
    _faults(sandbox, http, {"kind": "malformed"})
    response = _pan(sandbox, http, req.pan())
    assert response.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_random_faults_are_reproducible_with_a_seed(http):
    def run() -> list[int]:
        with start_sandbox(faults={"random": {"rate": 0.5, "kinds": ["503", "429"], "seed": 3}}) as sandbox:
            return [_pan(sandbox, http, req.pan()).status_code for _ in range(20)]

    first = run()
    assert first == run() and {200, 503, 429} == set(first)


def test_a_bad_fault_plan_is_refused_with_400(sandbox, http):
    response = http.post(sandbox.url + "/_sandbox/faults", json={"faults": [{"kind": "meteor"}]}, timeout=5)
    assert response.status_code == 400 and _pan(sandbox, http, req.pan()).status_code == 200


def test_deleting_the_faults_clears_them(sandbox, http):
    _faults(sandbox, http, {"kind": "503", "count": 5}, latency={"kind": "fixed", "ms": 1})
    cleared = http.delete(sandbox.url + "/_sandbox/faults", timeout=5).json()
    assert cleared["faults"] == [] and cleared["latency"] is None
    assert _pan(sandbox, http, req.pan()).status_code == 200


def test_stats_count_requests_billable_calls_and_faults_and_reset_forgets(sandbox, http):
    _faults(sandbox, http, {"path": req.PAN_PATH, "kind": "503"})
    body = req.pan()
    _pan(sandbox, http, body)
    _pan(sandbox, http, body)
    _pan(sandbox, http, req.pan(), headers={})
    stats = http.get(sandbox.url + "/_sandbox/stats", timeout=5).json()
    assert stats["requests"] == {req.PAN_PATH: 3} and stats["billable"] == {req.PAN_PATH: 1}
    assert stats["faults_injected"] == {"503": 1}
    assert http.post(sandbox.url + "/_sandbox/reset", timeout=5).status_code == 200
    assert http.get(sandbox.url + "/_sandbox/stats", timeout=5).json()["requests"] == {}
    assert _pan(sandbox, http, body).status_code == 200  # the reference was forgotten too


def test_it_answers_other_requests_while_one_is_held(sandbox, http):
    _faults(sandbox, http, {"kind": "delay", "delay_ms": 3000})
    held_done = threading.Event()

    def held() -> None:
        with requests.Session() as other:
            try:
                _pan(sandbox, other, req.pan(), timeout=5)
            except requests.ConnectionError:
                pass  # the sandbox hangs up held requests when it stops
            finally:
                held_done.set()

    thread = threading.Thread(target=held)
    thread.start()
    assert wait_until(lambda: sandbox.stats()["faults_injected"].get("delay") == 1)
    assert _pan(sandbox, http, req.pan()).status_code == 200
    assert not held_done.is_set()
    sandbox.stop()  # wakes the held request
    thread.join(timeout=5)
    assert held_done.is_set()


def test_the_status_path_works_over_http(sandbox, http):
    txn = http.post(sandbox.url + req.LINK_PATH, json=req.link(20), headers=PAYMENT_HEADERS, timeout=5).json()[
        "decentroTxnId"]
    status = http.get(f"{sandbox.url}/v2/payments/transaction/{txn}/status", headers=PAYMENT_HEADERS, timeout=5)
    assert status.json()["data"]["transactionStatus"] == "FAILURE"
    assert sandbox.stats()["requests"]["/v2/payments/transaction/{transaction_id}/status"] == 1
