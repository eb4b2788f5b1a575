"""The circuit breaker: when Decentro stops answering, calls fail fast instead of holding threads."""

from __future__ import annotations

import pytest
from fakes import RecordingGateway, build

from decentro_core.errors import CircuitOpen, GatewayTimeout
from decentro_core.ports import GatewayRequest, GatewayResponse


class Switchable(RecordingGateway):
    """The emulator, or a Decentro that never answers (each call times out)."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging = True

    def send(self, request: GatewayRequest) -> GatewayResponse:
        if self.hanging:
            self.requests.append(request)
            raise GatewayTimeout("no answer", request_id=request.reference_id)
        return super().send(request)


def _trip(h, gateway: Switchable) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):  # 5 calls, one attempt each (max_retries=0)
        with pytest.raises(GatewayTimeout):
            h.service.verify_pan("ABCDE1234F")


def test_after_five_timeouts_calls_fail_fast_without_reaching_decentro() -> None:
    gateway = Switchable()
    h = build(gateway, max_retries=0)
    _trip(h, gateway)
    with pytest.raises(CircuitOpen) as raised:
        h.service.verify_pan("ABCDE1234F")
    assert raised.value.http_status == 503 and len(gateway.requests) == 5


def test_a_payment_refused_by_the_open_circuit_was_not_made_and_is_not_pending() -> None:
    gateway = Switchable()
    h = build(gateway, max_retries=0)
    hung = [h.service.initiate_payment({"amount": 10}) for _ in range(5)]  # each may have been made
    assert {p["data"]["reconciliation"] for p in hung} == {"OUTCOME_UNKNOWN"}
    with pytest.raises(CircuitOpen):
        h.service.initiate_payment({"amount": 10})
    assert len(gateway.requests) == 5
    statuses = sorted(r.status for r in h.records.operations.values() if r.operation == "upi_payment")
    assert statuses == ["FAILURE"] + ["PENDING"] * 5  # the refused one was never sent


def test_after_the_cooldown_one_trial_call_closes_the_circuit_when_decentro_answers() -> None:
    gateway = Switchable()
    h = build(gateway, max_retries=0)
    _trip(h, gateway)
    gateway.hanging = False
    with pytest.raises(CircuitOpen):
        h.service.verify_pan("ABCDE1234F")  # still cooling down
    h.monotonic.advance(2.1)
    assert h.service.verify_pan("ABCDE1234F")["status"] == "SUCCESS"  # the trial
    assert h.service.verify_pan("ABCDE1234F")["status"] == "SUCCESS"  # closed again


def test_a_failed_trial_opens_the_circuit_again_and_other_modules_are_not_affected() -> None:
    gateway = Switchable()
    h = build(gateway, max_retries=0)
    _trip(h, gateway)
    h.monotonic.advance(2.1)
    with pytest.raises(GatewayTimeout):
        h.service.verify_pan("ABCDE1234F")  # the trial, still hanging
    with pytest.raises(CircuitOpen):
        h.service.verify_pan("ABCDE1234F")
    gateway.hanging = False
    assert h.service.send_sms("9876543210", "hello")["status"] == "SUCCESS"  # the notifications module


def test_a_business_failure_or_a_rate_limit_is_an_answer_not_an_outage() -> None:
    h = build(max_retries=0)
    for _ in range(10):
        assert h.service.verify_pan("ABCDE0000F")["status"] in {"FAILURE", "SUCCESS"}
    assert h.service._runner.breaker is not None and not h.service._runner.breaker.is_open("kyc")


def test_a_read_trial_gets_the_cooldown_to_answer_and_a_write_trial_keeps_its_own_timeout() -> None:
    gateway = Switchable()
    h = build(gateway, max_retries=0)
    _trip(h, gateway)
    h.monotonic.advance(2.1)
    with pytest.raises(GatewayTimeout):
        h.service.verify_pan("ABCDE1234F")  # the read trial, still hanging: open for another cooldown
    assert gateway.requests[-1].timeout is not None and gateway.requests[-1].timeout <= 2.0
    for _ in range(5):
        h.service.initiate_payment({"amount": 10})  # hung: PENDING, outcome unknown; the payments circuit opens
    sent = len(gateway.requests)
    with pytest.raises(CircuitOpen):
        h.service.initiate_payment({"amount": 10})  # cooling down: not sent
    assert len(gateway.requests) == sent
    gateway.hanging = False
    h.monotonic.advance(2.1)
    assert h.service.initiate_payment({"amount": 10})["status"] == "PENDING"  # a write is the trial...
    assert gateway.requests[-1].timeout == h.service.settings.timeout  # ... with its whole timeout
    assert h.service.initiate_payment({"amount": 10})["data"]["transaction_id"]  # closed: writes go again


def test_a_module_whose_calls_are_all_writes_closes_its_circuit_when_decentro_returns() -> None:
    """Notifications has no read to try the circuit with: a message is the trial."""
    gateway = Switchable()
    h = build(gateway, max_retries=0)
    for _ in range(5):  # a message that timed out may have been sent: PENDING, outcome unknown
        assert h.service.send_sms("9876543210", "Your sandbox code is 4321")["status"] == "PENDING"
    with pytest.raises(CircuitOpen):
        h.service.send_sms("9876543210", "Your sandbox code is 4321")
    gateway.hanging = False
    h.monotonic.advance(2.1)
    assert h.service.send_sms("9876543210", "Your sandbox code is 4321")["status"] == "SUCCESS"
    assert h.service.send_sms("9876543210", "Your sandbox code is 4321")["status"] == "SUCCESS"


def _opened(clock: list[float]):  # type: ignore[no-untyped-def]
    from decentro_core.breaker import CircuitBreaker

    breaker = CircuitBreaker(threshold=2, cooldown=2.0, monotonic=lambda: clock[0])
    breaker.failed("payments")
    breaker.failed("payments")
    return breaker


def test_where_no_read_comes_one_write_at_a_time_is_the_trial_and_a_failed_one_waits_a_cooldown() -> None:
    import threading

    clock = [0.0]
    breaker = _opened(clock)
    with pytest.raises(CircuitOpen):
        breaker.admit("payments", read=False)  # cooling down
    clock[0] = 2.0
    assert breaker.admit("payments", read=False) == 2.0  # the write trial (it keeps its own timeout)
    clock[0] = 10.0
    with pytest.raises(CircuitOpen):
        breaker.admit("payments", read=False)  # it still waits for its answer: no second write trial
    with pytest.raises(CircuitOpen):
        breaker.admit("payments", read=False, may_try=False)
    other = threading.Thread(target=breaker.failed, args=("payments",))  # another thread's failure...
    other.start()
    other.join(timeout=30)
    with pytest.raises(CircuitOpen):
        breaker.admit("payments", read=False)  # ... does not end this thread's write trial
    breaker.failed("payments")  # this thread's trial failed: a whole cooldown from now
    clock[0] = 11.0
    with pytest.raises(CircuitOpen):
        breaker.admit("payments", read=False)
    clock[0] = 12.0
    assert breaker.admit("payments", read=False) == 2.0
    breaker.succeeded("payments")
    assert breaker.admit("payments", read=False) is None and not breaker.is_open("payments")


def test_where_reads_come_they_alone_try_so_a_hung_decentro_holds_no_write_thread() -> None:
    clock = [0.0]
    breaker = _opened(clock)
    clock[0] = 1.0
    with pytest.raises(CircuitOpen):
        breaker.admit("payments")  # a read, cooling down: reads are around
    clock[0] = 2.5
    with pytest.raises(CircuitOpen):
        breaker.admit("payments", read=False)  # due, but a read came within two cooldowns
    assert breaker.admit("payments") == 2.0  # the read is the trial
    clock[0] = 9.0  # no read for two cooldowns: a write may try again
    assert breaker.admit("payments", read=False) == 2.0
