"""The guide's awaitable face: the same envelopes and errors as the blocking service."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from typing import Any

import pytest
from fakes import Harness, RecordingGateway, aadhaar_ending, build

from decentro_core import DecentroService, ValidationError
from decentro_core.errors import UnknownReference

PAYMENT = {"amount": 10, "customer_details": {"name": "Test Payer"}}


async def _run_async(asvc: DecentroService) -> list[dict[str, Any]]:
    started = await asvc.start_aadhaar_otp(aadhaar_ending("1234"))
    payment = await asvc.initiate_payment(PAYMENT)
    return [
        await asvc.verify_pan("ABCDE1234F", "Testa Synthetica", user_id="user-1"),
        await asvc.verify_pan("ABCDE1234F", "Testa Synthetica", user_id="user-1"),
        await asvc.verify_bank("123456789011", "SBIN0001077", validation_type="hybrid"),
        await asvc.fetch_ckyc("ABCDE1234A"),
        await asvc.verify_aadhaar_xml(b"<x/>", "1234"),
        started,
        await asvc.verify_aadhaar_otp(started["data"]["initiation_id"], "123456", share_code="1234"),
        payment,
        await asvc.get_payment_status(payment["data"]["reference_id"]),
        await asvc.send_sms("9876543210", "hello"),
        await asvc.send_email("jane@example.com", "Subject", "Body"),
    ]


def _run_blocking(h: Harness) -> list[dict[str, Any]]:
    svc = h.service
    started = svc.start_aadhaar_otp(aadhaar_ending("1234"))
    payment = svc.initiate_payment(PAYMENT)
    return [
        svc.verify_pan("ABCDE1234F", "Testa Synthetica", user_id="user-1"),
        svc.verify_pan("ABCDE1234F", "Testa Synthetica", user_id="user-1"),
        svc.verify_bank("123456789011", "SBIN0001077", validation_type="hybrid"),
        svc.fetch_ckyc("ABCDE1234A"),
        svc.verify_aadhaar_xml(b"<x/>", "1234"),
        started,
        svc.verify_aadhaar_otp(started["data"]["initiation_id"], "123456", share_code="1234"),
        payment,
        svc.get_payment_status(payment["data"]["reference_id"]),
        svc.send_sms("9876543210", "hello"),
        svc.send_email("jane@example.com", "Subject", "Body"),
    ]


@pytest.mark.asyncio
async def test_every_awaited_method_returns_the_same_envelope_as_the_blocking_service() -> None:
    twin_a, twin_b = build(), build()
    awaited = await _run_async(DecentroService(blocking=twin_a.service))
    blocking = _run_blocking(twin_b)
    for results in (awaited, blocking):  # each signed ZIP is encrypted afresh: only its digest differs
        assert len(results[6]["data"].pop("signed_file_sha256")) == 64
    assert awaited == blocking
    assert [r["status"] for r in awaited][:4] == ["SUCCESS"] * 4
    assert awaited[1]["data"]["cached"] is True
    assert twin_a.records.operations.keys() == twin_b.records.operations.keys()


@pytest.mark.asyncio
async def test_the_async_face_wraps_the_given_blocking_service_and_its_settings() -> None:
    h = build()
    asvc = DecentroService(blocking=h.service)
    assert asvc.blocking is h.service and asvc.settings is h.service.settings
    assert await asvc.cache_kyc_result("user-1", "pan", {"status": "SUCCESS"}, 30) is True
    assert await asvc.get_cached_kyc_result("user-1", "pan") == {"status": "SUCCESS"}


@pytest.mark.asyncio
async def test_awaited_methods_raise_the_same_typed_errors() -> None:
    h = build()
    asvc = DecentroService(blocking=h.service)
    with pytest.raises(ValidationError) as raised:
        await asvc.verify_pan("not-a-pan")
    assert set(raised.value.fields) == {"pan"}
    with pytest.raises(UnknownReference):
        await asvc.get_payment_status("missing")
    assert h.gateway.requests == []


def test_validate_webhook_on_the_async_face_is_a_plain_call() -> None:
    asvc = DecentroService(blocking=build().service)
    body = b'{"referenceId":"ref-1"}'
    signature = hmac.new(b"whsec", body, hashlib.sha256).hexdigest()
    assert asvc.validate_webhook(body, signature, "whsec") is True
    assert asvc.validate_webhook(body, signature, "other") is False


@pytest.mark.asyncio
async def test_async_with_closes_the_service_and_its_thread_pool() -> None:
    h = build()
    async with DecentroService(blocking=h.service) as decentro:
        assert (await decentro.verify_pan("ABCDE1234F"))["status"] == "SUCCESS"
    with pytest.raises(RuntimeError):  # the pool is shut down: no call can start after the block
        await decentro.verify_pan("ABCDE1234F")


@pytest.mark.asyncio
async def test_many_calls_wait_on_decentro_at_once_beyond_the_default_executor() -> None:
    import threading

    barrier = threading.Barrier(20, timeout=30)  # 20 calls in the gateway together: asyncio's pool has ~6

    class Gathering(RecordingGateway):
        def send(self, request: Any) -> Any:
            barrier.wait()
            return super().send(request)

    decentro = DecentroService(blocking=build(Gathering()).service)  # DECENTRO_ASYNC_WORKERS: 32
    results = await asyncio.gather(*(decentro.send_sms("9876500001", f"m{i}") for i in range(20)))
    decentro.close()
    assert {r["status"] for r in results} == {"SUCCESS"}
