"""The bulkhead (``DECENTRO_BULKHEAD_MAX``, ``DECENTRO_BULKHEAD_MODULES``): past the bound a call
fails fast with nothing sent, and a refused write is as safe as one the open circuit refused."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest
from fakes import Harness, ScriptedGateway, build, payment_created

from decentro_core.errors import BulkheadFull, FailureReplayed, GatewayTimeout

WAIT = 60.0  # generous, for a busy CI machine


def _full(h: Harness, module: str, count: int) -> ExitStack:
    """``count`` slots of ``module`` held, as requests hung on Decentro would hold them."""
    bulkhead, stack = h.service.bulkhead, ExitStack()
    assert bulkhead is not None
    for _ in range(count):
        stack.enter_context(bulkhead.slot(module))
    return stack


def _collect() -> dict[str, Any]:
    return {"amount": 10.0, "customer_details": {"name": "Test Payer", "upi_id": "test.payer@okaxis"}}


def test_a_payment_refused_by_the_full_bulkhead_was_not_sent_and_its_key_is_not_left_pending() -> None:
    h = build(bulkhead_max=2)
    with _full(h, "payments", 2):
        with pytest.raises(BulkheadFull) as refused:
            h.service.initiate_payment({"amount": 10}, idempotency_key="order-17")
    assert (refused.value.http_status, refused.value.retry_after) == (503, 1.0)
    assert h.gateway.requests == []
    [record] = [r for r in h.records.operations.values() if r.operation == "upi_payment"]
    assert record.status == "FAILURE"  # nothing was made: never PENDING with an unknown outcome
    with pytest.raises(FailureReplayed) as replayed:  # as after an open circuit: a new key pays
        h.service.initiate_payment({"amount": 10}, idempotency_key="order-17")
    assert replayed.value.code == "UPSTREAM_BULKHEAD_FULL" and h.gateway.requests == []
    assert h.service.initiate_payment({"amount": 10}, idempotency_key="order-18")["status"] == "PENDING"


def test_a_collect_request_refused_by_the_full_bulkhead_is_retried_in_the_background() -> None:
    gateway = ScriptedGateway([payment_created("TXN-LATER")])
    h = build(gateway, bulkhead_max=1, backoff_base=0.01, backoff_max=0.02, breaker_cooldown=0.01)
    with _full(h, "payments", 1):
        answered = h.service.initiate_payment(_collect())
        assert gateway.requests == []
    assert answered["status"] == "PENDING" and answered["data"]["reconciliation"] == "RETRY_SCHEDULED"
    assert h.service.wait_for_retries(WAIT)
    record = h.record(answered["data"]["reference_id"])
    assert record.operation_id == "TXN-LATER" and len(gateway.requests) == 1


def test_a_module_bound_leaves_the_other_modules_their_slots() -> None:
    h = build(bulkhead_max=3, bulkhead_modules=(("kyc", 1),))
    with _full(h, "kyc", 1):
        with pytest.raises(BulkheadFull):
            h.service.verify_pan("ABCDE1234F")
        assert h.service.initiate_payment({"amount": 10})["status"] == "PENDING"
    assert h.service.verify_pan("ABCDE1234F")["status"] in {"SUCCESS", "FAILURE"}


def test_a_slot_is_given_back_whatever_the_request_ended_with() -> None:
    def hangs(request: Any) -> Any:
        raise GatewayTimeout("no answer", request_id=request.reference_id)

    h = build(ScriptedGateway([hangs]), bulkhead_max=1, max_retries=2, breaker_threshold=0)
    for _ in range(3):
        with pytest.raises(GatewayTimeout):
            h.service.verify_pan("ABCDE1234F")  # three attempts each, one slot: each got it back
    assert h.service.bulkhead is not None and h.service.bulkhead.in_flight() == 0
    assert len(h.gateway.requests) == 9


def test_the_bounds_are_read_from_the_environment_and_checked() -> None:
    from decentro_core.errors import ConfigurationError
    from decentro_core.settings import Settings

    s = Settings.from_mapping({"DECENTRO_BULKHEAD_MAX": "6", "DECENTRO_BULKHEAD_MODULES": "kyc=2, payments=3"})
    assert (s.bulkhead_max, s.bulkhead_modules) == (6, (("kyc", 2), ("payments", 3)))
    for bad in ({"DECENTRO_BULKHEAD_MODULES": "kyc"}, {"DECENTRO_BULKHEAD_MODULES": "kyc=0"}):
        with pytest.raises(ConfigurationError, match="DECENTRO_BULKHEAD_MODULES"):
            Settings.from_mapping(bad)
    with pytest.raises(ConfigurationError, match="DECENTRO_BULKHEAD_MAX"):
        Settings(bulkhead_max=-2).check()


def test_a_request_waits_for_a_slot_freed_within_the_wait_and_no_longer() -> None:
    import threading

    from decentro_core.bulkhead import Bulkhead

    bulkhead, got = Bulkhead(limit=1), threading.Event()
    holder = bulkhead.slot("kyc")
    holder.__enter__()

    def waiter() -> None:
        with bulkhead.slot("kyc", wait=WAIT):
            got.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    with pytest.raises(BulkheadFull):
        with bulkhead.slot("kyc", wait=0.0):  # no wait: refused while the slot is held
            pass
    holder.__exit__(None, None, None)  # the waiter takes the slot now
    assert got.wait(WAIT)
    thread.join(WAIT)
    assert bulkhead.in_flight() == 0
