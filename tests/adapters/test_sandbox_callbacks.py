"""The sandbox's callbacks: signed, retried up to 3 times, optionally duplicated or reordered."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import pytest
import requests
import test_emulator_support as req
from test_sandbox_support import PAYMENT_HEADERS, callback_receiver, wait_until

from decentro_adapters.emulator.sandbox import start_sandbox

SECRET = "test-callback-secret"


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _pay(sandbox, http, amount) -> dict:
    body = req.link(amount)
    answer = http.post(sandbox.url + req.LINK_PATH, json=body, headers=PAYMENT_HEADERS, timeout=5).json()
    return {"reference_id": body["reference_id"], "txn": answer["decentroTxnId"]}


def test_a_terminal_payment_is_posted_signed_with_hmac_sha256_of_the_raw_body(http):
    with callback_receiver() as (url, receiver), start_sandbox(callback_url=url, callback_secret=SECRET) as sandbox:
        paid = _pay(sandbox, http, 10)
        assert wait_until(lambda: receiver.count() == 1)
        body, signature = receiver.received[0]
        assert signature == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        payload = receiver.payloads()[0]
        assert payload["referenceId"] == paid["reference_id"] and payload["decentroTxnId"] == paid["txn"]
        assert payload["transactionStatus"] == "SUCCESS" and payload["attempt"] == 1
        assert wait_until(lambda: sandbox.stats()["callbacks"]["delivered"] == 1)


def test_a_failing_receiver_is_tried_three_times_in_all(http):
    with callback_receiver([500, 503]) as (url, receiver), start_sandbox(
        callback_url=url, callback_backoff=0.01
    ) as sandbox:
        _pay(sandbox, http, 20)
        assert wait_until(lambda: sandbox.stats()["callbacks"]["delivered"] == 1)
        payloads = receiver.payloads()
        assert [p["attempt"] for p in payloads] == [1, 2, 3]
        assert len({p["callbackTxnId"] for p in payloads}) == 3
        assert {p["originalCallbackTxnId"] for p in payloads} == {payloads[0]["callbackTxnId"]}
        assert sandbox.stats()["callbacks"]["attempted"] == 3


def test_after_three_failed_attempts_the_callback_is_given_up(http):
    with callback_receiver([500, 500, 500, 500]) as (url, receiver), start_sandbox(
        callback_url=url, callback_backoff=0.01
    ) as sandbox:
        _pay(sandbox, http, 10)
        assert wait_until(lambda: sandbox.stats()["callbacks"]["failed"] == 1)
        assert receiver.count() == 3 and sandbox.stats()["callbacks"]["delivered"] == 0


def test_an_unreachable_receiver_counts_as_a_failed_attempt(http):
    with callback_receiver() as (url, _receiver):
        pass  # the receiver is gone: its port refuses connections now
    with start_sandbox(callback_url=url, callback_backoff=0.01) as sandbox:
        _pay(sandbox, http, 10)
        assert wait_until(lambda: sandbox.stats()["callbacks"]["failed"] == 1)
        assert sandbox.stats()["callbacks"]["attempted"] == 3


def test_the_duplicate_option_sends_the_same_signed_body_twice(http):
    with callback_receiver() as (url, receiver), start_sandbox(callback_url=url, duplicate_callbacks=True) as sandbox:
        _pay(sandbox, http, 10)
        assert wait_until(lambda: receiver.count() == 2)
        assert receiver.received[0] == receiver.received[1]
        assert wait_until(lambda: sandbox.stats()["callbacks"]["duplicates"] == 1)


def test_the_reorder_option_delivers_a_later_callback_first(http):
    with callback_receiver() as (url, receiver), start_sandbox(callback_url=url, reorder_callbacks=True) as sandbox:
        sandbox.callbacks.configure(reorder_window=5.0)  # a slow CI machine still pairs them
        first = _pay(sandbox, http, 10)
        second = _pay(sandbox, http, 20)
        assert wait_until(lambda: receiver.count() == 2)
        assert [p["decentroTxnId"] for p in receiver.payloads()] == [second["txn"], first["txn"]]


def test_a_pending_payment_calls_back_only_when_settled_through_the_control_endpoint(http):
    with callback_receiver() as (url, receiver), start_sandbox(callback_url=url) as sandbox:
        pending = _pay(sandbox, http, 30)
        _pay(sandbox, http, 10)
        assert wait_until(lambda: receiver.count() == 1)
        settled = http.post(f"{sandbox.url}/_sandbox/payments/{pending['txn']}/settle",
                            json={"status": "EXPIRED"}, timeout=5)
        assert settled.status_code == 200
        assert wait_until(lambda: receiver.count() == 2)
        assert receiver.payloads()[1]["transactionStatus"] == "EXPIRED"


def test_the_callback_url_and_secret_can_be_set_while_running(http):
    with callback_receiver() as (url, receiver), start_sandbox() as sandbox:
        configured = http.post(sandbox.url + "/_sandbox/callbacks", json={"url": url, "secret": SECRET}, timeout=5)
        assert configured.status_code == 200
        _pay(sandbox, http, 10)
        assert wait_until(lambda: receiver.count() == 1)
        body, signature = receiver.received[0]
        assert signature == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        bad = http.post(sandbox.url + "/_sandbox/callbacks", json={"colour": "red"}, timeout=5)
        assert bad.status_code == 400


def test_without_a_callback_url_nothing_is_sent_and_the_skip_is_counted(http):
    with start_sandbox() as sandbox:
        _pay(sandbox, http, 10)
        assert wait_until(lambda: sandbox.stats()["callbacks"]["skipped"] == 1)
        assert sandbox.stats()["callbacks"]["attempted"] == 0
