"""The bulkhead over HTTP: while Decentro hangs, calls past the bound fail fast (503 +
Retry-After, nothing sent) and what never needs Decentro (settled status reads, callbacks, KYC
cache hits) still answers from a worker whose threads would otherwise all wait on Decentro.

A pool of three threads stands in for a gunicorn ``gthread`` worker (``--threads 3``); the
stand-in Decentro holds every KYC request on an Event the test releases.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask_helpers import CONSENT, RecordingGateway, callback, payment, signed_post

from decentro_adapters.aadhaar.mock import MockAadhaarVerifier
from decentro_core.memory import memory_ports
from decentro_core.ports import GatewayRequest, GatewayResponse
from decentro_core.service import BlockingDecentroService
from decentro_core.settings import Settings

LIMIT = 60.0  # generous: CI is a busy two-core machine
THREADS = 3


class HangingKyc(RecordingGateway):
    """The mock gateway, except that KYC requests wait for ``release`` while ``hanging`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging, self.release = threading.Event(), threading.Event()
        self.held = 0
        self._lock = threading.Lock()

    def send(self, request: GatewayRequest) -> GatewayResponse:
        if self.hanging.is_set() and request.module == "kyc":
            with self._lock:
                self.held += 1
            self.release.wait(LIMIT)
        return super().send(request)


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    done = threading.Event()
    for _ in range(int(LIMIT / 0.02)):
        if condition():
            return
        done.wait(0.02)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def gateway() -> Iterator[HangingKyc]:
    found = HangingKyc()
    yield found
    found.release.set()  # never leave a thread held, whatever the test did


@pytest.fixture
def hung_app(make_app: Callable[..., Flask], gateway: HangingKyc) -> Flask:
    ports = memory_ports(gateway, aadhaar_verifier=MockAadhaarVerifier())
    settings = Settings(use_mocks=True, bulkhead_max=THREADS - 1, breaker_threshold=0)
    # X-RateLimit headers off: with them, flask-limiter raises every Retry-After to its window's reset.
    return make_app(service=BlockingDecentroService(settings, ports, sleep=lambda seconds: None),
                    DECENTRO_RATELIMIT_HEADERS=False)


def _pan(number: int) -> dict[str, Any]:
    return {"pan": f"ABCDE{number:04d}F", "consent": CONSENT, "user_id": f"bulkhead-user-{number}"}


def _post(app: Flask, path: str, body: dict[str, Any]) -> Any:
    with app.test_client() as client:
        return client.post(path, json=body)


def _hang(app: Flask, gateway: HangingKyc, pool: ThreadPoolExecutor, count: int) -> list[Future[Any]]:
    """``count`` KYC checks held by the hanging Decentro (each a new PAN: no cache, no shared lock)."""
    gateway.hanging.set()
    held = [pool.submit(_post, app, "/api/kyc/pan", _pan(n)) for n in range(count)]
    _wait_for(lambda: gateway.held >= count, f"{count} requests held by the hanging Decentro")
    return held


def test_past_the_bound_a_kyc_check_and_a_payment_fail_fast_with_503_retry_after_and_nothing_sent(
        hung_app: Flask, gateway: HangingKyc) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        held = _hang(hung_app, gateway, pool, THREADS - 1)
        sent = len(gateway.requests)
        refused = _post(hung_app, "/api/kyc/pan", _pan(99))
        paying = _post(hung_app, "/api/payments", payment(30))
        assert (refused.status_code, refused.get_json()["error"]["code"]) == (503, "UPSTREAM_BULKHEAD_FULL")
        assert refused.headers["Retry-After"] == "1"
        assert (paying.status_code, paying.get_json()["error"]["code"]) == (503, "UPSTREAM_BULKHEAD_FULL")
        assert len(gateway.requests) == sent  # neither was sent
        service = hung_app.extensions["decentro"].service
        payments = [r for r in service.ports.records.operations.values() if r.operation == "upi_payment"]
        assert [r.status for r in payments] == ["FAILURE"]  # not PENDING: it was never made
        gateway.release.set()
        assert [f.result(LIMIT).status_code for f in held] == [200] * (THREADS - 1)


def test_settled_reads_callbacks_and_cache_hits_answer_while_every_slot_hangs(
        hung_app: Flask, gateway: HangingKyc) -> None:
    with hung_app.test_client() as client:
        settled = client.post("/api/payments", json=payment(10)).get_json()["data"]["reference_id"]
        assert client.get(f"/api/payments/{settled}").get_json()["status"] == "SUCCESS"  # now settled
        pending = client.post("/api/payments", json=payment(30)).get_json()["data"]["reference_id"]
        assert client.post("/api/kyc/pan", json=_pan(7)).status_code == 200  # cached from now on
    with ThreadPoolExecutor(THREADS) as pool:  # the worker's threads: every request goes through them
        held = _hang(hung_app, gateway, pool, THREADS - 1)
        more = [pool.submit(_post, hung_app, "/api/kyc/pan", _pan(n)) for n in range(10, 14)]
        sent = len(gateway.requests)

        def read(path: str) -> Any:
            with hung_app.test_client() as client:
                return client.get(path)

        def deliver() -> Any:
            with hung_app.test_client() as client:
                return signed_post(client, callback(pending))

        answers = [pool.submit(read, f"/api/payments/{settled}"), pool.submit(deliver),
                   pool.submit(_post, hung_app, "/api/kyc/pan", _pan(7))]
        status, ack, hit = (f.result(LIMIT) for f in answers)
        assert not gateway.release.is_set() and gateway.held == THREADS - 1  # Decentro still hangs
        assert (status.status_code, status.get_json()["status"]) == (200, "SUCCESS")
        assert ack.status_code == 200
        assert (hit.status_code, hit.get_json()["data"]["cached"]) == (200, True)
        assert [f.result(LIMIT).status_code for f in more] == [503] * 4
        assert len(gateway.requests) == sent  # none of them asked Decentro
        gateway.release.set()
        assert [f.result(LIMIT).status_code for f in held] == [200] * (THREADS - 1)
    with hung_app.test_client() as client:
        assert client.get(f"/api/payments/{pending}").get_json()["status"] == "SUCCESS"  # the callback's


def test_the_blocking_service_bounds_six_by_default_and_the_awaitable_one_by_its_pool() -> None:
    from decentro_core.async_service import DecentroService

    blocking = BlockingDecentroService(Settings(use_mocks=True), memory_ports(RecordingGateway()))
    assert blocking.bulkhead is not None and blocking.bulkhead.limit == 6
    awaitable = DecentroService(Settings(use_mocks=True, async_workers=16), ports=memory_ports(RecordingGateway()))
    try:
        assert awaitable.blocking.bulkhead is not None and awaitable.blocking.bulkhead.limit == 16
    finally:
        awaitable.close()
