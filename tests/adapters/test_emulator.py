"""The emulator's cross-cutting rules: references, credentials, ids, stats, threads."""

from __future__ import annotations

import itertools
import threading

import pytest
import test_emulator_support as req

from decentro_sandbox.core import Credentials, DecentroEmulator, SeededIds

CREDS = Credentials.same_for_every_module(
    client_id="cid", client_secret="csecret", module_secret="msecret", provider_secret="psecret"
)
KYC_HEADERS = {"client_id": "cid", "client_secret": "csecret", "module_secret": "msecret"}


def test_a_reused_reference_id_is_refused_on_any_path():
    emu = DecentroEmulator()
    first = req.pan()
    assert emu.handle("POST", req.PAN_PATH, None, first)[0] == 200
    status, body = emu.handle("POST", req.BANK_PATH, None, req.bank(reference_id=first["reference_id"]))
    assert (status, body["responseCode"], body["responseKey"]) == (400, "E00019", "error_duplicate_reference_id")


def test_a_reference_id_is_used_up_even_when_the_first_request_was_refused():
    emu = DecentroEmulator()
    refused = req.pan(consent="N")
    assert emu.handle("POST", req.PAN_PATH, None, refused)[0] == 400
    assert emu.handle("POST", req.PAN_PATH, None, {**refused, "consent": "Y"})[1]["responseCode"] == "E00019"


def test_a_faulted_request_does_not_use_up_its_reference_so_a_retry_meets_the_fault_again():
    emu = DecentroEmulator()
    request = req.pan("ABCDE0503F")
    assert [emu.handle("POST", req.PAN_PATH, None, request)[0] for _ in range(3)] == [503, 503, 503]


def test_every_answer_carries_a_fresh_decentro_txn_id_from_the_injected_factory():
    ids = (f"ID{n}" for n in itertools.count())
    emu = DecentroEmulator(new_id=lambda: next(ids))
    txns = [emu.handle("POST", req.PAN_PATH, None, req.pan())[1]["decentroTxnId"] for _ in range(3)]
    assert txns == ["ID0", "ID1", "ID2"]


def test_seeded_ids_repeat_and_default_ids_differ_between_emulators():
    """Two processes sharing one database (gunicorn workers, a restarted demo) must never hand
    out the same decentroTxnId: callbacks and OTP sessions are matched by it."""
    def run(new_id: SeededIds | None = None) -> list[str]:
        emu = DecentroEmulator(new_id=new_id)
        return [emu.handle("POST", req.PAN_PATH, None, req.pan())[1]["decentroTxnId"] for _ in range(20)]

    seeded = run(SeededIds(7))
    assert seeded == run(SeededIds(7)) and len(set(seeded)) == 20
    assert set(run()).isdisjoint(run())


def test_credentials_are_not_checked_for_the_in_process_gateway():
    emu = DecentroEmulator(credentials=CREDS)
    assert emu.handle("POST", req.PAN_PATH, None, req.pan())[0] == 200


def test_missing_credentials_are_refused_with_error_empty_module_secret():
    emu = DecentroEmulator(credentials=CREDS)
    headers = {k: v for k, v in KYC_HEADERS.items() if k != "module_secret"}
    status, body = emu.handle("POST", req.PAN_PATH, headers, req.pan())
    assert (status, body["responseKey"]) == (401, "error_empty_module_secret")


def test_wrong_credentials_are_refused_and_do_not_use_up_the_reference():
    emu = DecentroEmulator(credentials=CREDS)
    request = req.pan()
    status, body = emu.handle("POST", req.PAN_PATH, {**KYC_HEADERS, "client_secret": "nope"}, request)
    assert (status, body["responseKey"]) == (401, "error_unauthorized_module")
    assert emu.handle("POST", req.PAN_PATH, {k.upper(): v for k, v in KYC_HEADERS.items()}, request)[0] == 200


def test_payments_also_need_the_provider_secret():
    emu = DecentroEmulator(credentials=CREDS)
    assert emu.handle("POST", req.LINK_PATH, KYC_HEADERS, req.link())[0] == 401
    assert emu.handle("POST", req.LINK_PATH, {**KYC_HEADERS, "provider_secret": "psecret"}, req.link())[0] == 200


def test_unknown_paths_and_non_object_bodies_are_refused():
    emu = DecentroEmulator()
    assert emu.handle("POST", "/v2/nothing/here", None, {})[0] == 404
    assert emu.handle("GET", req.PAN_PATH, None, None)[0] == 404
    assert emu.handle("POST", req.PAN_PATH, None, ["not", "an", "object"])[0] == 400


def test_stats_count_requests_and_billable_answers_per_path():
    emu = DecentroEmulator()
    emu.handle("POST", req.PAN_PATH, None, req.pan())
    emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE0500F"))
    emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE0408F"))
    txn = emu.handle("POST", req.LINK_PATH, None, req.link(10))[1]["decentroTxnId"]
    emu.handle("GET", f"/v2/payments/transaction/{txn}/status", None, None)
    stats = emu.stats()
    assert stats["requests"][req.PAN_PATH] == 3 and stats["billable"][req.PAN_PATH] == 1
    assert stats["requests"]["/v2/payments/transaction/{transaction_id}/status"] == 1
    assert stats["responses"] == {"200": 3, "500": 1, "timeout": 1} and stats["total"] == 5
    assert stats["terminal_payments"] == 1
    emu.reset()
    assert emu.stats()["total"] == 0


def test_concurrent_requests_with_one_reference_are_accepted_exactly_once():
    emu = DecentroEmulator()
    request = req.pan()
    results: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        status = emu.handle("POST", req.PAN_PATH, None, dict(request))
        with lock:
            results.append(status[0])  # type: ignore[index]

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(results) == [200] + [400] * 15


@pytest.mark.parametrize("path", ["/kyc/public_registry/validate/", "/kyc/public_registry/validate?x=1"])
def test_a_trailing_slash_or_query_string_reaches_the_same_path(path):
    assert DecentroEmulator().handle("POST", path, None, req.pan())[0] == 200
