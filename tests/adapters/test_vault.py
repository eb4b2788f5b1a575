"""The Vault contract, run against MemoryVault and FernetVault, plus Fernet's own rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Callable

import pytest

from decentro_adapters.vault.fernet import FernetVault
from decentro_core.errors import ConfigurationError, StoreError
from decentro_core.memory import MemoryVault
from decentro_core.ports import Vault
from decentro_core.settings import Settings

PAN = "ABCDE1234F"


def _fernet() -> Vault:
    return FernetVault([FernetVault.generate_key()])


@pytest.fixture(params=[MemoryVault, _fernet], ids=["memory", "fernet"])
def vault(request: pytest.FixtureRequest) -> Vault:
    factory: Callable[[], Vault] = request.param
    return factory()


def test_a_sealed_value_opens_to_the_same_bytes(vault: Vault) -> None:
    assert vault.open(vault.seal(PAN.encode())) == PAN.encode()


def test_a_sealed_token_does_not_contain_the_plaintext(vault: Vault) -> None:
    token = vault.seal(PAN.encode())
    assert PAN not in token
    assert PAN.lower() not in token.lower()


def test_sealing_twice_gives_different_tokens(vault: Vault) -> None:
    assert vault.seal(b"same") != vault.seal(b"same")


def test_opening_an_unknown_token_raises_store_error(vault: Vault) -> None:
    with pytest.raises(StoreError):
        vault.open("not-a-token")


def test_fingerprints_are_stable_distinct_and_do_not_contain_the_value(vault: Vault) -> None:
    first = vault.fingerprint(PAN)
    assert first == vault.fingerprint(PAN)
    assert first != vault.fingerprint("ABCDE1234A")
    assert PAN not in first and len(first) == 64


# -- FernetVault specifics -----------------------------------------------------------------


def test_a_token_from_another_key_raises_store_error_without_the_token() -> None:
    token = _fernet().seal(PAN.encode())
    with pytest.raises(StoreError) as caught:
        _fernet().open(token)
    assert token not in str(caught.value) and PAN not in str(caught.value)


def test_the_first_key_seals_and_every_listed_key_opens() -> None:
    old, new = FernetVault.generate_key(), FernetVault.generate_key()
    old_token = FernetVault([old]).seal(b"old")
    both = FernetVault([new, old])
    assert both.open(old_token) == b"old"
    assert FernetVault([new]).open(both.seal(b"new")) == b"new"
    assert both.is_current(both.seal(b"x")) and not both.is_current(old_token)


def test_rotate_reseals_under_the_newest_key() -> None:
    old, new = FernetVault.generate_key(), FernetVault.generate_key()
    token = FernetVault([old]).seal(b"value")
    rotated = FernetVault([new, old]).rotate(token)
    assert FernetVault([new]).open(rotated) == b"value"


def test_fingerprints_survive_prepending_a_new_key() -> None:
    old, new = FernetVault.generate_key(), FernetVault.generate_key()
    assert FernetVault([old]).fingerprint(PAN) == FernetVault([new, old]).fingerprint(PAN)
    assert FernetVault([new]).fingerprint(PAN) != FernetVault([old]).fingerprint(PAN)


def test_the_fingerprint_key_is_derived_not_the_encryption_key_itself() -> None:
    key = FernetVault.generate_key()
    raw = base64.urlsafe_b64decode(key)
    candidates = (raw, raw[:16], raw[16:], key.encode())
    naive = {hmac.new(k, PAN.encode(), hashlib.sha256).hexdigest() for k in candidates}
    assert FernetVault([key]).fingerprint(PAN) not in naive


def test_an_invalid_key_raises_configuration_error_naming_the_variable_not_the_key() -> None:
    bad = "this-is-not-a-fernet-key-at-all"
    with pytest.raises(ConfigurationError) as caught:
        FernetVault([FernetVault.generate_key(), bad])
    message = str(caught.value)
    assert "DECENTRO_ENCRYPTION_KEYS" in message and "#2" in message and bad not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_an_empty_key_list_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        FernetVault([])


def test_from_settings_uses_the_configured_keys() -> None:
    key = FernetVault.generate_key()
    token = FernetVault([key]).seal(b"kept")
    vault = FernetVault.from_settings(Settings.from_mapping({"DECENTRO_ENCRYPTION_KEYS": f" {key} , "}))
    assert vault.open(token) == b"kept"


def test_from_settings_in_live_mode_without_keys_raises_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as caught:
        FernetVault.from_settings(Settings.from_mapping({"USE_MOCKS": "false"}))
    assert "DECENTRO_ENCRYPTION_KEYS" in str(caught.value)


def test_from_settings_in_mock_mode_without_keys_warns_loudly_in_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        vault = FernetVault.from_settings(Settings.from_mapping({"USE_MOCKS": "true"}))
    assert vault.open(vault.seal(b"x")) == b"x"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "EPHEMERAL" in warnings[0].getMessage()
    assert "restart" in warnings[0].getMessage()


def test_from_settings_logs_to_the_given_logger(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("decentro.test.vault")
    with caplog.at_level(logging.WARNING, logger="decentro.test.vault"):
        FernetVault.from_settings(Settings(), logger=logger)
    assert [r.name for r in caplog.records] == ["decentro.test.vault"]
