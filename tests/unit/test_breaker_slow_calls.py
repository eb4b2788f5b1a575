"""The breaker opens on slow answers too (``DECENTRO_BREAKER_SLOW_CALL_*``): a Decentro that
answers in 6 s under a 10 s timeout never times out, yet holds every thread that calls it."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import FakeMonotonic, RecordingGateway, build

from decentro_core.errors import CircuitOpen
from decentro_core.ports import GatewayRequest, GatewayResponse


class Slow(RecordingGateway):
    """The emulator, answering after ``seconds`` on the harness's clock."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.clock: FakeMonotonic | None = None

    def send(self, request: GatewayRequest) -> GatewayResponse:
        assert self.clock is not None
        self.clock.advance(self.seconds)
        return super().send(request)


def _slow(seconds: float, **settings: Any) -> tuple[Any, Slow]:
    gateway = Slow(seconds)
    h = build(gateway, max_retries=0, **settings)
    gateway.clock = h.monotonic
    return h, gateway


def test_five_slow_answers_open_the_circuit_though_none_failed() -> None:
    h, gateway = _slow(6.0)
    for _ in range(5):
        assert h.service.verify_pan("ABCDE1234F")["status"] in {"SUCCESS", "FAILURE"}
    with pytest.raises(CircuitOpen):
        h.service.verify_pan("ABCDE1234F")
    assert len(gateway.requests) == 5
    assert h.service.initiate_payment({"amount": 10})["status"] == "PENDING"  # another module's circuit


def test_answers_under_the_slow_call_duration_or_below_the_rate_never_open_it() -> None:
    h, gateway = _slow(4.9)
    for _ in range(12):
        h.service.verify_pan("ABCDE1234F")
    assert len(gateway.requests) == 12
    off, _ = _slow(6.0, breaker_slow_call_rate=0.0)
    for _ in range(8):
        off.service.verify_pan("ABCDE1234F")


def test_the_rate_is_taken_over_the_window_of_recent_calls() -> None:
    h, gateway = _slow(6.0, breaker_slow_call_rate=0.6)
    for seconds in (1.0, 6.0) * 6:  # never more than half slow: not enough
        gateway.seconds = seconds
        h.service.verify_pan("ABCDE1234F")
    gateway.seconds = 6.0
    h.service.verify_pan("ABCDE1234F")  # the last 10: 6 slow
    assert len(gateway.requests) == 13
    with pytest.raises(CircuitOpen):
        h.service.verify_pan("ABCDE1234F")


def test_a_slow_trial_keeps_the_circuit_open_and_a_prompt_one_closes_it() -> None:
    h, gateway = _slow(6.0)
    for _ in range(5):
        h.service.verify_pan("ABCDE1234F")
    h.monotonic.advance(2.1)
    h.service.verify_pan("ABCDE1234F")  # the trial: answered, but slowly
    with pytest.raises(CircuitOpen):
        h.service.verify_pan("ABCDE1234F")
    gateway.seconds = 0.2
    h.monotonic.advance(2.1)
    h.service.verify_pan("ABCDE1234F")  # a prompt trial
    assert h.service.verify_pan("ABCDE1234F")["status"] in {"SUCCESS", "FAILURE"}  # closed again
