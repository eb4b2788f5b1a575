"""The KYC routes: outcomes, upstream faults, validation and consent."""

from __future__ import annotations

import base64
import io
import json

import pytest
from flask_helpers import ACCOUNT, CONSENT, IFSC, NAME, kyc


def test_a_valid_pan_answers_200_success_with_the_registry_data(client, service):
    response = client.post("/api/kyc/pan", json=kyc(name=NAME, user_id="user-7"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "SUCCESS"
    assert body["data"]["pan_status"] == "VALID"
    assert body["data"]["reference_id"]
    assert [c.user_id for c in service.ports.consents.records] == ["user-7"]


@pytest.mark.parametrize(
    ("pan", "code"), [("ABCDE0000F", "INVALID_DOCUMENT"), ("ABCDE0404F", "NO_RECORD")]
)
def test_an_invalid_or_unknown_pan_is_a_business_failure_not_an_http_error(client, pan, code):
    response = client.post("/api/kyc/pan", json=kyc(pan))
    assert response.status_code == 200
    assert (response.get_json()["status"], response.get_json()["error"]["code"]) == ("FAILURE", code)


@pytest.mark.parametrize(
    ("pan", "status", "code"),
    [("ABCDE0500F", 503, "UPSTREAM_UNAVAILABLE"), ("ABCDE0503F", 503, "UPSTREAM_UNAVAILABLE"),
     ("ABCDE0408F", 504, "UPSTREAM_TIMEOUT")],
)
def test_upstream_faults_map_to_5xx_with_a_code(client, pan, status, code):
    response = client.post("/api/kyc/pan", json=kyc(pan))
    assert response.status_code == status
    body = response.get_json()
    assert (body["status"], body["error"]["code"], set(body["error"])) == ("FAILURE", code, {"code", "message"})


def test_bank_account_success_and_failure(client):
    good = client.post("/api/kyc/bank", json={"account_number": ACCOUNT, "ifsc": IFSC, "consent": CONSENT})
    bad = client.post("/api/kyc/bank", json={"account_number": "123456780000", "ifsc": IFSC, "consent": CONSENT})
    assert (good.status_code, good.get_json()["status"]) == (200, "SUCCESS")
    assert (bad.status_code, bad.get_json()["status"]) == (200, "FAILURE")


def test_upi_id_validation_is_a_consented_route(client):
    good = client.post("/api/upi/vpa", json={"upi_id": "charles.babbage@okhdfc", "consent": CONSENT})
    bad = client.post("/api/upi/vpa", json={"upi_id": "alan.turing@oksbi", "consent": CONSENT})
    unconsented = client.post("/api/upi/vpa", json={"upi_id": "charles.babbage@okhdfc"})
    malformed = client.post("/api/upi/vpa", json={"upi_id": "no at sign", "consent": CONSENT})
    assert (good.status_code, good.get_json()["data"]["upi_id_status"]) == (200, "VALID")
    assert (bad.status_code, bad.get_json()["error"]["code"]) == (200, "INVALID_DOCUMENT")
    assert (unconsented.status_code, unconsented.get_json()["error"]["code"]) == (400, "CONSENT_REQUIRED")
    assert (malformed.status_code, list(malformed.get_json()["error"]["fields"])) == (400, ["upi_id"])


def test_ckyc_search_of_the_sandbox_pan_succeeds(client):
    response = client.post("/api/kyc/ckyc", json=kyc("ABCDE1234A"))
    assert (response.status_code, response.get_json()["status"]) == (200, "SUCCESS")


def test_aadhaar_xml_is_accepted_as_text_base64_or_multipart_upload(client):
    xml = "<OfflinePaperlessKyc referenceId='x'/>"
    as_text = client.post("/api/kyc/aadhaar-xml", json={"xml": xml, "share_code": "1234", "consent": CONSENT})
    as_b64 = client.post("/api/kyc/aadhaar-xml", json={
        "xml_base64": base64.b64encode(xml.encode()).decode(), "share_code": "1234", "consent": CONSENT})
    upload = client.post("/api/kyc/aadhaar-xml", content_type="multipart/form-data", data={
        "file": (io.BytesIO(xml.encode()), "offline.xml"), "share_code": "1234", "consent": json.dumps(CONSENT)})
    assert [r.status_code for r in (as_text, as_b64, upload)] == [200, 200, 200]
    assert {r.get_json()["status"] for r in (as_text, as_b64, upload)} == {"SUCCESS"}


def test_aadhaar_xml_with_a_wrong_share_code_is_a_business_failure(client):
    response = client.post("/api/kyc/aadhaar-xml", json={"xml": "<x/>", "share_code": "0000", "consent": CONSENT})
    assert response.status_code == 200
    assert response.get_json()["error"]["code"] == "AADHAAR_SHARE_CODE_WRONG"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"xml_base64": "***not base64***", "share_code": "1234"}, "xml_base64"),
     ({"share_code": "1234"}, "xml"),
     ({"xml": "<x/>", "zip_base64": "eA==", "share_code": "1234"}, "xml"),
     ({"file": "text pretending to be an upload", "share_code": "1234"}, "file")],
)
def test_aadhaar_xml_needs_exactly_one_readable_document(client, body, field):
    response = client.post("/api/kyc/aadhaar-xml", json={**body, "consent": CONSENT})
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]


def test_aadhaar_otp_flow_starts_then_verifies(client):
    start = client.post("/api/kyc/aadhaar/otp", json={"aadhaar_number": "234567890124", "consent": CONSENT})
    assert (start.status_code, start.get_json()["status"]) == (200, "SUCCESS")
    initiation = start.get_json()["data"]["initiation_id"]
    verify = client.post("/api/kyc/aadhaar/otp/verify",
                         json={"initiation_id": initiation, "otp": "123456", "consent": CONSENT})
    assert (verify.status_code, verify.get_json()["status"]) == (200, "SUCCESS")
    wrong = client.post("/api/kyc/aadhaar/otp/verify",
                        json={"initiation_id": initiation, "otp": "000000", "consent": CONSENT})
    assert wrong.status_code == 422


def test_bad_fields_answer_400_with_field_errors_and_nothing_reaches_decentro(client, service):
    response = client.post("/api/kyc/bank", json={"account_number": 12, "consent": CONSENT, "colour": "blue"})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert {"account_number", "ifsc", "colour"} <= set(error["fields"])
    assert service.ports.gateway.requests == []


def test_a_malformed_pan_is_refused_by_the_core_with_its_field(client, service):
    response = client.post("/api/kyc/pan", json=kyc("NOT-A-PAN"))
    assert (response.status_code, list(response.get_json()["error"]["fields"])) == (400, ["pan"])
    assert service.ports.gateway.requests == []


def test_a_body_that_is_not_json_answers_400(client):
    response = client.post("/api/kyc/pan", data="pan=ABCDE1234F", content_type="text/plain")
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    "consent",
    [None, False, {"given": False, "text": CONSENT["text"], "purpose": CONSENT["purpose"]},
     {"given": "yes", "text": CONSENT["text"], "purpose": CONSENT["purpose"]},
     {"given": True, "purpose": CONSENT["purpose"]}, {"given": True, "text": "ok", "purpose": "short"}],
)
def test_missing_or_false_consent_answers_400_consent_required_and_calls_nothing(client, service, consent):
    body = {"pan": "ABCDE1234F"} if consent is None else {"pan": "ABCDE1234F", "consent": consent}
    response = client.post("/api/kyc/pan", json=body)
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "CONSENT_REQUIRED")
    assert service.ports.gateway.requests == []
    assert service.ports.consents.records == []


def test_the_consent_record_keeps_the_client_address_and_user_agent(client, service):
    client.post("/api/kyc/pan", json=kyc(), headers={"User-Agent": "test-browser/1.0"},
                environ_base={"REMOTE_ADDR": "198.51.100.4"})
    (record,) = service.ports.consents.records
    assert (record.client_ip, record.user_agent) == ("198.51.100.4", "test-browser/1.0")
    assert record.text == CONSENT["text"]


def test_the_identity_callable_names_the_user_and_the_body_cannot_override_it(make_app):
    app = make_app(identity=lambda: "signed-in-user")
    response = app.test_client().post("/api/kyc/pan", json=kyc(user_id="someone-else"))
    assert response.status_code == 200
    assert [c.user_id for c in app.extensions["decentro"].service.ports.consents.records] == ["signed-in-user"]


def test_without_a_signed_in_user_the_identity_callable_makes_kyc_401(make_app):
    app = make_app(identity=lambda: None)
    response = app.test_client().post("/api/kyc/pan", json=kyc())
    assert (response.status_code, response.get_json()["error"]["code"]) == (401, "UNAUTHENTICATED")
    assert app.extensions["decentro"].service.ports.gateway.requests == []
