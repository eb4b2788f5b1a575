"""The retry policy, proven by counting attempts and recording the (injected) backoff."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from decentro_core import BlockingDecentroService, Settings
from decentro_core.errors import (
    GatewayConnectionError,
    GatewayTimeout,
    RateLimited,
    UpstreamUnavailable,
)
from decentro_core.memory import memory_ports, MemoryAuditSink, MemoryCache, MemoryConsentStore, MemoryRecordStore, MemoryVault
from decentro_core.ports import GatewayRequest, GatewayResponse
from decentro_core.retry import RetryMode, RetryPolicy, raise_for_transient_status, run_with_retry

PAN_OK = {"status": "SUCCESS", "kycStatus": "SUCCESS", "responseCode": "S00000", "decentroTxnId": "TXN1",
          "kycResult": {"idNumber": "ABCDE1234F", "idStatus": "VALID", "name": "Test Person"}}
LINK_OK = {"status": "SUCCESS", "responseCode": "S00000", "decentroTxnId": "TXN2",
           "data": {"transactionId": "TXN2", "transactionStatus": "PENDING", "generatedLink": "https://x.invalid"}}
Step = GatewayResponse | Exception


class ScriptedGateway:
    """Answers from a script, one step per request, and keeps every request it got."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[GatewayRequest] = []

    def send(self, request: GatewayRequest) -> GatewayResponse:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def _service(gateway: ScriptedGateway, sleeps: list[float], **settings: object) -> BlockingDecentroService:
    counter = iter(range(1, 1000))
    return BlockingDecentroService(Settings(**{"backoff_base": 0.5, "backoff_max": 8.0, **settings}), memory_ports(gateway), clock=lambda: datetime(2026, 11, 26, tzinfo=timezone.utc), new_reference_id=lambda: f"ref-{next(counter)}", sleep=sleeps.append, rng=random.Random(7))


def _answer(status: int, body: dict | None = None, headers: dict | None = None) -> GatewayResponse:
    return GatewayResponse(status, body or {}, headers or {})


def _pay(service: BlockingDecentroService) -> dict:
    return service.initiate_payment({"amount": 10, "currency": "INR", "payment_method": "upi"})


def test_retries_a_503_three_times_then_raises_upstream_unavailable():
    gateway = ScriptedGateway(*[_answer(503)] * 4)
    sleeps: list[float] = []
    with pytest.raises(UpstreamUnavailable) as caught:
        _service(gateway, sleeps).verify_pan("ABCDE1234F")
    assert len(gateway.requests) == 4
    assert caught.value.upstream_status == 503
    assert len(sleeps) == 3


def test_backoff_doubles_from_the_base_with_jitter_of_at_most_a_quarter():
    gateway = ScriptedGateway(*[_answer(502)] * 3, _answer(200, PAN_OK))
    sleeps: list[float] = []
    _service(gateway, sleeps).verify_pan("ABCDE1234F")
    bases = [0.5, 1.0, 2.0]
    assert all(base <= slept <= base * 1.25 for base, slept in zip(bases, sleeps, strict=True))
    assert sleeps != bases  # the jitter is there


def test_jitter_never_pushes_a_wait_past_the_maximum():
    policy = RetryPolicy(max_retries=10, backoff_base=1.0, backoff_max=3.0, jitter=0.25)
    rng = random.Random(5)
    assert max(policy.delay(n, None, rng) for n in range(1, 10) for _ in range(50)) <= 3.0


def test_backoff_never_exceeds_the_configured_maximum():
    policy = RetryPolicy(max_retries=10, backoff_base=1.0, backoff_max=3.0, jitter=0.0)
    assert [policy.delay(n, None, random.Random(1)) for n in range(1, 6)] == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_a_read_retry_uses_a_fresh_reference_id_and_marks_the_old_one_retried():
    gateway = ScriptedGateway(_answer(503), _answer(200, PAN_OK))
    service = _service(gateway, [])
    result = service.verify_pan("ABCDE1234F")
    sent = [r.body["reference_id"] for r in gateway.requests]  # type: ignore[index]
    assert sent == ["ref-1", "ref-2"]
    assert result["data"]["reference_id"] == "ref-2"
    assert service.ports.records.get_operation("ref-1").status == "RETRIED"
    assert service.ports.records.get_operation("ref-2").status == "SUCCESS"


def test_a_read_timeout_on_a_kyc_read_is_retried():
    gateway = ScriptedGateway(GatewayTimeout("slow"), _answer(200, PAN_OK))
    result = _service(gateway, []).verify_pan("ABCDE1234F")
    assert result["status"] == "SUCCESS"
    assert len(gateway.requests) == 2


def test_a_payment_is_never_sent_twice_after_a_read_timeout():
    gateway = ScriptedGateway(GatewayTimeout("slow"), _answer(200, LINK_OK))
    service = _service(gateway, [])
    result = _pay(service)
    assert len(gateway.requests) == 1
    assert result["status"] == "PENDING"
    assert result["data"]["reconciliation"] == "OUTCOME_UNKNOWN"
    assert service.ports.records.get_operation(result["data"]["reference_id"]).status == "PENDING"


@pytest.mark.parametrize("status", [500, 502, 504])
def test_a_payment_is_not_retried_after_an_ambiguous_5xx(status: int):
    gateway = ScriptedGateway(_answer(status), _answer(200, LINK_OK))
    result = _pay(_service(gateway, []))
    assert len(gateway.requests) == 1
    assert result["status"] == "PENDING"


@pytest.mark.parametrize("first", [_answer(503), _answer(429), GatewayConnectionError("refused")])
def test_a_payment_retries_a_provably_unprocessed_failure_with_the_same_reference(first: Step):
    gateway = ScriptedGateway(first, _answer(200, LINK_OK))
    result = _pay(_service(gateway, []))
    assert [r.reference_id for r in gateway.requests] == ["ref-1", "ref-1"]
    assert [r.body["reference_id"] for r in gateway.requests] == ["ref-1", "ref-1"]  # type: ignore[index]
    assert result["status"] == "PENDING" and result["data"]["transaction_id"] == "TXN2"


def test_a_duplicate_reference_on_a_payment_retry_means_the_first_was_accepted():
    duplicate = _answer(400, {"status": "FAILURE", "responseCode": "E00019",
                              "responseKey": "error_duplicate_reference_id"})
    gateway = ScriptedGateway(_answer(503), duplicate)
    result = _pay(_service(gateway, []))
    assert len(gateway.requests) == 2
    assert result["status"] == "PENDING"
    assert result["data"]["reconciliation"] == "OUTCOME_UNKNOWN"


def test_a_429_retry_after_is_honoured_up_to_the_maximum_backoff():
    gateway = ScriptedGateway(_answer(429, headers={"Retry-After": "5"}), _answer(429, headers={"Retry-After": "60"}),
                              _answer(200, PAN_OK))
    sleeps: list[float] = []
    _service(gateway, sleeps).verify_pan("ABCDE1234F")
    assert 5.0 <= sleeps[0] <= 6.25
    assert sleeps[1] == 8.0


def test_a_provider_rejection_is_not_retried():
    rejected = _answer(400, {"status": "FAILURE", "error": {"responseCode": "E00009", "message": "bad"}})
    gateway = ScriptedGateway(rejected)
    result = _service(gateway, []).verify_pan("ABCDE1234F")
    assert len(gateway.requests) == 1
    assert result["status"] == "FAILURE" and result["error"]["code"] == "REJECTED_BY_PROVIDER"


def test_max_retries_setting_bounds_the_attempts():
    gateway = ScriptedGateway(*[_answer(503)] * 2)
    with pytest.raises(UpstreamUnavailable):
        _service(gateway, [], max_retries=1).verify_pan("ABCDE1234F")
    assert len(gateway.requests) == 2


def test_run_with_retry_reraises_the_last_error_unchanged():
    errors = [RateLimited("r"), RateLimited("r")]

    def attempt(number: int) -> None:
        raise errors[number - 1]

    with pytest.raises(RateLimited) as caught:
        run_with_retry(attempt, mode=RetryMode.READ, policy=RetryPolicy(max_retries=1), sleep=lambda s: None)
    assert caught.value is errors[1]


def test_transient_statuses_become_typed_errors_and_others_pass_through():
    def raised(status: int) -> type[Exception] | None:
        try:
            raise_for_transient_status(_answer(status), request_id="r")
        except Exception as exc:  # noqa: BLE001 - the type is what is asserted
            return type(exc)
        return None

    assert {s: raised(s) for s in (200, 400, 429, 500, 503)} == {
        200: None, 400: None, 429: RateLimited, 500: UpstreamUnavailable, 503: UpstreamUnavailable}


class FailingAfterFirstSave(MemoryRecordStore):
    """The database goes away after the write-ahead record was saved."""

    def __init__(self) -> None:
        super().__init__()
        self.saves = 0

    def save_operation(self, record):  # type: ignore[no-untyped-def]
        self.saves += 1
        if self.saves > 1:
            from decentro_core.errors import StoreError

            raise StoreError("database unavailable")
        super().save_operation(record)

    def save_outcome(self, record, **kwargs):  # type: ignore[no-untyped-def]
        self.save_operation(record)  # fails like every write after the first
        return super().save_outcome(record, **kwargs)


def test_a_payment_decentro_accepted_is_returned_even_if_its_outcome_cannot_be_recorded():
    records = FailingAfterFirstSave()
    gateway = ScriptedGateway(_answer(200, LINK_OK))
    service = BlockingDecentroService(Settings(), memory_ports(gateway, records=records), new_reference_id=lambda: "ref-1", sleep=lambda s: None)
    result = _pay(service)
    assert result["status"] == "PENDING" and result["data"]["transaction_id"] == "TXN2"
    assert records.get_operation("ref-1").status == "PENDING"  # the write-ahead record, for reconciliation
    assert len(gateway.requests) == 1


def test_a_kyc_read_whose_outcome_cannot_be_recorded_raises_the_store_error():
    from decentro_core.errors import StoreError

    service = BlockingDecentroService(Settings(), memory_ports(ScriptedGateway(_answer(200, PAN_OK)), records=FailingAfterFirstSave()), sleep=lambda s: None)
    with pytest.raises(StoreError):
        service.verify_pan("ABCDE1234F")
