"""The emulator's KYC, bank-account, Aadhaar OTP and notification answers, in Decentro's shapes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import test_emulator_support as req

from decentro_sandbox.core import TIMEOUT, DecentroEmulator


@pytest.fixture
def emu() -> DecentroEmulator:
    return DecentroEmulator()


def test_a_plain_pan_is_valid_with_the_same_fictional_name_every_time(emu):
    first = emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE1234F"))
    second = DecentroEmulator().handle("POST", req.PAN_PATH, None, req.pan("ABCDE1234F"))
    status, body = first
    assert status == 200
    assert body["status"] == "SUCCESS" and body["kycStatus"] == "SUCCESS" and body["responseCode"] == "S00000"
    assert body["kycResult"]["idStatus"] == "VALID" and body["kycResult"]["idNumber"] == "ABCDE1234F"
    assert body["kycResult"]["name"] and body["kycResult"]["name"] == second[1]["kycResult"]["name"]


def test_pan_digits_0000_answer_an_invalid_pan_with_http_200(emu):
    status, body = emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE0000F"))
    assert status == 200 and body["kycStatus"] == "SUCCESS" and body["kycResult"]["idStatus"] == "INVALID"


def test_pan_digits_0404_answer_no_record_the_way_decentro_does(emu):
    status, body = emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE0404F"))
    assert status == 200 and body["status"] == "SUCCESS" and body["kycStatus"] == "UNKNOWN"
    assert body["error"]["responseCode"] == "E00026" and "kycResult" not in body


@pytest.mark.parametrize(("pan", "status"), [("ABCDE0500F", 500), ("ABCDE0503F", 503), ("ABCDE0429F", 429)])
def test_pan_fault_digits_answer_their_http_status(emu, pan, status):
    assert emu.handle("POST", req.PAN_PATH, None, req.pan(pan))[0] == status


def test_pan_digits_0408_time_out(emu):
    assert emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE0408F")) is TIMEOUT


@pytest.mark.parametrize(
    "override",
    [{"consent": "N"}, {"consent": True}, {"consent_purpose": "too short purpose"},
     {"id_number": "ABCDE1234"}, {"document_type": "NOT-A-TYPE"}, {"reference_id": ""}],
)
def test_pan_requests_decentro_would_refuse_get_http_400_failure(emu, override):
    status, body = emu.handle("POST", req.PAN_PATH, None, req.pan(**override))
    assert status == 400 and body["status"] == "FAILURE"
    assert body["responseCode"] in {"E00009", "E00016"} and body["error"]["responseCode"] == body["responseCode"]
    assert body["decentroTxnId"]


def test_a_missing_field_is_error_malformed_request_e00009(emu):
    body = req.pan()
    del body["id_number"]
    status, answer = emu.handle("POST", req.PAN_PATH, None, body)
    assert (status, answer["responseCode"], answer["responseKey"]) == (400, "E00009", "error_malformed_request")


def test_ckyc_finds_decentros_testbed_pan_and_honours_magic_digits(emu):
    status, body = emu.handle("POST", req.CKYC_PATH, None, req.ckyc("ABCDE1234A"))
    assert status == 200 and body["responseKey"] == "success_ckyc_search"
    assert body["data"]["kycStatus"] == "SUCCESS" and len(body["data"]["kycResult"]["ckycId"]) == 14
    status, body = emu.handle("POST", req.CKYC_PATH, None, req.ckyc("ABCDE0404A"))
    assert (status, body["status"], body["responseCode"]) == (200, "FAILURE", "E00026")
    assert emu.handle("POST", req.CKYC_PATH, None, req.ckyc("ABCDE0503A"))[0] == 503


def test_ckyc_without_consent_true_is_refused(emu):
    status, body = emu.handle("POST", req.CKYC_PATH, None, req.ckyc(consent="Y"))
    assert status == 400 and body["status"] == "FAILURE"


def test_bank_sandbox_accounts_answer_flat_lowercase_success_and_failure(emu):
    status, ok = emu.handle("POST", req.BANK_PATH, None, req.bank("123456789011", "SBIN0001077"))
    assert (status, ok["status"], ok["accountStatus"], ok["responseCode"]) == (200, "success", "valid", "S00000")
    assert ok["beneficiaryName"] and "data" not in ok
    _, bad = emu.handle("POST", req.BANK_PATH, None, req.bank("123456789013", "HDFC0001234"))
    assert (bad["status"], bad["accountStatus"]) == ("failure", "invalid")
    assert bad["providerMessage"] == "NPCIERROR:INVALID ACCOUNT"


def test_bank_magic_last_digits_answer_invalid_or_a_fault(emu):
    assert emu.handle("POST", req.BANK_PATH, None, req.bank("987654320000"))[1]["accountStatus"] == "invalid"
    assert emu.handle("POST", req.BANK_PATH, None, req.bank("987654320500"))[0] == 500
    assert emu.handle("POST", req.BANK_PATH, None, req.bank("987654320408")) is TIMEOUT


def test_bank_refuses_a_bad_ifsc_and_an_unknown_validation_type(emu):
    assert emu.handle("POST", req.BANK_PATH, None, req.bank(ifsc="SBIN1001077"))[0] == 400
    assert emu.handle("POST", req.BANK_PATH, None, req.bank(validation_type="instant"))[0] == 400


def test_aadhaar_otp_start_then_validate_fetches_synthetic_ekyc(emu):
    status, started = emu.handle("POST", req.OTP_PATH, None, req.otp_start())
    assert status == 200 and started["responseKey"] == "success_otp_generated"
    status, body = emu.handle("POST", req.OTP_VALIDATE_PATH, None, req.otp_validate(started["decentroTxnId"]))
    assert status == 200 and body["responseKey"] == "success_aadhaar_fetched"
    data = body["data"]
    assert data["aadhaarReferenceNumber"].startswith("1234")
    assert set(data["proofOfIdentity"]) == {"dob", "gender", "name", "hashedEmail", "hashedMobileNumber"}
    assert data["proofOfAddress"]["country"] == "India" and data["image"]


def test_an_aadhaar_session_validates_only_once(emu):
    initiation = emu.handle("POST", req.OTP_PATH, None, req.otp_start())[1]["decentroTxnId"]
    emu.handle("POST", req.OTP_VALIDATE_PATH, None, req.otp_validate(initiation))
    body = emu.handle("POST", req.OTP_VALIDATE_PATH, None, req.otp_validate(initiation))[1]
    assert body["responseKey"] == "error_invalid_session"


@pytest.mark.parametrize(
    ("otp", "key"),
    [("000000", "error_invalid_otp"), ("111111", "error_otp_limit_exceeded"),
     ("222222", "error_invalid_session"), ("654321", "error_invalid_otp")],
)
def test_aadhaar_magic_otps_are_refused_with_their_response_key(emu, otp, key):
    initiation = emu.handle("POST", req.OTP_PATH, None, req.otp_start())[1]["decentroTxnId"]
    status, body = emu.handle("POST", req.OTP_VALIDATE_PATH, None, req.otp_validate(initiation, otp))
    assert (status, body["status"], body["responseKey"]) == (400, "FAILURE", key)


def test_an_unknown_or_expired_initiation_id_is_an_invalid_session():
    now = [datetime(2025, 1, 1, tzinfo=timezone.utc)]
    emu = DecentroEmulator(clock=lambda: now[0])
    assert emu.handle("POST", req.OTP_VALIDATE_PATH, None, req.otp_validate("NOPE"))[1]["responseKey"] == (
        "error_invalid_session")
    initiation = emu.handle("POST", req.OTP_PATH, None, req.otp_start())[1]["decentroTxnId"]
    now[0] += timedelta(minutes=11)
    body = emu.handle("POST", req.OTP_VALIDATE_PATH, None, req.otp_validate(initiation))[1]
    assert body["responseKey"] == "error_invalid_session"


@pytest.mark.parametrize(("aadhaar", "key"), [("234567890000", "error_no_mobile_found"),
                                              ("234567890429", "error_aadhaar_otp_flooding")])
def test_aadhaar_magic_endings_refuse_the_otp(emu, aadhaar, key):
    status, body = emu.handle("POST", req.OTP_PATH, None, req.otp_start(aadhaar))
    assert status in {400, 422} and body["status"] == "FAILURE" and body["responseKey"] == key


def test_aadhaar_otp_start_refuses_a_malformed_number_or_missing_consent(emu):
    assert emu.handle("POST", req.OTP_PATH, None, req.otp_start("12345678901"))[0] == 400
    assert emu.handle("POST", req.OTP_PATH, None, req.otp_start(consent=False))[0] == 400


def test_sms_succeeds_fails_on_0000_and_faults_on_0503(emu):
    assert emu.handle("POST", req.SMS_PATH, None, req.sms("9876543210"))[1]["status"] == "SUCCESS"
    assert emu.handle("POST", req.SMS_PATH, None, req.sms("9876540000"))[1]["status"] == "FAILURE"
    assert emu.handle("POST", req.SMS_PATH, None, req.sms("+919876540503"))[0] == 503


def test_email_local_parts_choose_failure_timeout_and_500(emu):
    assert emu.handle("POST", req.EMAIL_PATH, None, req.email())[1]["status"] == "SUCCESS"
    assert emu.handle("POST", req.EMAIL_PATH, None, req.email("fail@example.com"))[1]["status"] == "FAILURE"
    assert emu.handle("POST", req.EMAIL_PATH, None, req.email("timeout@example.com")) is TIMEOUT
    assert emu.handle("POST", req.EMAIL_PATH, None, req.email("error500@example.com"))[0] == 500


def test_notification_paths_are_the_ones_given_to_the_constructor():
    emu = DecentroEmulator(sms_path="/custom/sms", email_path="/custom/mail/")
    assert emu.handle("POST", "/custom/sms", None, req.sms())[0] == 200
    assert emu.handle("POST", "/custom/mail", None, req.email())[0] == 200
    assert emu.handle("POST", req.SMS_PATH, None, req.sms())[0] == 404
