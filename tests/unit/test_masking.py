"""Masking helpers: what logs, audit subjects and messages may show of personal data."""

from __future__ import annotations

import pytest

from decentro_core.masking import mask_aadhaar, mask_account, mask_email, mask_name, mask_pan, mask_phone, mask_upi


@pytest.mark.parametrize(("pan", "masked"), [
    ("ABCDE1234F", "ABCDE****F"),
    (" abcde1234f ", "ABCDE****F"),
    ("ABCDE123", "********"),
    ("", ""),
])
def test_mask_pan_keeps_the_first_five_letters_and_the_check_letter(pan: str, masked: str) -> None:
    assert mask_pan(pan) == masked


@pytest.mark.parametrize(("number", "masked"), [
    ("234567890123", "********0123"),
    ("2345 6789 0123", "********0123"),
    ("2345-6789-0123", "********0123"),
])
def test_mask_aadhaar_keeps_only_the_last_four_digits(number: str, masked: str) -> None:
    assert mask_aadhaar(number) == masked


@pytest.mark.parametrize(("number", "masked"), [
    ("123456789011", "********9011"),
    ("987654321", "*****4321"),
    ("1234", "****"),
    ("12", "****"),
])
def test_mask_account_keeps_only_the_last_four_digits_and_hides_short_numbers_entirely(
        number: str, masked: str) -> None:
    assert mask_account(number) == masked


@pytest.mark.parametrize("phone", ["9876543210", "+91 98765 43210", "+919876543210", "09876543210"])
def test_mask_phone_drops_the_country_code_and_keeps_the_last_four(phone: str) -> None:
    assert mask_phone(phone) == "******3210"


@pytest.mark.parametrize(("email", "masked"), [
    ("jane.doe@example.com", "j*******@example.com"),
    ("a@example.com", "a*@example.com"),
    ("not-an-address", "**************"),
])
def test_mask_email_keeps_the_first_letter_and_the_domain(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_mask_upi_hides_the_handle_owner_but_keeps_the_bank_handle() -> None:
    assert mask_upi("charles.babbage@okhdfc") == "c**************@okhdfc"


@pytest.mark.parametrize(("name", "masked"), [
    ("Testa Synthetica", "T**** S*********"),
    ("  Asha   Kumari  Verma ", "A*** K***** V****"),
    ("X", "*"),
])
def test_mask_name_keeps_initials_only(name: str, masked: str) -> None:
    assert mask_name(name) == masked


@pytest.mark.parametrize(("mask", "value"), [
    (mask_pan, "ABCDE1234F"), (mask_aadhaar, "234567890123"), (mask_account, "123456789011"),
    (mask_phone, "9876543210"), (mask_email, "testa.synthetica@example.com"), (mask_name, "Testa Synthetica"),
])
def test_no_mask_returns_its_input(mask: object, value: str) -> None:
    masked = mask(value)  # type: ignore[operator]
    assert masked != value and len(masked) >= 4


def test_a_one_letter_name_part_is_hidden_entirely():
    from decentro_core.masking import mask_name

    assert mask_name("X") == "*"
    assert mask_name("A Verma") == "* V****"
