"""Operation records and audit: written ahead of the call, sealed, masked, chained."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from fakes import NOW, Harness, InspectingGateway, ScriptedGateway, answer, build, pan_found

from decentro_core import CallContext
from decentro_core.errors import UpstreamProtocolError, UpstreamUnavailable
from decentro_core.memory import MemoryRecordStore

PAN = "ABCDE1234F"
ACCOUNT = "123456789011"
NAME = "Testa Synthetica"
PHONE = "9876543210"
EMAIL = "payer.person@example.com"


def _stored_strings(h: Harness) -> list[str]:
    """Every string the record store and audit sink hold (what a database would keep)."""
    values = [v for r in h.records.operations.values() for v in dataclasses.astuple(r)]
    values += [v for e in h.audit.events for v in dataclasses.astuple(e)]
    return [v for v in values if isinstance(v, str)]


def test_a_pending_record_exists_before_the_gateway_is_called() -> None:
    records = MemoryRecordStore()
    gateway = InspectingGateway(records)
    h = build(gateway, records=records)
    h.service.verify_pan(PAN, user_id="user-1")
    [seen] = gateway.seen
    assert seen is not None
    assert (seen.status, seen.operation, seen.user_id, seen.created_at) == ("PENDING", "pan", "user-1", NOW)
    assert seen.operation_id is None and seen.sealed_result is None
    assert h.opened(seen.sealed_request) == {"pan": PAN, "name": None, "detailed": False}


def test_after_the_call_the_record_has_the_final_status_and_the_operation_id() -> None:
    h = build()
    result = h.service.verify_pan(PAN, NAME)
    record = h.record(result["data"]["reference_id"])
    assert (record.status, record.operation_id) == ("SUCCESS", result["data"]["operation_id"])
    assert h.opened(record.sealed_request) == {"pan": PAN, "name": NAME, "detailed": False}
    assert h.opened(record.sealed_result) == result


def test_a_business_failure_is_recorded_as_failure_with_its_envelope() -> None:
    h = build()
    result = h.service.verify_pan("ABCDE0000F")
    record = h.record(result["data"]["reference_id"])
    assert record.status == "FAILURE"
    assert h.opened(record.sealed_result)["error"]["code"] == "INVALID_DOCUMENT"


def test_stored_records_and_audit_events_hold_no_clear_personal_data() -> None:
    h = build()
    h.service.verify_pan(PAN, NAME, user_id="user-1")
    h.service.verify_bank(ACCOUNT, "SBIN0001077", NAME)
    h.service.initiate_payment({"amount": 10, "customer_details": {
        "name": NAME, "email": EMAIL, "phone": PHONE, "upi_id": "charles.babbage@okhdfc"}})
    h.service.send_sms(PHONE, "hello")
    h.service.send_email(EMAIL, "Subject", "Body")
    stored = " ".join(_stored_strings(h))
    assert len(h.records.operations) == 5
    for secret in (PAN, ACCOUNT, NAME, PHONE, EMAIL, "charles.babbage"):
        assert secret not in stored
    payment = next(r for r in h.records.operations.values() if r.operation == "upi_payment")
    assert h.opened(payment.sealed_request)["customer_details"]["name"] == NAME


def test_audit_events_name_documents_only_masked_and_the_chain_verifies() -> None:
    h = build()
    h.service.verify_pan(PAN, user_id="user-1")
    h.service.verify_bank(ACCOUNT, "SBIN0001077", context=CallContext(actor="clerk-7"))
    h.service.verify_pan("ABCDE0000F")
    h.service.send_sms(PHONE, "hello")
    h.service.send_email(EMAIL, "Subject", "Body")
    events = [(e.actor, e.action, e.subject, e.outcome) for e in h.audit.events]
    assert events == [
        ("user:user-1", "pan", "ABCDE****F", "SUCCESS"),
        ("clerk-7", "bank_account", "********9011", "SUCCESS"),
        ("system", "pan", "ABCDE****F", "INVALID_DOCUMENT"),
        ("system", "sms", "******3210", "SUCCESS"),
        ("system", "email", "p***********@example.com", "SUCCESS"),
    ]
    assert all(e.occurred_at == NOW and e.reference_id and e.operation_id for e in h.audit.events)
    verification = h.audit.verify()
    assert verification.ok and verification.checked == 5


def test_an_aadhaar_file_is_sealed_in_its_record_and_audited_by_last_four_digits() -> None:
    h = build()
    content = b"<OfflinePaperlessKyc referenceId='synthetic'/>"
    result = h.service.verify_aadhaar_xml(content, "4321")
    record = h.record(result["data"]["reference_id"])
    assert "4321" not in str(h.opened(record.sealed_request))  # the share code is never stored
    assert h.audit.events[-1].subject == "********0000"
    assert "OfflinePaperlessKyc" not in " ".join(_stored_strings(h))


def test_each_abandoned_read_attempt_leaves_a_retried_record_for_its_reference() -> None:
    busy = answer(503, {"status": "FAILURE"})
    gateway = ScriptedGateway([busy, busy, pan_found(txn="TXN-3")])
    h = build(gateway)
    result = h.service.verify_pan(PAN)
    assert [r.reference_id for r in gateway.requests] == ["ref-0001", "ref-0002", "ref-0003"]
    assert [r.body["reference_id"] for r in gateway.requests] == ["ref-0001", "ref-0002", "ref-0003"]
    statuses = {ref: r.status for ref, r in h.records.operations.items()}
    assert statuses == {"ref-0001": "RETRIED", "ref-0002": "RETRIED", "ref-0003": "SUCCESS"}
    assert result["data"]["reference_id"] == "ref-0003"
    assert h.record("ref-0003").operation_id == "TXN-3"
    expected = {"pan": PAN, "name": None, "detailed": False}
    assert all(h.opened(r.sealed_request) == expected for r in h.records.operations.values())


def test_a_read_that_fails_for_good_records_failure_with_the_error_code_and_audits_it() -> None:
    gateway = ScriptedGateway([answer(500, {})])
    h = build(gateway, max_retries=1)
    with pytest.raises(UpstreamUnavailable):
        h.service.verify_pan(PAN)
    assert h.record("ref-0001").status == "RETRIED"
    assert h.record("ref-0002").status == "FAILURE"
    assert h.opened(h.record("ref-0002").sealed_result) == {"error": "UPSTREAM_UNAVAILABLE", "http_status": 503}
    assert [(e.outcome, e.reference_id) for e in h.audit.events] == [("UPSTREAM_UNAVAILABLE", "ref-0002")]


def test_a_read_answer_without_the_documented_fields_raises_a_protocol_error_without_retrying() -> None:
    gateway = ScriptedGateway([answer(200, {"status": "SUCCESS", "decentroTxnId": "T"})])
    h = build(gateway, max_retries=2)
    with pytest.raises(UpstreamProtocolError) as raised:
        h.service.verify_pan(PAN)
    assert raised.value.http_status == 502
    assert [r.reference_id for r in gateway.requests] == ["ref-0001"]
    assert h.record("ref-0001").status == "FAILURE"


def test_a_read_answered_with_a_garbled_body_is_retried_with_a_fresh_reference() -> None:
    pan_ok = {"status": "SUCCESS", "kycStatus": "SUCCESS", "decentroTxnId": "T",
              "kycResult": {"idNumber": PAN, "idStatus": "VALID", "name": "Test Person"}}
    gateway = ScriptedGateway([UpstreamProtocolError("not JSON", retryable=True), answer(200, pan_ok)])
    h = build(gateway)
    assert h.service.verify_pan(PAN)["status"] == "SUCCESS"
    assert [r.reference_id for r in gateway.requests] == ["ref-0001", "ref-0002"]


def test_a_write_answered_with_a_garbled_body_is_pending_and_never_resent() -> None:
    gateway = ScriptedGateway([UpstreamProtocolError("not JSON"), answer(200, {})])
    h = build(gateway)
    result = h.service.send_sms(PHONE, "hello")
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "OUTCOME_UNKNOWN")
    assert len(gateway.requests) == 1


def test_log_lines_carry_masked_subjects_only(caplog: pytest.LogCaptureFixture) -> None:
    h = build()
    with caplog.at_level(logging.DEBUG, logger="decentro"):
        h.service.verify_pan(PAN, NAME)
        h.service.verify_bank(ACCOUNT, "SBIN0001077")
        h.service.send_sms(PHONE, "hello")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "ABCDE****F" in text
    for secret in (PAN, ACCOUNT, NAME, PHONE):
        assert secret not in text
