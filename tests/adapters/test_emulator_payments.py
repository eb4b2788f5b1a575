"""The emulator's UPI answers, terminal statuses and callback payloads."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import test_emulator_support as req

from decentro_sandbox.core import TIMEOUT, DecentroEmulator


@pytest.fixture
def calls() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def emu(calls) -> DecentroEmulator:
    return DecentroEmulator(on_terminal=calls.append)


def _status(emu: DecentroEmulator, txn: str) -> str:
    status, body = emu.handle("GET", f"/v2/payments/transaction/{txn}/status", None, None)
    assert status == 200 and body["status"] == "SUCCESS"
    return str(body["data"]["transactionStatus"])


@pytest.mark.parametrize(("amount", "final"), [(10, "SUCCESS"), ("20.00", "FAILURE"), (30, "PENDING"),
                                               (99.5, "SUCCESS")])
def test_a_link_answers_pending_then_the_status_its_amount_selects(emu, amount, final):
    status, body = emu.handle("POST", req.LINK_PATH, None, req.link(amount))
    assert status == 200 and body["responseKey"] == "success_payment_link_created"
    assert body["data"]["transactionStatus"] == "PENDING" and body["data"]["encodedDynamicQrCode"]
    assert body["data"]["transactionId"] == body["decentroTxnId"]
    assert _status(emu, body["data"]["transactionId"]) == final


def test_a_collect_request_follows_the_same_amounts(emu):
    body = emu.handle("POST", req.COLLECTION_PATH, None, req.collect(20))[1]
    assert body["data"]["transactionStatus"] == "PENDING"
    assert _status(emu, body["data"]["transactionId"]) == "FAILURE"


def test_terminal_payments_call_the_hook_once_with_decentros_callback_shape(emu, calls):
    request = req.link(10)
    body = emu.handle("POST", req.LINK_PATH, None, request)[1]
    emu.handle("POST", req.LINK_PATH, None, req.link(30))
    _status(emu, body["data"]["transactionId"])
    assert len(calls) == 1
    callback = calls[0]
    assert callback["attempt"] == 1 and callback["callbackTxnId"] == callback["originalCallbackTxnId"]
    assert callback["transactionStatus"] == "SUCCESS" and callback["referenceId"] == request["reference_id"]
    assert callback["decentroTxnId"] == body["decentroTxnId"] and callback["transactionAmount"] == 10.0
    assert {"timestamp", "transactionMessage", "transferType", "bankReferenceNumber", "providerMessage"} <= set(callback)


def test_a_pending_payment_settles_when_a_test_says_so(emu, calls):
    txn = emu.handle("POST", req.LINK_PATH, None, req.link(30))[1]["decentroTxnId"]
    emu.settle_payment(txn, "FAILURE")
    assert _status(emu, txn) == "FAILURE" and calls[-1]["transactionStatus"] == "FAILURE"
    with pytest.raises(ValueError):
        emu.settle_payment(txn, "SUCCESS")


def test_a_pending_payment_expires_after_its_expiry_time(calls):
    now = [datetime(2025, 1, 1, tzinfo=timezone.utc)]
    emu = DecentroEmulator(clock=lambda: now[0], on_terminal=calls.append)
    txn = emu.handle("POST", req.LINK_PATH, None, req.link(30, expiry_time=5))[1]["decentroTxnId"]
    assert _status(emu, txn) == "PENDING"
    now[0] += timedelta(minutes=6)
    assert _status(emu, txn) == "EXPIRED" and calls[-1]["transactionStatus"] == "EXPIRED"


@pytest.mark.parametrize(("amount", "status"), [("5.00", 500), (5.03, 503), (4.29, 429)])
def test_magic_amounts_answer_their_http_status_and_create_nothing(emu, calls, amount, status):
    assert emu.handle("POST", req.LINK_PATH, None, req.link(amount))[0] == status
    assert calls == [] and emu.stats()["terminal_payments"] == 0


def test_amount_4_08_times_out(emu):
    assert emu.handle("POST", req.LINK_PATH, None, req.link(4.08)) is TIMEOUT


@pytest.mark.parametrize("override", [{"amount": 0}, {"amount": "ten"}, {"amount": 1.234},
                                      {"purpose_message": "Order #42!"}, {"expiry_time": 0},
                                      {"payee_account": None}])
def test_payment_requests_decentro_would_refuse_get_http_400(emu, override):
    status, body = emu.handle("POST", req.LINK_PATH, None, req.link(**override))
    assert status == 400 and body["status"] == "FAILURE"


def test_an_unknown_transaction_id_is_decentros_e00009_not_found(emu):
    status, body = emu.handle("GET", "/v2/payments/transaction/NOPE/status", None, None)
    assert (status, body["status"], body["responseCode"]) == (400, "FAILURE", "E00009")
    assert body["message"].startswith("This transaction was not found in our system.")
    assert set(body) == {"decentroTxnId", "status", "responseCode", "message"}  # the spec's example, no more


def test_vpa_validation_knows_decentros_sandbox_handles(emu):
    valid = emu.handle("POST", req.VPA_PATH, None, req.vpa("charles.babbage@okhdfc"))[1]["data"]
    invalid = emu.handle("POST", req.VPA_PATH, None, req.vpa("alan.turing@oksbi"))[1]["data"]
    assert (valid["status"], valid["name"]) == ("VALID", "Charles Babbage")
    assert invalid["status"] == "INVALID"
    assert emu.handle("POST", req.VPA_PATH, None, req.vpa("not-a-vpa"))[0] == 400


def test_a_failing_hook_does_not_change_decentros_answer():
    def explode(payload: dict[str, Any]) -> None:
        raise RuntimeError("receiver down")

    emu = DecentroEmulator(on_terminal=explode)
    assert emu.handle("POST", req.LINK_PATH, None, req.link(10))[0] == 200
