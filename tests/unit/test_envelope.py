"""The envelope and the rules shared by every Decentro answer (classify, parsers)."""

from __future__ import annotations

import json

import pytest

from decentro_core.envelope import (
    Outcome,
    classify,
    failure,
    is_success,
    names_match,
    operation_id_of,
    provider_code_of,
    to_envelope,
)
from decentro_core.errors import AuthenticationFailed, DuplicateReference, UpstreamProtocolError
from decentro_core.operations.kyc import parse_bank, parse_pan
from decentro_core.operations.payments import parse_payment
from decentro_core.ports import GatewayResponse

LEAKY_MESSAGE = "Testa Synthetica with PAN ABCDE1234F is not allowed"


def _response(http_status: int = 200, /, **body: object) -> GatewayResponse:
    return GatewayResponse(status_code=http_status, body=body)


def test_a_success_envelope_has_status_and_data_with_both_ids_and_no_error() -> None:
    envelope = to_envelope(Outcome("SUCCESS", "TXN-1", {"pan_status": "VALID"}), reference_id="ref-1")
    assert envelope == {"status": "SUCCESS",
                        "data": {"operation_id": "TXN-1", "reference_id": "ref-1", "pan_status": "VALID"}}


def test_a_failure_envelope_carries_our_code_and_message_and_decentros_code() -> None:
    envelope = to_envelope(failure("NO_RECORD", operation_id="TXN-2", provider_code="E00026"), reference_id="r")
    assert envelope["status"] == "FAILURE"
    assert envelope["error"] == {"code": "NO_RECORD", "message": "No record was found for this document.",
                                 "provider_code": "E00026"}


def test_an_unknown_failure_code_gets_a_generic_message_and_a_pending_outcome_no_error() -> None:
    assert to_envelope(failure("SOMETHING_NEW"), reference_id="r")["error"]["message"] == "The operation failed."
    assert "error" not in to_envelope(Outcome("PENDING"), reference_id="r")


def test_extra_fields_are_merged_into_data() -> None:
    envelope = to_envelope(Outcome("SUCCESS", "T"), reference_id="r", extra={"cached": True})
    assert envelope["data"]["cached"] is True


@pytest.mark.parametrize("response", [
    _response(401, message=LEAKY_MESSAGE),
    _response(403, message=LEAKY_MESSAGE),
    _response(200, responseKey="error_unauthorized_module", message=LEAKY_MESSAGE),
    _response(400, responseKey="error_module_credits_exhausted", message=LEAKY_MESSAGE),
])
def test_refused_credentials_raise_authentication_failed_without_copying_the_message(
        response: GatewayResponse) -> None:
    with pytest.raises(AuthenticationFailed) as raised:
        classify(response, request_id="ref-1")
    shown = str(raised.value) + repr(raised.value) + json.dumps(raised.value.to_dict())
    assert "ABCDE1234F" not in shown and "Testa" not in shown
    assert raised.value.request_id == "ref-1"


@pytest.mark.parametrize("response", [
    _response(400, responseCode="E00019", message=LEAKY_MESSAGE),
    _response(400, responseKey="error_duplicate_reference_id"),
    _response(400, error={"responseCode": "E00019", "message": LEAKY_MESSAGE}),
])
def test_a_reused_reference_raises_duplicate_reference(response: GatewayResponse) -> None:
    with pytest.raises(DuplicateReference) as raised:
        classify(response, request_id="ref-1")
    assert raised.value.http_status == 409 and "ABCDE1234F" not in str(raised.value)


def test_no_record_in_the_nested_error_is_a_no_record_failure() -> None:
    outcome = classify(_response(200, decentroTxnId="T", status="SUCCESS",
                                 error={"responseCode": "E00026", "message": "No records"}), request_id="r")
    assert outcome == failure("NO_RECORD", operation_id="T", provider_code="E00026")


def test_any_other_4xx_is_rejected_by_provider_with_decentros_code() -> None:
    outcome = classify(_response(400, decentroTxnId="T", status="FAILURE", responseCode="E00009",
                                 message=LEAKY_MESSAGE), request_id="r")
    assert outcome is not None
    assert (outcome.status, outcome.error_code, outcome.provider_code) == ("FAILURE", "REJECTED_BY_PROVIDER", "E00009")
    assert LEAKY_MESSAGE not in json.dumps(to_envelope(outcome, reference_id="r"))


def test_a_redirect_is_a_protocol_error_and_a_2xx_is_left_to_the_parser() -> None:
    with pytest.raises(UpstreamProtocolError):
        classify(_response(302), request_id="r")
    assert classify(_response(200, status="SUCCESS"), request_id="r") is None


@pytest.mark.parametrize(("body", "code"), [
    ({"error": {"responseCode": "E00026"}, "responseCode": "S00000"}, "E00026"),
    ({"responseKey": "error_invalid_otp", "responseCode": "E00009"}, "error_invalid_otp"),
    ({"responseKey": "success_ckyc_search", "responseCode": "S00000"}, None),
    ({}, None),
])
def test_provider_code_prefers_the_nested_error_and_ignores_success_codes(body: dict[str, object],
                                                                          code: str | None) -> None:
    assert provider_code_of(body) == code


def test_operation_id_is_decentros_transaction_id_in_either_spelling() -> None:
    assert operation_id_of({"decentroTxnId": "A1"}) == "A1"
    assert operation_id_of({"decentro_txn_id": "B2"}) == "B2"
    assert operation_id_of({}) is None


def test_success_is_read_in_upper_or_lower_case() -> None:
    assert is_success({"status": "success"}) and is_success({"status": "SUCCESS"})
    assert not is_success({"status": "failure"}) and not is_success({})


@pytest.mark.parametrize(("given", "registered", "match"), [
    ("testa synthetica", "TESTA SYNTHETICA", True),
    ("Synthetica  Testa", "Testa Synthetica", True),
    ("T. Synthetica", "T Synthetica", True),
    ("Testa Synthetic", "Testa Synthetica", False),
    (None, "Testa Synthetica", None),
    ("Testa", "", None),
])
def test_names_match_ignores_case_spacing_order_and_dots(given: str | None, registered: str | None,
                                                         match: bool | None) -> None:
    assert names_match(given, registered) is match


@pytest.mark.parametrize(("status", "envelope_status", "code"), [
    ("SUCCESS", "SUCCESS", None), ("FAILED", "FAILURE", "PAYMENT_FAILED"),
    ("EXPIRED", "FAILURE", "PAYMENT_EXPIRED"), ("INITIATED", "PENDING", None), ("SOMETHING_NEW", "PENDING", None),
])
def test_payment_statuses_map_to_the_envelope_status(status: str, envelope_status: str, code: str | None) -> None:
    outcome = parse_payment(_response(200, status="SUCCESS", decentroTxnId="T",
                                      data={"transactionStatus": status}), "r", {})
    assert (outcome.status, outcome.error_code) == (envelope_status, code)


def test_a_pan_answer_without_kyc_result_is_a_protocol_error() -> None:
    with pytest.raises(UpstreamProtocolError):
        parse_pan(_response(200, status="SUCCESS"), "r", {"name": None})


def test_a_lower_case_banking_failure_is_an_invalid_document_with_the_provider_message() -> None:
    outcome = parse_bank(_response(200, status="failure", accountStatus="invalid", decentroTxnId="T",
                                   providerMessage="NPCIERROR:INVALID ACCOUNT"), "r", {"name": None})
    assert (outcome.status, outcome.error_code) == ("FAILURE", "INVALID_DOCUMENT")
    assert outcome.fields["provider_message"] == "NPCIERROR:INVALID ACCOUNT"
