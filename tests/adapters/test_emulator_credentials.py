"""Credential refusals with Decentro's documented keys, and the two unconfirmed options."""

from __future__ import annotations

import test_emulator_support as req

from decentro_sandbox.core import Credentials, DecentroEmulator

HEADERS = {"client_id": "cid", "client_secret": "csecret", "module_secret": "msecret"}
PAYMENT_HEADERS = {**HEADERS, "provider_secret": "psecret"}


def _emulator(**options: object) -> DecentroEmulator:
    creds = Credentials.same_for_every_module(client_id="cid", client_secret="csecret", module_secret="msecret",
                                              provider_secret="psecret", **options)
    return DecentroEmulator(credentials=creds)


def test_an_expired_module_answers_error_module_access_expired_and_keeps_the_reference():
    emu = _emulator(expired_modules=frozenset({"kyc"}))
    body = req.pan()
    status, answer = emu.handle("POST", req.PAN_PATH, HEADERS, body)
    assert (status, answer["status"], answer["responseKey"]) == (401, "FAILURE", "error_module_access_expired")
    assert emu.handle("POST", req.LINK_PATH, PAYMENT_HEADERS, req.link())[0] == 200  # other modules unaffected
    assert DecentroEmulator().handle("POST", req.PAN_PATH, None, body)[0] == 200


def test_a_wrong_or_missing_provider_secret_is_unauthorized_provider():
    emu = _emulator()
    wrong = emu.handle("POST", req.LINK_PATH, {**HEADERS, "provider_secret": "nope"}, req.link())
    missing = emu.handle("POST", req.LINK_PATH, HEADERS, req.link())
    assert [(s, b["responseKey"]) for s, b in (wrong, missing)] == [(401, "unauthorized_provider")] * 2


def test_kyc_without_module_secret_is_refused_unless_the_sandbox_allows_it():
    without = {k: v for k, v in HEADERS.items() if k != "module_secret"}
    assert _emulator().handle("POST", req.PAN_PATH, without, req.pan())[1]["responseKey"] == (
        "error_empty_module_secret")
    relaxed = _emulator(optional_module_secret=frozenset({"kyc"}))
    assert relaxed.handle("POST", req.PAN_PATH, without, req.pan())[0] == 200
    assert relaxed.handle("POST", req.PAN_PATH, {**HEADERS, "module_secret": "wrong"}, req.pan())[1][
        "responseKey"] == "error_unauthorized_module"  # a secret that is sent must still be right
    assert relaxed.handle("POST", req.BANK_PATH, without, req.bank())[0] == 401  # only the named modules


def test_validate_account_requires_a_provider_secret_only_when_configured():
    plain = _emulator()
    assert plain.handle("POST", req.BANK_PATH, HEADERS, req.bank())[0] == 200
    assert plain.handle("POST", req.BANK_PATH, {**HEADERS, "provider_secret": "anything"}, req.bank())[0] == 200
    strict = _emulator(provider_secrets={"banking": "bank-psecret"})
    assert strict.handle("POST", req.BANK_PATH, HEADERS, req.bank())[1]["responseKey"] == "unauthorized_provider"
    ok = strict.handle("POST", req.BANK_PATH, {**HEADERS, "provider_secret": "bank-psecret"}, req.bank())
    assert ok[0] == 200 and ok[1]["status"] == "success"


def test_the_refusal_order_is_headers_then_secrets_then_expiry_then_provider():
    emu = _emulator(expired_modules=frozenset({"payments"}))
    assert emu.handle("POST", req.LINK_PATH, {}, req.link())[1]["responseKey"] == "error_empty_module_secret"
    wrong = {**PAYMENT_HEADERS, "client_secret": "x"}
    assert emu.handle("POST", req.LINK_PATH, wrong, req.link())[1]["responseKey"] == "error_unauthorized_module"
    assert emu.handle("POST", req.LINK_PATH, HEADERS, req.link())[1]["responseKey"] == "error_module_access_expired"
