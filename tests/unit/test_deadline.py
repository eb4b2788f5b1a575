"""One deadline per call: attempts, backoff and the single-flight wait all fit inside it."""

from __future__ import annotations

import pytest
from fakes import FakeMonotonic, Harness, build

from decentro_core.errors import DeadlineExceeded, GatewayTimeout
from decentro_core.ports import GatewayRequest, GatewayResponse


class HangingGateway:
    """An upstream that never answers: each attempt uses up its whole read timeout."""

    def __init__(self, monotonic: FakeMonotonic) -> None:
        self.monotonic = monotonic
        self.timeouts: list[float | None] = []

    def send(self, request: GatewayRequest) -> GatewayResponse:
        self.timeouts.append(request.timeout)
        self.monotonic.advance(request.timeout or 0)
        raise GatewayTimeout("no answer", request_id=request.reference_id)


def _hanging(**settings: object) -> tuple[Harness, HangingGateway, FakeMonotonic]:
    gateway = HangingGateway(FakeMonotonic())
    h = build(gateway, **settings)
    gateway.monotonic = h.monotonic  # the harness's clock, which its sleeps move too
    return h, gateway, h.monotonic


def test_a_hanging_upstream_gets_attempts_cut_to_the_deadline_then_a_typed_timeout() -> None:
    h, gateway, clock = _hanging(deadline=20.0, timeout=8.0, max_retries=5)
    started = clock()
    with pytest.raises(GatewayTimeout):
        h.service.verify_pan("ABCDE1234F")
    assert clock() - started <= 20.0
    assert gateway.timeouts[0] == 8.0 and len(gateway.timeouts) < 6
    assert all(t is not None and t <= 8.0 for t in gateway.timeouts)
    assert {r.status for r in h.records.operations.values()} <= {"RETRIED", "FAILURE"}


def test_the_last_attempt_only_gets_what_is_left_of_the_deadline() -> None:
    h, gateway, _ = _hanging(deadline=10.0, timeout=8.0, max_retries=3, backoff_base=0.5)
    with pytest.raises(GatewayTimeout):
        h.service.verify_pan("ABCDE1234F")
    assert gateway.timeouts[0] == 8.0
    assert gateway.timeouts[1] == pytest.approx(10.0 - 8.0 - h.sleep.delays[0])


def test_a_payment_whose_upstream_hangs_is_pending_within_the_deadline_and_sent_once() -> None:
    h, gateway, clock = _hanging(deadline=20.0, timeout=8.0)
    started = clock()
    result = h.service.initiate_payment({"amount": 10})
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "OUTCOME_UNKNOWN")
    assert len(gateway.timeouts) == 1 and clock() - started <= 20.0


def test_no_attempt_starts_when_less_than_a_second_is_left() -> None:
    h = build(deadline=0.5)
    with pytest.raises(DeadlineExceeded) as raised:
        h.service.verify_pan("ABCDE1234F")
    assert raised.value.http_status == 504 and h.gateway.requests == []
    (record,) = h.records.operations.values()
    assert record.status == "FAILURE"


def test_the_single_flight_wait_takes_the_deadline_but_a_last_second() -> None:
    h = build(deadline=20.0, timeout=8.0)
    waits: list[float] = []
    real_lock = h.cache.lock

    def recording_lock(key: str, *, timeout: float):  # type: ignore[no-untyped-def]
        waits.append(timeout)
        return real_lock(key, timeout=timeout)

    h.cache.lock = recording_lock  # type: ignore[method-assign]
    h.service.verify_pan("ABCDE1234F", user_id="u-1")
    assert waits == [19.0]
