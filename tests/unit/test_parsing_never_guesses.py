"""Never a wrong SUCCESS (issue #20): every parser needs Decentro's own success signal and the
data it promises, in the v2 and the v3 envelope; anything else is a typed failure or
:class:`~decentro_core.errors.UpstreamProtocolError`. Synthetic identities only."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import ScriptedGateway, answer, build, pan_found, payment_created

from decentro_core.envelope import classify, is_success, provider_code_of
from decentro_core.errors import AuthenticationFailed, DuplicateReference, RateLimited, UpstreamProtocolError
from decentro_core.operations.aadhaar import parse_otp
from decentro_core.operations.kyc import parse_bank, parse_ckyc, parse_pan
from decentro_core.operations.notifications import parse_notification
from decentro_core.operations.payments import parse_payment, parse_status
from decentro_core.operations.vpa import parse_vpa
from decentro_core.ports import GatewayResponse
from decentro_core.retry import raise_for_transient_status

START: dict[str, Any] = {"aadhaar_number": "234567890124"}
VERIFY: dict[str, Any] = {"initiation_id": "D0", "otp": "123456", "share_code": None}
IDENTITY = {"proofOfIdentity": {"name": "Testa Synthetica", "dob": "01-01-1990", "gender": "F"},
            "proofOfAddress": {"state": "Karnataka"}, "aadhaarReferenceNumber": "R1"}


def _response(http_status: int = 200, /, **body: object) -> GatewayResponse:
    return GatewayResponse(status_code=http_status, body=body)


def _v3(http_status: int = 200, /, *, api_status: str = "FAILURE", response_key: str = "",
        code: str = "", **rest: object) -> GatewayResponse:
    """A v3 answer (docs.decentro.tech): ``api_status`` is the API hit's, not the transaction's."""
    body: dict[str, Any] = {"api_status": api_status, "decentro_txn_id": "D3", "message": "refused", **rest}
    if response_key:
        body["response_key"] = response_key
    if code:
        body["error"] = {"response_code": code, "message": "refused"}
    return GatewayResponse(status_code=http_status, body=body)


# -- Aadhaar OTP ------------------------------------------------------------------------------


@pytest.mark.parametrize("request_", [START, VERIFY], ids=["start", "verify"])
def test_an_otp_failure_inside_http_200_is_never_success(request_: dict[str, Any]) -> None:
    outcome = parse_otp(_response(200, status="FAILURE", responseCode="E00009", decentroTxnId="D1"), "r", request_)
    assert (outcome.status, outcome.error_code, outcome.provider_code) == ("FAILURE", "REJECTED_BY_PROVIDER",
                                                                          "E00009")


def test_an_otp_validation_with_null_data_is_a_protocol_error_not_success() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_otp(_response(200, status="SUCCESS", responseCode="S00000", decentroTxnId="D1", data=None), "r", VERIFY)


def test_an_otp_start_without_a_transaction_id_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_otp(_response(200, status="SUCCESS", responseKey="success_otp_generated"), "r", START)


def test_a_v3_failure_on_otp_start_is_a_failure() -> None:
    outcome = parse_otp(_v3(200, code="E00009"), "r", START)
    assert (outcome.status, outcome.provider_code) == ("FAILURE", "E00009")


def test_a_share_code_answer_without_the_signed_zip_fails_typed_instead_of_unsigned_success() -> None:
    body = {"status": "SUCCESS", "responseCode": "S00000", "decentroTxnId": "D2", "data": IDENTITY}
    outcome = parse_otp(_response(200, **body), "r", {**VERIFY, "share_code": "1234"})
    assert (outcome.status, outcome.error_code) == ("FAILURE", "AADHAAR_SIGNED_FILE_MISSING")
    # without a share code, unsigned data is what was asked for
    assert parse_otp(_response(200, **body), "r", VERIFY).status == "SUCCESS"


# -- the v3 envelope --------------------------------------------------------------------------


@pytest.mark.parametrize("response", [
    _v3(200, response_key="error_unauthorized_module"),
    _v3(400, response_key="error_unauthorized_module"),
    _v3(200, code="error_invalid_credentials"),
], ids=["key-in-200", "key-in-400", "nested-code"])
def test_a_v3_credential_refusal_is_authentication_failed(response: GatewayResponse) -> None:
    with pytest.raises(AuthenticationFailed):
        classify(response, request_id="r")


@pytest.mark.parametrize("response", [
    _v3(400, response_key="error_duplicate_reference_id"),
    _v3(200, code="E00019"),
], ids=["key", "nested-code"])
def test_a_v3_duplicate_reference_is_duplicate_reference(response: GatewayResponse) -> None:
    with pytest.raises(DuplicateReference):
        classify(response, request_id="r")


@pytest.mark.parametrize("response", [
    _v3(400, response_key="error_rate_limit_exceeded"),
    _response(400, status="FAILURE", responseKey="error_rate_limit_exceeded"),
], ids=["v3", "v2"])
def test_a_rate_limit_key_is_rate_limited_in_either_shape(response: GatewayResponse) -> None:
    with pytest.raises(RateLimited):
        classify(response, request_id="r")


def test_v3_success_is_read_from_api_status_and_an_error_object_is_never_success() -> None:
    assert is_success({"api_status": "SUCCESS", "decentro_txn_id": "D"})
    assert not is_success({"api_status": "FAILURE"})
    assert not is_success({"status": "SUCCESS", "error": {"responseCode": "E00026"}})
    assert not is_success({"decentroTxnId": "D"})  # no status at all


def test_the_snake_case_error_code_of_the_collections_status_example_is_read() -> None:
    body = {"decentroTxnId": "XYZ", "error": {"message": "Internal Server Error", "response_code": "E00000"}}
    assert provider_code_of(body) == "E00000"
    outcome = parse_status(GatewayResponse(200, body), "r", {})
    assert (outcome.status, outcome.provider_code) == ("FAILURE", "E00000")


# -- KYC ---------------------------------------------------------------------------------------


def test_a_ckyc_failure_in_200_keeps_its_own_code_and_only_e00026_is_no_record() -> None:
    refused = parse_ckyc(_response(200, status="FAILURE", responseCode="E00009", decentroTxnId="C1"), "r", {})
    assert (refused.error_code, refused.provider_code) == ("REJECTED_BY_PROVIDER", "E00009")
    none = parse_ckyc(_response(200, status="FAILURE", decentroTxnId="C2",
                                error={"responseCode": "E00026", "message": "No records"}), "r", {})
    assert none.error_code == "NO_RECORD"


def test_a_ckyc_success_without_its_result_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_ckyc(_response(200, status="SUCCESS", decentroTxnId="C3", data={}), "r", {})


def test_a_pan_answer_whose_envelope_failed_is_not_success_even_with_a_valid_result() -> None:
    outcome = parse_pan(_response(200, status="FAILURE", responseCode="E00009", decentroTxnId="P1",
                                  kycResult={"idStatus": "VALID", "name": "Testa Synthetica"}), "r", {"name": None})
    assert (outcome.status, outcome.error_code) == ("FAILURE", "REJECTED_BY_PROVIDER")


def test_a_pan_success_without_an_id_status_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_pan(_response(200, status="SUCCESS", decentroTxnId="P2", kycResult={"name": "Testa"}), "r", {})


def test_a_bank_success_that_does_not_say_valid_or_invalid_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_bank(_response(200, status="success", decentroTxnId="B1"), "r", {"name": None})


def test_a_bank_failure_without_an_account_status_is_a_rejection_not_an_invalid_account() -> None:
    outcome = parse_bank(_response(200, status="failure", responseCode="E00009", decentroTxnId="B2"), "r",
                         {"name": None})
    assert (outcome.error_code, outcome.provider_code) == ("REJECTED_BY_PROVIDER", "E00009")


def test_detailed_pan_sends_pan_detailed_by_default_and_the_emulator_accepts_it() -> None:
    h = build()
    result = h.service.verify_pan("ABCDE1234F", detailed=True)
    assert h.gateway.requests[-1].body["document_type"] == "PAN_DETAILED"
    assert result["status"] == "SUCCESS" and result["data"]["first_name"]


def test_the_detailed_document_type_is_a_setting() -> None:
    gateway = ScriptedGateway([pan_found()])
    h = build(gateway, pan_detailed_document_type="PAN-DETAILED")
    h.service.verify_pan("ABCDE1234F", detailed=True)
    assert gateway.requests[-1].body["document_type"] == "PAN-DETAILED"
    h.service.verify_pan("ABCDE1234F")
    assert gateway.requests[-1].body["document_type"] == "PAN"


# -- payments and notifications ----------------------------------------------------------------


def test_a_payment_success_without_a_transaction_status_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_payment(_response(200, status="SUCCESS", decentroTxnId="T1", data={}), "r", {})
    with pytest.raises(UpstreamProtocolError):
        parse_status(_response(200, status="SUCCESS", decentroTxnId="T1", data=None), "r", {})


def test_a_vpa_success_that_says_neither_valid_nor_invalid_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_vpa(_response(200, status="SUCCESS", decentroTxnId="V1", data={}), "r", {})


def test_a_v3_vpa_failure_is_not_valid() -> None:
    outcome = parse_vpa(_v3(200, code="E00009", data={"status": "VALID"}), "r", {})
    assert outcome.status == "FAILURE"


def test_a_message_accepted_without_any_id_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_notification(_response(200, status="SUCCESS"), "r", {})


@pytest.mark.parametrize("http_status", [500, 502])
def test_a_5xx_on_a_status_look_up_answers_the_stored_pending_marked_stale(http_status: int) -> None:
    gateway = ScriptedGateway([payment_created("TXN-8"), answer(http_status, {"status": "FAILURE"})])
    h = build(gateway)
    payload = {"amount": 10, "customer_details": {"name": "Test Payer"}}
    reference = h.service.initiate_payment(payload)["data"]["reference_id"]
    result = h.service.get_payment_status(reference)
    assert result["status"] == "PENDING" and "error" not in result
    assert result["data"]["stale"] is True and result["data"]["status_check_error"] == "UPSTREAM_UNAVAILABLE"
    assert result["data"]["transaction_id"] == "TXN-8"
    assert h.record(reference).status == "PENDING"



@pytest.mark.parametrize("parse", [parse_pan, parse_ckyc, parse_bank, parse_payment, parse_status, parse_vpa,
                                   parse_notification, parse_otp])
def test_an_answer_that_says_neither_success_nor_failure_is_a_protocol_error(parse: Any) -> None:
    # the KYC spec's FSSAI and Udyog examples: kycStatus and responseCode, but no status
    body = {"decentroTxnId": "N1", "responseCode": "S00000", "kycStatus": "SUCCESS",
            "kycResult": {"idStatus": "VALID"}, "data": {"transactionStatus": "SUCCESS", "status": "VALID", **IDENTITY}}
    with pytest.raises(UpstreamProtocolError):
        parse(GatewayResponse(200, body), "r", {"name": None, **VERIFY})


def test_a_status_refusal_with_e00009_that_is_not_not_found_is_not_payment_not_found() -> None:
    # E00009 is every validation refusal of the collections spec; only "not found" means no debit
    malformed = parse_status(_response(400, status="FAILURE", responseCode="E00009", decentroTxnId="X",
                                       message="Malformed request detected."), "r", {})
    assert (malformed.error_code, malformed.provider_code) == ("REJECTED_BY_PROVIDER", "E00009")
    unknown = parse_status(_response(200, status="FAILURE", responseCode="E00009", decentroTxnId="X",
                                     message="This transaction was not found in our system."), "r", {})
    assert unknown.error_code == "PAYMENT_NOT_FOUND"


def test_a_v3_rate_limit_answer_carries_its_snake_case_key() -> None:
    with pytest.raises(RateLimited) as raised:
        raise_for_transient_status(_v3(429, response_key="error_rate_limit_exceeded"), request_id="r")
    assert raised.value.provider_code == "error_rate_limit_exceeded"


def test_a_v3_credential_refusal_in_http_200_reaches_the_caller_as_authentication_failed() -> None:
    h = build(ScriptedGateway([_v3(200, response_key="error_unauthorized_module")]))
    with pytest.raises(AuthenticationFailed):
        h.service.verify_pan("ABCDE1234F")


def test_a_vpa_answer_whose_key_and_status_disagree_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_vpa(_response(200, status="SUCCESS", decentroTxnId="V2", responseKey="success_UPI_id_valid",
                            data={"status": "INVALID"}), "r", {})


def test_a_ckyc_result_without_its_ckyc_id_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_ckyc(_response(200, status="SUCCESS", decentroTxnId="C4",
                             data={"kycStatus": "SUCCESS", "kycResult": {"fullName": "Testa Synthetica"}}), "r", {})
