"""The sandbox's callbacks: signed, retried up to 3 times, optionally duplicated or reordered.

Every wait is on state: ``CallbackDeliverer.wait_idle`` (every queued callback delivered,
failed or skipped) with a generous limit, then exact counts. The deliverer's per-POST timeout
is raised as well, so a receiver slowed by a busy machine does not turn into a failed attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import test_emulator_support as req
from test_sandbox_support import PAYMENT_HEADERS, callback_receiver

from decentro_sandbox.sandbox import SandboxServer, start_sandbox

SECRET = "test-callback-secret"
WAIT = 60.0  # seconds: a limit for a busy machine, never an expected duration


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def sandbox_for(**options: Any) -> SandboxServer:
    """A started sandbox whose callback POSTs wait up to ``WAIT`` for the receiver's answer."""
    sandbox = start_sandbox(**options)
    sandbox.callbacks.configure(timeout=WAIT)
    return sandbox


def idle(sandbox: SandboxServer) -> dict[str, int]:
    """Wait until every queued callback is delivered, failed or skipped; the counts then."""
    assert sandbox.callbacks.wait_idle(WAIT), f"callbacks still pending after {WAIT}s"
    return sandbox.stats()["callbacks"]


def _pay(sandbox, http, amount) -> dict:
    body = req.link(amount)
    answer = http.post(sandbox.url + req.LINK_PATH, json=body, headers=PAYMENT_HEADERS, timeout=WAIT).json()
    return {"reference_id": body["reference_id"], "txn": answer["decentroTxnId"]}


def test_a_terminal_payment_is_posted_signed_with_hmac_sha256_of_the_raw_body(http):
    with callback_receiver() as (url, receiver), sandbox_for(callback_url=url, callback_secret=SECRET) as sandbox:
        paid = _pay(sandbox, http, 10)
        assert idle(sandbox)["delivered"] == 1
        assert receiver.count() == 1
        body, signature = receiver.received[0]
        assert signature == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        payload = receiver.payloads()[0]
        assert payload["referenceId"] == paid["reference_id"] and payload["decentroTxnId"] == paid["txn"]
        assert payload["transactionStatus"] == "SUCCESS" and payload["attempt"] == 1


def test_a_failing_receiver_is_tried_three_times_in_all(http):
    with callback_receiver([500, 503]) as (url, receiver), sandbox_for(
        callback_url=url, callback_backoff=0.01
    ) as sandbox:
        _pay(sandbox, http, 20)
        counts = idle(sandbox)
        assert (counts["delivered"], counts["failed"], counts["attempted"]) == (1, 0, 3)
        payloads = receiver.payloads()
        assert [p["attempt"] for p in payloads] == [1, 2, 3]
        assert len({p["callbackTxnId"] for p in payloads}) == 3
        assert {p["originalCallbackTxnId"] for p in payloads} == {payloads[0]["callbackTxnId"]}


def test_after_three_failed_attempts_the_callback_is_given_up(http):
    with callback_receiver([500, 500, 500, 500]) as (url, receiver), sandbox_for(
        callback_url=url, callback_backoff=0.01
    ) as sandbox:
        _pay(sandbox, http, 10)
        counts = idle(sandbox)
        assert (counts["failed"], counts["delivered"]) == (1, 0)
        assert receiver.count() == 3


def test_an_unreachable_receiver_counts_as_a_failed_attempt(http):
    with callback_receiver() as (url, _receiver):
        pass  # the receiver is gone: its port refuses connections now
    with sandbox_for(callback_url=url, callback_backoff=0.01) as sandbox:
        _pay(sandbox, http, 10)
        counts = idle(sandbox)
        assert (counts["failed"], counts["attempted"], counts["delivered"]) == (1, 3, 0)


def test_the_duplicate_option_sends_the_same_signed_body_twice(http):
    with callback_receiver() as (url, receiver), sandbox_for(callback_url=url, duplicate_callbacks=True) as sandbox:
        _pay(sandbox, http, 10)
        counts = idle(sandbox)
        assert (counts["delivered"], counts["duplicates"]) == (1, 1)
        assert receiver.count() == 2 and receiver.received[0] == receiver.received[1]


def test_the_reorder_option_delivers_a_later_callback_first(http):
    with callback_receiver() as (url, receiver), sandbox_for(callback_url=url, reorder_callbacks=True) as sandbox:
        sandbox.callbacks.configure(reorder_window=WAIT)  # the first is held until the second comes
        first = _pay(sandbox, http, 10)
        second = _pay(sandbox, http, 20)
        assert idle(sandbox)["delivered"] == 2
        assert [p["decentroTxnId"] for p in receiver.payloads()] == [second["txn"], first["txn"]]


def test_a_pending_payment_calls_back_only_when_settled_through_the_control_endpoint(http):
    with callback_receiver() as (url, receiver), sandbox_for(callback_url=url) as sandbox:
        pending = _pay(sandbox, http, 30)
        _pay(sandbox, http, 10)
        assert idle(sandbox)["queued"] == 1  # the settled payment only
        assert receiver.count() == 1
        settled = http.post(f"{sandbox.url}/_sandbox/payments/{pending['txn']}/settle",
                            json={"status": "EXPIRED"}, timeout=WAIT)
        assert settled.status_code == 200
        assert idle(sandbox)["delivered"] == 2
        assert receiver.count() == 2 and receiver.payloads()[1]["transactionStatus"] == "EXPIRED"


def test_the_callback_url_and_secret_can_be_set_while_running(http):
    with callback_receiver() as (url, receiver), sandbox_for() as sandbox:
        configured = http.post(sandbox.url + "/_sandbox/callbacks", json={"url": url, "secret": SECRET},
                               timeout=WAIT)
        assert configured.status_code == 200
        _pay(sandbox, http, 10)
        assert idle(sandbox)["delivered"] == 1
        body, signature = receiver.received[0]
        assert signature == hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        bad = http.post(sandbox.url + "/_sandbox/callbacks", json={"colour": "red"}, timeout=WAIT)
        assert bad.status_code == 400


def test_without_a_callback_url_nothing_is_sent_and_the_skip_is_counted(http):
    with sandbox_for() as sandbox:
        _pay(sandbox, http, 10)
        counts = idle(sandbox)
        assert (counts["skipped"], counts["attempted"]) == (1, 0)


def test_waiting_for_idle_is_true_at_once_when_nothing_was_queued_and_false_while_a_retry_waits(http):
    with callback_receiver([500]) as (url, receiver), sandbox_for(callback_url=url, callback_backoff=3600) as sandbox:
        assert sandbox.callbacks.wait_idle(0)
        _pay(sandbox, http, 10)
        assert _eventually(lambda: receiver.count() == 1)  # the first attempt reached the receiver
        assert not sandbox.callbacks.wait_idle(0.2)  # its retry is an hour away: not idle
        assert sandbox.stats()["callbacks"]["delivered"] == 0


def test_a_retry_held_by_a_long_backoff_goes_as_soon_as_configure_shortens_it(http):
    with callback_receiver([500]) as (url, receiver), sandbox_for(callback_url=url, callback_backoff=3600) as sandbox:
        _pay(sandbox, http, 10)
        assert _eventually(lambda: receiver.count() == 1)
        sandbox.callbacks.configure(backoff=0)  # wakes the waiting retry, which re-reads the backoff
        counts = idle(sandbox)
        assert (counts["attempted"], counts["delivered"]) == (2, 1)
        assert [p["attempt"] for p in receiver.payloads()] == [1, 2]


def _eventually(condition: Callable[[], bool]) -> bool:
    """Poll ``condition`` up to ``WAIT`` seconds (a state to reach, not a time to sleep)."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
