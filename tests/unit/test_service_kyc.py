"""KYC operations in mock mode: the envelope, and what each of the emulator's magic values becomes."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import Harness, aadhaar_ending, build

from decentro_core.errors import GatewayTimeout, OtpError, RateLimited, UnknownReference, UpstreamUnavailable

PAN_PATH = "/kyc/public_registry/validate"


@pytest.fixture
def h() -> Harness:
    return build()


def _sent_reference(h: Harness, index: int = -1) -> str:
    body = h.gateway.requests[index].body
    assert body is not None
    return str(body["reference_id"])


def _assert_envelope(h: Harness, result: dict[str, Any], status: str) -> None:
    assert result["status"] == status
    assert result["data"]["reference_id"] == _sent_reference(h)
    assert result["data"]["operation_id"]


# -- PAN ------------------------------------------------------------------------------------


def test_verify_pan_returns_success_with_registered_name_and_the_reference_id_it_sent(h: Harness) -> None:
    result = h.service.verify_pan("ABCDE1234F")
    _assert_envelope(h, result, "SUCCESS")
    assert result["data"]["pan_status"] == "VALID"
    assert result["data"]["registered_name"]
    assert result["data"]["name_match"] is None
    assert "error" not in result


def test_verify_pan_compares_the_given_name_with_the_registered_one_ignoring_case(h: Harness) -> None:
    registered = h.service.verify_pan("ABCDE1234F")["data"]["registered_name"]
    assert h.service.verify_pan("abcde1234f", registered.upper())["data"]["name_match"] is True
    assert h.service.verify_pan("ABCDE1234F", "Somebody Else")["data"]["name_match"] is False


def test_verify_pan_sends_the_upper_cased_pan_with_consent_y_and_a_long_purpose(h: Harness) -> None:
    h.service.verify_pan(" abcde1234f ")
    request = h.gateway.requests[0]
    assert (request.method, request.path, request.module) == ("POST", PAN_PATH, "kyc")
    assert request.body["id_number"] == "ABCDE1234F"
    assert request.body["consent"] == "Y"
    assert len(request.body["consent_purpose"]) > 20


def test_a_pan_with_digits_0000_is_a_failure_envelope_with_invalid_document(h: Harness) -> None:
    result = h.service.verify_pan("ABCDE0000F")
    _assert_envelope(h, result, "FAILURE")
    assert result["error"]["code"] == "INVALID_DOCUMENT"
    assert result["data"]["pan_status"] == "INVALID"


def test_a_pan_with_digits_0404_is_a_failure_envelope_with_no_record(h: Harness) -> None:
    result = h.service.verify_pan("ABCDE0404F")
    _assert_envelope(h, result, "FAILURE")
    assert result["error"] == {"code": "NO_RECORD", "message": "No record was found for this document.",
                               "provider_code": "E00026"}


@pytest.mark.parametrize("pan", ["ABCDE0500F", "ABCDE0503F"])
def test_a_pan_answered_with_5xx_is_retried_three_times_then_raises_upstream_unavailable(h: Harness, pan: str) -> None:
    with pytest.raises(UpstreamUnavailable) as raised:
        h.service.verify_pan(pan)
    assert raised.value.upstream_status == int(pan[5:9])
    assert h.gateway.emulator.stats()["requests"][PAN_PATH] == 4
    assert len(h.sleep.delays) == 3
    assert pan not in str(raised.value) and pan not in repr(raised.value)


def test_a_pan_answered_with_429_is_retried_then_raises_rate_limited(h: Harness) -> None:
    with pytest.raises(RateLimited) as raised:
        h.service.verify_pan("ABCDE0429F")
    assert raised.value.http_status == 503
    assert h.gateway.emulator.stats()["requests"][PAN_PATH] == 4


def test_a_pan_that_times_out_is_retried_with_fresh_references_then_raises_gateway_timeout(h: Harness) -> None:
    with pytest.raises(GatewayTimeout) as raised:
        h.service.verify_pan("ABCDE0408F")
    assert raised.value.http_status == 504
    references = [r.reference_id for r in h.gateway.requests]
    assert len(references) == 4 and len(set(references)) == 4


def test_backoff_between_read_attempts_doubles_from_the_configured_base() -> None:
    h = build(backoff_base=1.0, backoff_max=100.0)
    with pytest.raises(UpstreamUnavailable):
        h.service.verify_pan("ABCDE0500F")
    floors = [1.0, 2.0, 4.0]
    assert len(h.sleep.delays) == len(floors)
    assert all(f <= d <= f * 1.25 for d, f in zip(h.sleep.delays, floors))


# -- bank account ---------------------------------------------------------------------------


def test_verify_bank_on_decentros_sandbox_success_account_is_a_valid_account(h: Harness) -> None:
    result = h.service.verify_bank("123456789011", "SBIN0001077")
    _assert_envelope(h, result, "SUCCESS")
    assert result["data"]["account_status"] == "VALID"
    assert result["data"]["beneficiary_name"]
    request = h.gateway.requests[0]
    assert (request.path, request.module) == ("/core_banking/money_transfer/validate_account", "banking")
    assert request.body["beneficiary_details"] == {"account_number": "123456789011", "ifsc": "SBIN0001077"}
    assert request.body["validation_type"] == "penniless"


def test_verify_bank_on_decentros_sandbox_failure_account_is_an_invalid_document(h: Harness) -> None:
    result = h.service.verify_bank("123456789013", "HDFC0001234")
    _assert_envelope(h, result, "FAILURE")
    assert result["error"]["code"] == "INVALID_DOCUMENT"
    assert result["data"]["account_status"] == "INVALID"


def test_verify_bank_with_an_account_ending_0000_is_an_invalid_document(h: Harness) -> None:
    result = h.service.verify_bank("123456780000", "SBIN0001077")
    assert (result["status"], result["error"]["code"]) == ("FAILURE", "INVALID_DOCUMENT")


def test_verify_bank_passes_the_validation_type_and_name_through(h: Harness) -> None:
    result = h.service.verify_bank("1234 5678 9011", "sbin0001077", "Test Person", validation_type="pennydrop")
    assert result["data"]["validation_type"] == "pennydrop"
    assert h.gateway.requests[0].body["beneficiary_details"]["name"] == "Test Person"
    assert h.gateway.requests[0].body["beneficiary_details"]["ifsc"] == "SBIN0001077"


def test_verify_bank_with_an_account_ending_0503_raises_upstream_unavailable_after_retries(h: Harness) -> None:
    with pytest.raises(UpstreamUnavailable):
        h.service.verify_bank("123456780503", "SBIN0001077")
    assert len(h.gateway.requests) == 4


# -- CKYC -----------------------------------------------------------------------------------


def test_fetch_ckyc_on_decentros_testbed_pan_finds_the_ckyc_record(h: Harness) -> None:
    result = h.service.fetch_ckyc("ABCDE1234A")
    _assert_envelope(h, result, "SUCCESS")
    assert len(result["data"]["ckyc_id"]) == 14
    assert result["data"]["full_name"]
    assert h.gateway.requests[0].body["consent"] is True


def test_fetch_ckyc_for_a_pan_with_digits_0404_is_no_record(h: Harness) -> None:
    result = h.service.fetch_ckyc("ABCDE0404F")
    assert (result["status"], result["error"]["code"]) == ("FAILURE", "NO_RECORD")


def test_fetch_ckyc_for_an_invalid_pan_0000_is_invalid_document_not_no_record(h: Harness) -> None:
    result = h.service.fetch_ckyc("ABCDE0000F")
    assert (result["status"], result["error"]["code"]) == ("FAILURE", "INVALID_DOCUMENT")


# -- Aadhaar offline XML (mock verifier) ----------------------------------------------------


def test_verify_aadhaar_xml_returns_the_verified_fields_and_a_local_operation_id(h: Harness) -> None:
    result = h.service.verify_aadhaar_xml("<OfflinePaperlessKyc/>", "1234", mobile="9876543210")
    assert result["status"] == "SUCCESS"
    data = result["data"]
    assert data["reference_id"] == h.ids.issued[-1]
    assert data["operation_id"].startswith("LOCAL-")
    assert data["masked_aadhaar"] == "********0000"
    assert data["signature_verified"] is True and data["mobile_verified"] is True
    assert h.gateway.requests == []


@pytest.mark.parametrize(("content", "share_code", "code"), [
    (b"<tampered/>", "1234", "AADHAAR_SIGNATURE_INVALID"),
    (b"<expired/>", "1234", "AADHAAR_FILE_TOO_OLD"),
    (b"<ok/>", "0000", "AADHAAR_SHARE_CODE_WRONG"),
])
def test_a_rejected_aadhaar_file_is_a_failure_envelope_with_the_rejection_code(
        h: Harness, content: bytes, share_code: str, code: str) -> None:
    result = h.service.verify_aadhaar_xml(content, share_code)
    assert result["status"] == "FAILURE"
    assert result["error"]["code"] == code
    assert h.record(result["data"]["reference_id"]).status == "FAILURE"


# -- Aadhaar OTP ----------------------------------------------------------------------------


def test_an_aadhaar_otp_flow_starts_then_verifies_with_the_magic_otp(h: Harness) -> None:
    started = h.service.start_aadhaar_otp(aadhaar_ending("1234"))
    _assert_envelope(h, started, "SUCCESS")
    assert started["data"]["initiation_id"] == started["data"]["operation_id"]
    verified = h.service.verify_aadhaar_otp(started["data"]["initiation_id"], "123456", share_code="1234")
    _assert_envelope(h, verified, "SUCCESS")
    assert verified["data"]["name"] and verified["data"]["date_of_birth"]
    assert h.gateway.requests[1].body["initiation_transaction_id"] == started["data"]["initiation_id"]


def test_the_aadhaar_number_is_sent_without_spaces(h: Harness) -> None:
    number = aadhaar_ending("1234")
    h.service.start_aadhaar_otp(f"{number[:4]} {number[4:8]} {number[8:]}")
    assert h.gateway.requests[0].body["aadhaar_number"] == number


@pytest.mark.parametrize(("otp", "code"), [
    ("000000", "AADHAAR_OTP_INVALID"),
    ("111111", "AADHAAR_OTP_LIMIT_EXCEEDED"),
    ("222222", "AADHAAR_OTP_SESSION_EXPIRED"),
    ("654321", "AADHAAR_OTP_INVALID"),
])
def test_each_magic_otp_raises_otp_error_with_its_code(h: Harness, otp: str, code: str) -> None:
    started = h.service.start_aadhaar_otp(aadhaar_ending("1234"))
    with pytest.raises(OtpError) as raised:
        h.service.verify_aadhaar_otp(started["data"]["initiation_id"], otp)
    assert (raised.value.code, raised.value.http_status) == (code, 422)
    assert len(h.gateway.requests) == 2  # an OTP check is never repeated


def test_an_initiation_id_this_service_never_started_is_unknown_and_nothing_is_sent(h: Harness) -> None:
    with pytest.raises(UnknownReference):
        h.service.verify_aadhaar_otp("NOT-A-SESSION", "123456")
    assert h.gateway.requests == [] and h.consents.records == []


def test_an_otp_session_is_completed_only_by_the_user_who_started_it(h: Harness) -> None:
    started = h.service.start_aadhaar_otp(aadhaar_ending("1234"), user_id="user-a")
    initiation = started["data"]["initiation_id"]
    for intruder in ("user-b", None):
        with pytest.raises(UnknownReference) as raised:
            h.service.verify_aadhaar_otp(initiation, "123456", user_id=intruder)
        assert initiation not in str(raised.value)
    assert len(h.gateway.requests) == 1  # only the start
    assert h.service.verify_aadhaar_otp(initiation, "123456", user_id="user-a")["status"] == "SUCCESS"


def test_a_session_decentro_has_expired_raises_session_expired(h: Harness) -> None:
    started = h.service.start_aadhaar_otp(aadhaar_ending("1234"))
    initiation = started["data"]["initiation_id"]
    h.gateway.emulator.reset()  # Decentro forgot the session (expired)
    with pytest.raises(OtpError) as raised:
        h.service.verify_aadhaar_otp(initiation, "123456")
    assert raised.value.code == "AADHAAR_OTP_SESSION_EXPIRED"


@pytest.mark.parametrize(("last4", "code"), [
    ("0000", "AADHAAR_NO_MOBILE_LINKED"),
    ("0429", "AADHAAR_OTP_FLOODING"),
])
def test_starting_an_otp_for_a_magic_aadhaar_raises_otp_error(h: Harness, last4: str, code: str) -> None:
    with pytest.raises(OtpError) as raised:
        h.service.start_aadhaar_otp(aadhaar_ending(last4))
    assert raised.value.code == code
    assert h.record(h.ids.issued[0]).status == "FAILURE"


def test_an_otp_start_that_times_out_is_pending_with_unknown_outcome_and_sent_once(h: Harness) -> None:
    result = h.service.start_aadhaar_otp(aadhaar_ending("0408"))
    assert result["status"] == "PENDING"
    assert result["data"]["reconciliation"] == "OUTCOME_UNKNOWN"
    assert len(h.gateway.requests) == 1
