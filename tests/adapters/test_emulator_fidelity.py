"""The emulator says what Decentro's published docs and SDK specs say (issue 12), rule by rule.

Sources per rule are in docs/sandbox.md ("Fidelity"): the KYC spec of
``decentro-in/decentro-in-kyc-sdk-go``, the collections spec of
``decentro-in/decentro-in-collections-sdk-java`` and docs.decentro.tech.
"""

from __future__ import annotations

import pytest
import test_emulator_support as req

from decentro_sandbox.core import DecentroEmulator
from decentro_sandbox.wire import UNSANITIZED_CHARACTERS

TESTBED_CKYC_PATH = "/testbed/v2/kyc/ckyc/search"


@pytest.fixture
def emu() -> DecentroEmulator:
    return DecentroEmulator()


def _status(emu: DecentroEmulator, txn: str) -> tuple[int, dict]:
    return emu.handle("GET", f"/v2/payments/transaction/{txn}/status", None, None)  # type: ignore[return-value]


# 1. transaction status -------------------------------------------------------------------

def test_a_pending_payment_answers_na_strings_never_null(emu):
    txn = emu.handle("POST", req.LINK_PATH, None, req.link(30))[1]["decentroTxnId"]
    status, body = _status(emu, txn)
    assert status == 200 and body["data"] == {"transactionStatus": "PENDING", "bankReferenceNumber": "NA",
                                              "npciTxnId": "NA"}


def test_a_settled_payment_answers_its_bank_reference_and_npci_id_as_strings(emu):
    txn = emu.handle("POST", req.LINK_PATH, None, req.link(10))[1]["decentroTxnId"]
    data = _status(emu, txn)[1]["data"]
    assert data["transactionStatus"] == "SUCCESS"
    assert data["bankReferenceNumber"].isdigit() and data["npciTxnId"].startswith("NPCI")


def test_a_collect_request_answers_the_specs_data_fields_as_strings(emu):
    data = emu.handle("POST", req.COLLECTION_PATH, None, req.collect(30))[1]["data"]
    assert data["bankReferenceNumber"] == "NA" and data["npciTransactionId"] == "NA"
    assert data["transactionStatusDescription"] and data["transactionStatus"] == "PENDING"


# 2. PAN_DETAILED -------------------------------------------------------------------------

def test_pan_detailed_is_a_valid_document_type_with_its_extra_fields(emu):
    status, body = emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE1234F", document_type="PAN_DETAILED"))
    assert status == 200 and body["kycStatus"] == "SUCCESS"
    result = body["kycResult"]
    assert {"panStatus", "firstName", "lastName", "fullName", "aadhaarSeedingStatus"} <= set(result)
    assert result["panStatus"] == "VALID" and result["aadhaarSeedingStatus"] == "Y"
    assert result["fullName"] == f"{result['firstName']} {result['lastName']}"
    assert all(isinstance(value, str) for value in result.values())
    plain = DecentroEmulator().handle("POST", req.PAN_PATH, None, req.pan("ABCDE1234F"))[1]
    assert plain["kycResult"]["name"] == result["fullName"]  # one fictional person per PAN


@pytest.mark.parametrize("document_type", ["PAN-DETAILED", "PAN-Detailed", "pan_detailed", "pan"])
def test_document_types_with_a_hyphen_or_lowercase_are_refused_as_decentros_current_docs_say(emu, document_type):
    # docs.decentro.tech (business verification; validate API reference): capitals and
    # underscores only, "Only special character allowed is underscore".
    status, body = emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE1234F", document_type=document_type))
    assert (status, body["status"], body["error"]["responseCode"]) == (400, "FAILURE", "E00016")


def test_pan_detailed_keeps_the_magic_digits(emu):
    invalid = emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE0000F", document_type="PAN_DETAILED"))[1]
    assert invalid["kycResult"]["idStatus"] == "INVALID" and invalid["kycResult"]["panStatus"] == "INVALID"
    no_record = emu.handle("POST", req.PAN_PATH, None, req.pan("ABCDE0404F", document_type="PAN_DETAILED"))[1]
    assert no_record["kycStatus"] == "UNKNOWN" and no_record["error"]["responseCode"] == "E00026"


def test_an_unknown_document_type_is_e00016_with_decentros_list_and_kyc_status_unknown(emu):
    status, body = emu.handle("POST", req.PAN_PATH, None, req.pan(document_type="SOMETHING"))
    assert (status, body["status"], body["kycStatus"]) == (400, "FAILURE", "UNKNOWN")
    assert body["error"]["responseCode"] == "E00016" and "PAN, PAN_DETAILED, GSTIN" in body["error"]["message"]


@pytest.mark.parametrize("document_type", ["GSTIN", "AADHAAR", "PASSPORT"])
def test_a_type_decentro_accepts_but_the_sandbox_does_not_emulate_says_so_with_501(emu, document_type):
    status, body = emu.handle("POST", req.PAN_PATH, None, req.pan(document_type=document_type))
    assert (status, body["responseKey"]) == (501, "error_not_emulated")


def test_pan_answers_carry_decentros_ist_timestamps(emu):
    body = emu.handle("POST", req.PAN_PATH, None, req.pan())[1]
    assert body["requestTimestamp"].endswith(" IST (GMT +0530)") and body["responseTimestamp"]


# 3. consent on PAN -----------------------------------------------------------------------

@pytest.mark.parametrize("consent", [None, ""])
def test_missing_consent_on_pan_is_e00009_user_consent_cannot_be_empty(emu, consent):
    body = req.pan() if consent is None else req.pan(consent=consent)
    if consent is None:
        del body["consent"]
    status, answer = emu.handle("POST", req.PAN_PATH, None, body)
    assert (status, answer["status"], answer["kycStatus"]) == (400, "FAILURE", "UNKNOWN")
    assert answer["error"] == {"message": "User consent cannot be empty. Hint: consent (string)",
                               "responseCode": "E00009"}
    assert answer["responseKey"] != "error_invalid_consent"


def test_missing_consent_purpose_on_pan_is_e00009(emu):
    body = req.pan()
    del body["consent_purpose"]
    status, answer = emu.handle("POST", req.PAN_PATH, None, body)
    assert (status, answer["error"]["responseCode"], answer["kycStatus"]) == (400, "E00009", "UNKNOWN")
    assert answer["error"]["message"].startswith("Consent purpose cannot be empty")


# 4. CKYC ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [TESTBED_CKYC_PATH, req.CKYC_PATH])
def test_ckyc_answers_decentros_sandbox_shape_on_both_paths(emu, path):
    status, body = emu.handle("POST", path, None, req.ckyc("ABCDE1234A"))
    assert (status, body["responseKey"]) == (200, "success_ckyc_search")
    data = body["data"]
    assert data["message"] == "KYC Details for CKYC retrieved successfully." and "message" not in body
    result = data["kycResult"]
    assert result["age"] == "25" and isinstance(result["age"], str)
    assert result["identityDetails"] == {"identity": [{"status": "03", "type": "PAN"}]}
    assert len(result["ckycId"]) == 14 and result["photo"]


def test_ckyc_age_is_a_string_for_any_pan_and_the_testbed_keeps_magic_digits(emu):
    age = emu.handle("POST", TESTBED_CKYC_PATH, None, req.ckyc("ABCDE5678B"))[1]["data"]["kycResult"]["age"]
    assert isinstance(age, str) and age.isdigit()
    assert emu.handle("POST", TESTBED_CKYC_PATH, None, req.ckyc("ABCDE0404A"))[1]["responseCode"] == "E00026"


def test_a_reference_used_on_the_testbed_is_used_up_on_every_path(emu):
    body = req.ckyc()
    assert emu.handle("POST", TESTBED_CKYC_PATH, None, body)[0] == 200
    assert emu.handle("POST", req.CKYC_PATH, None, body)[1]["responseCode"] == "E00019"


# 6. payment purpose ----------------------------------------------------------------------

@pytest.mark.parametrize("purpose", ["Order-123 payment", "Order 42", "Invoice/2024, part_1"])
def test_purposes_without_decentros_rejected_characters_are_accepted(emu, purpose):
    assert emu.handle("POST", req.LINK_PATH, None, req.link(purpose_message=purpose))[0] == 200
    assert emu.handle("POST", req.COLLECTION_PATH, None, req.collect(purpose_message=purpose))[0] == 200


@pytest.mark.parametrize("character", sorted(UNSANITIZED_CHARACTERS))
def test_each_character_decentro_names_is_refused_as_unsanitized(emu, character):
    status, body = emu.handle("POST", req.LINK_PATH, None, req.link(purpose_message=f"Order {character} 42"))
    assert (status, body["responseCode"], body["responseKey"]) == (400, "E00009", "error_unsanitized_values")
    assert body["message"].startswith("Unsanitized values detected for key(s): purpose_message.")


def test_the_rejected_characters_are_exactly_decentros_list():
    assert UNSANITIZED_CHARACTERS == set(". @ # $ % ^ & * ! ; : ' \" ~ ` ? = + ) (".split(" "))


def test_a_purpose_over_50_characters_is_refused_with_decentros_key(emu):
    status, body = emu.handle("POST", req.LINK_PATH, None, req.link(purpose_message="x" * 51))
    assert (status, body["responseKey"]) == (400, "error_invalid_purpose_message_length")


# 8. VPA ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("vpa", "key", "state"), [("charles.babbage@okhdfc", "success_UPI_id_valid", "VALID"),
                                                   ("alan.turing@oksbi", "success_UPI_id_invalid", "INVALID")])
def test_vpa_validation_answers_decentros_response_keys(emu, vpa, key, state):
    status, body = emu.handle("POST", req.VPA_PATH, None, req.vpa(vpa))
    assert (status, body["status"], body["responseKey"], body["data"]["status"]) == (200, "SUCCESS", key, state)


@pytest.mark.parametrize(("override", "key"), [({"upi_id": ""}, "error_missing_UPI_id"),
                                               ({"upi_id": "not-a-vpa"}, "error_invalid_UPI_id_format"),
                                               ({"type": "deep"}, "error_invalid_type"),
                                               ({"reference_id": ""}, "error_missing_reference_id")])
def test_vpa_refusals_use_decentros_documented_keys(emu, override, key):
    status, body = emu.handle("POST", req.VPA_PATH, None, {**req.vpa("charles.babbage@okhdfc"), **override})
    assert (status, body["responseCode"], body["responseKey"]) == (400, "E00009", key)


# refunds (collections spec) ----------------------------------------------------------------

def test_a_successful_payment_can_be_refunded_once(emu):
    txn = emu.handle("POST", req.LINK_PATH, None, req.link(10))[1]["decentroTxnId"]
    status, body = emu.handle("POST", req.REFUND_PATH, None, req.refund(transaction_id=txn))
    assert status == 200 and body["data"]["transactionStatus"] == "PENDING" and body["data"]["transactionId"]
    again = emu.handle("POST", req.REFUND_PATH, None, req.refund(transaction_id=txn))[1]
    assert again["responseCode"] == "E00009" and again["message"].startswith("Refund has already been initiated")


def test_a_refund_by_bank_reference_finds_the_payment(emu):
    txn = emu.handle("POST", req.LINK_PATH, None, req.link(10))[1]["decentroTxnId"]
    reference = _status(emu, txn)[1]["data"]["bankReferenceNumber"]
    assert emu.handle("POST", req.REFUND_PATH, None, req.refund(bank_reference_number=reference))[0] == 200


@pytest.mark.parametrize(("amount", "message"), [(30, "Given transaction is found in PENDING state"),
                                                 (20, "Given transaction is not in SUCCESS state"),
                                                 (None, "No such transaction found at our end")])
def test_refunds_decentro_refuses(emu, amount, message):
    txn = "NOPE" if amount is None else emu.handle("POST", req.LINK_PATH, None, req.link(amount))[1]["decentroTxnId"]
    status, body = emu.handle("POST", req.REFUND_PATH, None, req.refund(transaction_id=txn))
    assert (status, body["status"], body["responseCode"]) == (400, "FAILURE", "E00009")
    assert body["message"].startswith(message)
