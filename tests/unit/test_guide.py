"""The integration guide's own test, as written (only its import line adapted), plus every
guide call in mock mode returning the envelope."""

from __future__ import annotations

import pytest

from decentro_core import DecentroService  # the guide: from app.services.decentro import DecentroService


@pytest.mark.asyncio
async def test_aadhaar_verification():
    decentro = DecentroService()
    result = await decentro.verify_aadhaar_xml("xml_content", "1234")
    assert result["status"] == "SUCCESS"
    decentro.close()


@pytest.mark.asyncio
async def test_pan_verification():
    decentro = DecentroService()
    result = await decentro.verify_pan("ABCDE1234F", "John Doe")
    assert result["status"] == "SUCCESS"
    assert result["data"]["operation_id"]
    assert result["data"]["reference_id"]
    decentro.close()


def _is_envelope(result: dict) -> bool:
    data = result.get("data", {})
    return bool(
        result.get("status") in {"SUCCESS", "FAILURE", "PENDING"}
        and "operation_id" in data
        and isinstance(data.get("reference_id"), str)
        and data["reference_id"]
    )


@pytest.mark.asyncio
async def test_every_guide_call_returns_the_envelope_in_mock_mode():
    decentro = DecentroService()
    payment = await decentro.initiate_payment({
        "amount": 10, "currency": "INR", "payment_method": "upi",
        "customer_details": {"name": "Test Customer", "email": "customer@example.com", "phone": "9876500001"},
    })
    results = {
        "aadhaar": await decentro.verify_aadhaar_xml("xml_content", "1234"),
        "pan": await decentro.verify_pan("ABCDE1234F", "John Doe"),
        "bank": await decentro.verify_bank("123456789011", "SBIN0001077", "Test Customer"),
        "ckyc": await decentro.fetch_ckyc("ABCDE1234A"),
        "payment": payment,
        "payment_status": await decentro.get_payment_status(payment["data"]["reference_id"]),
        "sms": await decentro.send_sms("9876500001", "Your KYC is complete"),
        "email": await decentro.send_email("customer@example.com", "KYC", "Your KYC is complete"),
    }
    assert {name: _is_envelope(r) for name, r in results.items()} == {name: True for name in results}
    assert payment["status"] == "PENDING"
    assert results["payment_status"]["status"] == "SUCCESS"  # Decentro's sandbox: amount 10 succeeds
    assert await decentro.cache_kyc_result("user-1", "pan", results["pan"]) is True
    assert await decentro.get_cached_kyc_result("user-1", "pan") == results["pan"]
    assert await decentro.get_cached_kyc_result("user-1", "bank") is None
    decentro.close()


def test_validate_webhook_is_hmac_sha256_hex_of_the_raw_body():
    import hashlib
    import hmac

    body = b'{"referenceId":"r-1","transactionStatus":"SUCCESS"}'
    good = hmac.new(b"test-secret", body, hashlib.sha256).hexdigest()
    decentro = DecentroService()
    assert decentro.validate_webhook(body, good, "test-secret") is True
    assert decentro.validate_webhook(body + b" ", good, "test-secret") is False
    assert decentro.validate_webhook(body, good, "other-secret") is False
    decentro.close()
