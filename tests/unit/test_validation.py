"""Input validation through the service: each bad field is named, nothing leaves the process,
and the error never repeats the value it refused."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fakes import Harness, aadhaar_ending, build

from decentro_core import ValidationError
from decentro_core.validation import is_valid_aadhaar, load, normalise_mobile

VALID_AADHAAR = aadhaar_ending("1234")
# For a refused number that is not personal data and whose text is ambiguous (nan, 0).
NOTHING_TO_ECHO = "\x00"
BAD_CHECK_DIGIT = VALID_AADHAAR[:-1] + str((int(VALID_AADHAAR[-1]) + 1) % 10)


def _pay(amount: Any = 10, **extra: Any) -> Callable[[Harness], Any]:
    return lambda h: h.service.initiate_payment({"amount": amount, **extra})


# (call, the field it must name, the refused value that must not be echoed)
CASES: dict[str, tuple[Callable[[Harness], Any], str, str]] = {
    "pan of wrong shape": (lambda h: h.service.verify_pan("ABCD12345Z"), "pan", "ABCD12345Z"),
    "pan with digits first": (lambda h: h.service.verify_pan("12345ABCDE"), "pan", "12345ABCDE"),
    "name with digits": (lambda h: h.service.verify_pan("ABCDE1234F", "Test3r Name9"), "name", "Test3r Name9"),
    "ifsc without the zero": (lambda h: h.service.verify_bank("123456789011", "SBIN1001077"), "ifsc", "SBIN1001077"),
    "account too short": (lambda h: h.service.verify_bank("87654321", "SBIN0001077"), "account_number", "87654321"),
    "account too long": (lambda h: h.service.verify_bank("1234567890123456789", "SBIN0001077"),
                         "account_number", "1234567890123456789"),
    "account with letters": (lambda h: h.service.verify_bank("12345ABC9011", "SBIN0001077"),
                             "account_number", "12345ABC9011"),
    "unknown validation type": (lambda h: h.service.verify_bank("123456789011", "SBIN0001077",
                                                                validation_type="instantcheck"),
                                "validation_type", "instantcheck"),
    "ckyc pan": (lambda h: h.service.fetch_ckyc("ABCDE12345"), "pan", "ABCDE12345"),
    "mobile of 9 digits": (lambda h: h.service.send_sms("987654321", "hi"), "phone", "987654321"),
    "mobile starting with 5": (lambda h: h.service.send_sms("+91 58765 43210", "hi"), "phone", "58765 43210"),
    "mobile with another country code": (lambda h: h.service.send_sms("+44 9876543210", "hi"), "phone", "+44 9876543210"),
    "empty sms": (lambda h: h.service.send_sms("9876543210", ""), "message", "9876543210"),
    "e-mail without an at sign": (lambda h: h.service.send_email("jane.example.com", "s", "b"),
                                  "email", "jane.example.com"),
    "amount zero": (_pay("0.00"), "amount", "0.00"),
    "amount negative": (_pay(-5), "amount", "-5"),
    "amount with three decimals": (_pay("10.005"), "amount", "10.005"),
    "amount not a number": (_pay("NaN"), "amount", "NaN"),
    "amount a float nan": (_pay(float("nan")), "amount", NOTHING_TO_ECHO),
    "amount infinite": (_pay("Infinity"), "amount", "Infinity"),
    "amount above the limit": (_pay("500000.01"), "amount", "500000.01"),
    "currency other than INR": (_pay(10, currency="USD"), "currency", "USD"),
    "payment method other than upi": (_pay(10, payment_method="card"), "payment_method", "card"),
    "customer phone": (_pay(10, customer_details={"phone": "12345"}), "customer_details.phone", "12345"),
    "customer e-mail": (_pay(10, customer_details={"email": "nobody-at-all"}),
                        "customer_details.email", "nobody-at-all"),
    "customer upi id": (_pay(10, customer_details={"upi_id": "no-handle"}), "customer_details.upi_id", "no-handle"),
    "purpose with symbols": (_pay(10, purpose="Order #42!"), "purpose", "Order #42!"),
    "expiry of zero minutes": (_pay(10, expiry_minutes=0), "expiry_minutes", NOTHING_TO_ECHO),
    "share code too short": (lambda h: h.service.verify_aadhaar_xml(b"<x/>", "12"), "share_code", "<x/>"),
    "share code with spaces": (lambda h: h.service.verify_aadhaar_xml(b"<x/>", "12 34"), "share_code", "12 34"),
    "empty aadhaar file": (lambda h: h.service.verify_aadhaar_xml(b"", "1234"), "content", "1234"),
    "aadhaar file mobile": (lambda h: h.service.verify_aadhaar_xml(b"<x/>", "1234", mobile="12345"),
                            "mobile", "12345"),
    "aadhaar with a bad check digit": (lambda h: h.service.start_aadhaar_otp(BAD_CHECK_DIGIT),
                                       "aadhaar_number", BAD_CHECK_DIGIT),
    "aadhaar starting with 1": (lambda h: h.service.start_aadhaar_otp("1" + VALID_AADHAAR[1:]),
                                "aadhaar_number", "1" + VALID_AADHAAR[1:]),
    "aadhaar of 11 digits": (lambda h: h.service.start_aadhaar_otp(VALID_AADHAAR[:11]),
                             "aadhaar_number", VALID_AADHAAR[:11]),
    "otp of 5 digits": (lambda h: h.service.verify_aadhaar_otp("INIT-1", "12345"), "otp", "12345"),
    "otp share code of letters": (lambda h: h.service.verify_aadhaar_otp("INIT-1", "123456", share_code="12ab"),
                                  "share_code", "12ab"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_field_raises_validation_error_naming_it_and_nothing_reaches_the_gateway(case: str) -> None:
    call, field, value = CASES[case]
    h = build()
    with pytest.raises(ValidationError) as raised:
        call(h)
    error = raised.value
    assert type(error) is ValidationError and error.http_status == 400
    assert field in error.fields and error.fields[field]
    assert h.gateway.requests == [] and h.records.operations == {} and h.consents.records == []
    shown = str(error) + repr(error) + json.dumps(error.to_dict())
    assert value not in shown


def test_an_aadhaar_file_larger_than_the_limit_is_refused_without_echoing_it() -> None:
    h = build(aadhaar_max_bytes=64)
    content = b"<OfflinePaperlessKyc>" + b"S" * 50 + b"</OfflinePaperlessKyc>"
    with pytest.raises(ValidationError) as raised:
        h.service.verify_aadhaar_xml(content, "1234")
    assert set(raised.value.fields) == {"content"}
    assert "OfflinePaperlessKyc" not in json.dumps(raised.value.to_dict()) + repr(raised.value)
    assert h.records.operations == {}


def test_an_aadhaar_file_at_the_limit_is_accepted() -> None:
    h = build(aadhaar_max_bytes=64)
    assert h.service.verify_aadhaar_xml(b"x" * 64, "1234")["status"] == "SUCCESS"


def test_every_bad_field_of_one_call_is_named_at_once() -> None:
    with pytest.raises(ValidationError) as raised:
        build().service.initiate_payment({"amount": 0, "currency": "USD", "customer_details": {"phone": "1"}})
    assert set(raised.value.fields) == {"amount", "currency", "customer_details.phone"}


@pytest.mark.parametrize("payload", [None, [1, 2], "amount=10", 10])
def test_a_payment_payload_that_is_not_a_mapping_is_a_validation_error(payload: Any) -> None:
    h = build()
    with pytest.raises(ValidationError):
        h.service.initiate_payment(payload)
    assert h.gateway.requests == []


@pytest.mark.parametrize("pan", [None, 1234567890, ""])
def test_a_missing_or_non_text_pan_is_a_validation_error(pan: Any) -> None:
    with pytest.raises(ValidationError) as raised:
        build().service.verify_pan(pan)
    assert set(raised.value.fields) == {"pan"}


@pytest.mark.parametrize("mobile", ["9876543210", "+919876543210", "+91 98765 43210", "91-98765-43210",
                                    "09876543210", "919876543210"])
def test_indian_mobile_forms_normalise_to_ten_digits(mobile: str) -> None:
    assert normalise_mobile(mobile) == "9876543210"


@pytest.mark.parametrize("mobile", ["9876543210", "+91 98765 43210", "09876543210"])
def test_an_sms_to_any_indian_form_is_sent_to_the_ten_digit_number(mobile: str) -> None:
    h = build()
    h.service.send_sms(mobile, "hello")
    assert h.gateway.requests[0].body["to"] == "9876543210"


def test_the_verhoeff_check_accepts_a_valid_number_and_rejects_each_single_digit_change() -> None:
    assert is_valid_aadhaar(VALID_AADHAAR)
    for position in range(1, 12):
        digit = int(VALID_AADHAAR[position])
        changed = VALID_AADHAAR[:position] + str((digit + 1) % 10) + VALID_AADHAAR[position + 1:]
        assert not is_valid_aadhaar(changed), changed


@pytest.mark.parametrize(("amount", "sent"), [(10, 10.0), ("10.5", 10.5), (10.25, 10.25), ("0.01", 0.01)])
def test_a_valid_amount_is_sent_to_decentro_in_rupees(amount: Any, sent: float) -> None:
    h = build()
    h.service.initiate_payment({"amount": amount})
    assert h.gateway.requests[0].body["amount"] == sent


TRAILING_NEWLINE: dict[str, Callable[[Harness], Any]] = {
    "account_number": lambda h: h.service.verify_bank("123456789011\n", "SBIN0001077"),
    "name": lambda h: h.service.verify_bank("123456789011", "SBIN0001077", "Testa Synthetica\n"),
    "otp": lambda h: h.service.verify_aadhaar_otp("INIT-1", "123456\n"),
    "customer_details.upi_id": _pay(10, customer_details={"upi_id": "charles.babbage@okhdfc\n"}),
    "purpose": _pay(10, purpose="Order 42\n"),
}


@pytest.mark.parametrize("field", sorted(TRAILING_NEWLINE))
def test_a_value_with_a_trailing_newline_is_refused_or_stripped_never_sent(field: str) -> None:
    h = build()
    try:
        TRAILING_NEWLINE[field](h)
    except ValidationError as exc:
        assert field in exc.fields
        assert h.gateway.requests == []
    else:
        assert "\\n" not in json.dumps([r.body for r in h.gateway.requests])


@pytest.mark.parametrize("amount", ["१०", "１０", "1e3", " 10 ", "10.505", True, "-0", "+10", "10.", ".5", [10], {"v": 10}])
def test_an_amount_in_anything_but_plain_ascii_rupees_is_refused(amount):
    from decentro_core.operations.payments import PaymentSchema

    with pytest.raises(ValidationError) as caught:
        load(PaymentSchema(), {"amount": amount})
    assert list(caught.value.fields) == ["amount"]


@pytest.mark.parametrize(("amount", "rupees"), [(10, "10"), (10.5, "10.5"), ("10.50", "10.50"), ("0.01", "0.01")])
def test_plain_rupee_amounts_are_read_exactly(amount, rupees):
    from decimal import Decimal

    from decentro_core.operations.payments import PaymentSchema

    assert load(PaymentSchema(), {"amount": amount})["amount"] == Decimal(rupees)


def test_loads_json_refuses_a_key_named_twice_at_any_depth():
    from decentro_core.errors import DuplicateKey
    from decentro_core.validation import loads_json

    assert loads_json('{"a": {"b": [1, {"c": 2}]}, "d": null}') == {"a": {"b": [1, {"c": 2}]}, "d": None}
    for text in ('{"a": 1, "a": 1}', '{"a": {"b": 1, "b": 2}}', '[{"x": 1}, {"y": 1, "y": 2}]'):
        with pytest.raises(DuplicateKey) as refused:
            loads_json(text)
        assert refused.value.code == "DUPLICATE_KEY" and refused.value.http_status == 400
    with pytest.raises(ValueError):
        loads_json("{not json")
