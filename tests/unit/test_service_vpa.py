"""VPA (UPI id) validation: added as one declaration, one service method and one route."""

from __future__ import annotations

import pytest
from fakes import build

from decentro_core.errors import ConsentRequired, ValidationError
from decentro_core.ports import GatewayResponse

VALID, INVALID = "charles.babbage@okhdfc", "alan.turing@oksbi"  # Decentro's own sandbox values
CONSENT = {"given": True, "text": "I agree that my UPI id is checked through Decentro.",
           "purpose": "Checking the UPI id before a collect request"}


def test_a_valid_upi_id_succeeds_with_the_holder_name_and_posts_decentros_body() -> None:
    h = build()
    result = h.service.validate_upi_handle(VALID, user_id="u-1", consent=CONSENT)
    assert (result["status"], result["data"]["upi_id_status"]) == ("SUCCESS", "VALID")
    assert result["data"]["account_holder_name"] == "Charles Babbage"
    (request,) = h.gateway.requests
    assert (request.method, request.path, request.module) == ("POST", "/v2/payments/vpa/validate", "payments")
    assert request.body == {"reference_id": result["data"]["reference_id"], "upi_id": VALID}


def test_an_unknown_upi_id_is_an_invalid_document_not_an_error() -> None:
    result = build().service.validate_upi_handle(INVALID)
    assert (result["status"], result["error"]["code"], result["data"]["upi_id_status"]) == (
        "FAILURE", "INVALID_DOCUMENT", "INVALID")


@pytest.mark.parametrize(("key", "status", "expected"), [
    ("success_UPI_id_valid", None, "SUCCESS"), ("success_UPI_id_invalid", None, "FAILURE"),
    ("success_vpa_validated", "VALID", "SUCCESS"), ("success_vpa_validated", "INVALID", "FAILURE"),
])
def test_decentros_documented_response_keys_decide_validity(key: str, status: str | None, expected: str) -> None:
    data = {"upiId": VALID, "name": "Charles Babbage", **({"status": status} if status else {})}
    answer = GatewayResponse(200, {"status": "SUCCESS", "responseKey": key, "decentroTxnId": "T1", "data": data})

    class Scripted:
        def send(self, request: object) -> GatewayResponse:
            return answer

    assert build(Scripted()).service.validate_upi_handle(VALID)["status"] == expected


def test_the_check_is_consented_audited_masked_and_cached_per_user() -> None:
    h = build()
    first = h.service.validate_upi_handle(VALID, user_id="u-1", consent=CONSENT)
    again = h.service.validate_upi_handle(VALID, user_id="u-1", consent=CONSENT)
    assert len(h.gateway.requests) == 1 and again["data"]["cached"] is True
    assert [c.operation for c in h.consents.records] == ["upi_vpa", "upi_vpa"]
    assert [(e.action, e.subject, e.outcome) for e in h.audit.events] == [
        ("upi_vpa", "c**************@okhdfc", "SUCCESS"), ("upi_vpa", "c**************@okhdfc", "CACHE_HIT")]
    assert h.record(first["data"]["reference_id"]).operation == "upi_vpa"


def test_a_malformed_upi_id_or_refused_consent_never_reaches_decentro() -> None:
    h = build()
    with pytest.raises(ValidationError) as raised:
        h.service.validate_upi_handle("not a vpa")
    assert set(raised.value.fields) == {"upi_id"} and "not a vpa" not in str(raised.value)
    with pytest.raises(ConsentRequired):
        h.service.validate_upi_handle(VALID, consent={"given": False})
    assert h.gateway.requests == []
