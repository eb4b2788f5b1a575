"""Consent: asserted by the caller for bare calls, recorded as given for explicit ones, and
refused (nothing sent, nothing recorded) when not given or without a real purpose."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fakes import NOW, Harness, aadhaar_ending, build

from decentro_core import CallContext, Consent, ConsentRequired
from decentro_core.context import ASSERTED_CONSENT_TEXT
from decentro_core.service import DEFAULT_PURPOSE

PURPOSE = "Opening a savings account with identity checks"
TEXT = "I agree that my PAN is checked with the Income Tax registry."


@pytest.fixture
def h() -> Harness:
    return build()


def test_a_bare_call_records_consent_asserted_by_the_caller_with_the_default_purpose(h: Harness) -> None:
    h.service.verify_pan("ABCDE1234F", user_id="user-7")
    [record] = h.consents.for_user("user-7")
    assert (record.operation, record.text, record.purpose) == ("pan", ASSERTED_CONSENT_TEXT, DEFAULT_PURPOSE)
    assert record.given_at == NOW
    assert h.gateway.requests[0].body["consent_purpose"] == DEFAULT_PURPOSE


def test_a_bare_call_without_a_user_records_the_consent_for_anonymous(h: Harness) -> None:
    h.service.verify_pan("ABCDE1234F", context=CallContext(client_ip="127.0.0.9", user_agent="pytest-agent"))
    [record] = h.consents.for_user("anonymous")
    assert (record.client_ip, record.user_agent) == ("127.0.0.9", "pytest-agent")


def test_an_explicit_consent_is_recorded_with_its_text_purpose_ip_and_user_agent(h: Harness) -> None:
    consent = Consent(text=TEXT, purpose=PURPOSE, client_ip="127.0.0.5", user_agent="Browser/1.0")
    h.service.verify_pan("ABCDE1234F", user_id="user-1", consent=consent)
    [record] = h.consents.for_user("user-1")
    assert (record.text, record.purpose, record.client_ip, record.user_agent) == (
        TEXT, PURPOSE, "127.0.0.5", "Browser/1.0")
    assert h.gateway.requests[0].body["consent_purpose"] == PURPOSE


def test_a_consent_given_as_a_mapping_is_accepted_and_the_context_fills_ip_and_agent(h: Harness) -> None:
    consent = {"given": True, "text": TEXT, "purpose": PURPOSE}
    context = CallContext(actor="clerk-3", client_ip="127.0.0.6", user_agent="Kiosk/2")
    h.service.fetch_ckyc("ABCDE1234A", user_id="user-2", consent=consent, context=context)
    [record] = h.consents.for_user("user-2")
    assert (record.operation, record.purpose, record.client_ip, record.user_agent) == (
        "ckyc", PURPOSE, "127.0.0.6", "Kiosk/2")
    assert h.gateway.requests[0].body["consent_purpose"] == PURPOSE


KYC_CALLS: dict[str, Callable[[Harness, dict[str, Any]], Any]] = {
    "pan": lambda h, kw: h.service.verify_pan("ABCDE1234F", **kw),
    "bank_account": lambda h, kw: h.service.verify_bank("123456789011", "SBIN0001077", **kw),
    "ckyc": lambda h, kw: h.service.fetch_ckyc("ABCDE1234A", **kw),
    "aadhaar_xml": lambda h, kw: h.service.verify_aadhaar_xml(b"<x/>", "1234", **kw),
    "aadhaar_otp_start": lambda h, kw: h.service.start_aadhaar_otp(aadhaar_ending("1234"), **kw),
    "aadhaar_otp_verify": lambda h, kw: h.service.verify_aadhaar_otp(  # started by the same user
        h.service.start_aadhaar_otp(aadhaar_ending("1234"), user_id=kw.get("user_id"))["data"]["initiation_id"],
        "123456", **kw),
}


@pytest.mark.parametrize("operation", sorted(KYC_CALLS))
def test_every_kyc_operation_records_consent_under_its_operation_name(h: Harness, operation: str) -> None:
    KYC_CALLS[operation](h, {"user_id": "user-9"})
    expected = ["aadhaar_otp_start", operation] if operation == "aadhaar_otp_verify" else [operation]
    assert [c.operation for c in h.consents.for_user("user-9")] == expected


BAD_CONSENTS = {
    "not given": Consent(text=TEXT, purpose=PURPOSE, given=False),
    "purpose of 20 characters": Consent(text=TEXT, purpose="x" * 20),
    "mapping not given": {"given": False, "text": TEXT, "purpose": PURPOSE},
    "mapping without text": {"given": True, "purpose": PURPOSE},
    "mapping with short purpose": {"given": True, "text": TEXT, "purpose": "KYC"},
}


FIRST_STEP_CALLS = sorted(set(KYC_CALLS) - {"aadhaar_otp_verify"})


@pytest.mark.parametrize("operation", FIRST_STEP_CALLS)
@pytest.mark.parametrize("label", sorted(BAD_CONSENTS))
def test_missing_consent_raises_consent_required_and_nothing_is_sent_or_recorded(
        h: Harness, operation: str, label: str) -> None:
    with pytest.raises(ConsentRequired) as raised:
        KYC_CALLS[operation](h, {"user_id": "user-5", "consent": BAD_CONSENTS[label]})
    assert raised.value.http_status == 400 and raised.value.code == "CONSENT_REQUIRED"
    assert h.gateway.requests == []
    assert h.consents.records == [] and h.records.operations == {} and h.audit.events == []


@pytest.mark.parametrize("label", sorted(BAD_CONSENTS))
def test_an_otp_check_without_consent_sends_nothing_after_the_start(h: Harness, label: str) -> None:
    initiation = h.service.start_aadhaar_otp(aadhaar_ending("1234"))["data"]["initiation_id"]
    before = (len(h.gateway.requests), len(h.consents.records), len(h.records.operations), len(h.audit.events))
    with pytest.raises(ConsentRequired):
        h.service.verify_aadhaar_otp(initiation, "123456", consent=BAD_CONSENTS[label])
    after = (len(h.gateway.requests), len(h.consents.records), len(h.records.operations), len(h.audit.events))
    assert after == before == (1, 1, 1, 1)


def test_consent_required_names_the_bad_fields_without_echoing_them(h: Harness) -> None:
    with pytest.raises(ConsentRequired) as raised:
        h.service.verify_pan("ABCDE1234F", consent={"given": False, "text": TEXT, "purpose": "short purpose"})
    assert set(raised.value.fields) == {"given", "purpose"}
    shown = str(raised.value) + repr(raised.value) + str(raised.value.to_dict())
    assert "short purpose" not in shown and TEXT not in shown and "ABCDE1234F" not in shown


def test_a_purpose_of_21_characters_is_enough(h: Harness) -> None:
    h.service.verify_pan("ABCDE1234F", consent=Consent(text=TEXT, purpose="p" * 21))
    assert h.consents.records[0].purpose == "p" * 21


def test_a_consent_that_is_not_a_mapping_raises_consent_required(h: Harness) -> None:
    with pytest.raises(ConsentRequired):
        h.service.verify_pan("ABCDE1234F", consent="yes")  # type: ignore[arg-type]
    assert h.gateway.requests == []


def test_payments_and_notifications_record_no_kyc_consent(h: Harness) -> None:
    h.service.initiate_payment({"amount": 10})
    h.service.send_sms("9876543210", "hello")
    assert h.consents.records == []


def test_a_consent_coerce_checked_is_not_checked_again_but_a_hand_built_or_replaced_one_is(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from decentro_core import context

    checked = Consent.coerce({"given": True, "text": TEXT, "purpose": PURPOSE})
    loads: list[object] = []
    real_load = context.load
    monkeypatch.setattr(context, "load", lambda schema, value: loads.append(value) or real_load(schema, value))
    assert Consent.coerce(checked) is checked and loads == []
    h.service.verify_pan("ABCDE1234F", consent=checked)
    assert loads == [] and h.consents.records[-1].purpose == PURPOSE
    for unchecked in (Consent(text=TEXT, purpose="too short"), dataclasses.replace(checked, purpose="too short")):
        with pytest.raises(ConsentRequired):
            h.service.verify_pan("ABCDE1234F", consent=unchecked)
    assert len(loads) == 2
