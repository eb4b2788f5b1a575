"""Settings: read by variable name from any mapping, checked for live use, secrets never shown."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from decentro_core import Settings
from decentro_core.errors import ConfigurationError
from decentro_core.settings import SETTINGS, STAGING_BASE, parse_bool

LIVE = {"USE_MOCKS": "false", "DECENTRO_CLIENT_ID": "cid-synthetic", "DECENTRO_CLIENT_SECRET": "csecret-synthetic",
        "DECENTRO_API_KEY": "apikey-synthetic", "DECENTRO_ENCRYPTION_KEYS": "fernet-key-synthetic",
        "DECENTRO_AUDIT_KEYS": "audit-key-synthetic-" + "a" * 24}


def test_an_empty_mapping_gives_mock_mode_on_staging_with_the_documented_defaults() -> None:
    settings = Settings.from_mapping({})
    assert settings.use_mocks is True and settings.api_base == STAGING_BASE
    assert (settings.timeout, settings.max_retries, settings.cache_ttl) == (10.0, 3, 86400)
    assert settings.check() is settings


def test_from_mapping_parses_numbers_booleans_and_separated_lists() -> None:
    settings = Settings.from_mapping({
        "USE_MOCKS": "no", "DECENTRO_TIMEOUT": "12.5", "DECENTRO_MAX_RETRIES": "5", "DECENTRO_CACHE_TTL": "60",
        "DECENTRO_WEBHOOK_SECRET": " new-secret \n old-secret  ", "DECENTRO_ENCRYPTION_KEYS": "k1,k2",
        "DECENTRO_UIDAI_CERT": ["/certs/a.pem", " /certs/b.cer "], "DECENTRO_AADHAAR_MAX_AGE_HOURS": "24",
    })
    assert settings.use_mocks is False
    assert (settings.timeout, settings.max_retries, settings.cache_ttl) == (12.5, 5, 60)
    assert settings.webhook_secrets == ("new-secret", "old-secret")
    assert settings.encryption_keys == ("k1", "k2")
    assert settings.uidai_certs == ("/certs/a.pem", "/certs/b.cer")
    assert settings.aadhaar_max_age_hours == 24.0


@pytest.mark.parametrize(("text", "value"), [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                             ("0", False), ("False", False), ("off", False), ("", False)])
def test_parse_bool_reads_the_usual_spellings(text: str, value: bool) -> None:
    assert parse_bool(text) is value


def test_overrides_are_field_names_and_win_over_the_mapping() -> None:
    settings = Settings.from_mapping({"DECENTRO_TIMEOUT": "12"}, timeout=3.0, payee_account="PAYEE1")
    assert (settings.timeout, settings.payee_account) == (3.0, "PAYEE1")


def test_from_env_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DECENTRO_MAX_RETRIES", "7")
    monkeypatch.setenv("DECENTRO_SMS_PATH", "/custom/sms")
    settings = Settings.from_env()
    assert (settings.max_retries, settings.sms_path) == (7, "/custom/sms")


@pytest.mark.parametrize(("name", "value"), [
    ("DECENTRO_MAX_RETRIES", "many"), ("DECENTRO_TIMEOUT", "soon"), ("USE_MOCKS", "perhaps"),
    ("DECENTRO_CACHE_TTL", "1.5"),
])
def test_a_value_that_does_not_parse_raises_configuration_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_mapping({name: value})
    assert str(raised.value).startswith(f"{name} is not valid")


def test_a_secret_that_does_not_parse_is_named_but_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_mapping({"DECENTRO_WEBHOOK_SECRET": b"whsec-very-secret-value"})
    shown = str(raised.value) + repr(raised.value) + str(raised.value.to_dict())
    assert "DECENTRO_WEBHOOK_SECRET" in shown and "very-secret" not in shown


@pytest.mark.parametrize(("name", "value", "field", "expected"), [
    ("USE_MOCKS", 0, "use_mocks", False),
    ("DECENTRO_UIDAI_CERT", pathlib.Path("/certs/uidai.pem"), "uidai_certs", ("/certs/uidai.pem",)),
    ("DECENTRO_WEBHOOK_SECRET", 424242, "webhook_secrets", ("424242",)),
])
def test_a_value_of_another_python_type_is_parsed_or_a_configuration_error_never_a_crash(
        name: str, value: Any, field: str, expected: Any) -> None:
    try:
        settings = Settings.from_mapping({name: value})
    except ConfigurationError as exc:
        assert name in str(exc)
        assert "SECRET" not in name or str(value) not in str(exc)
    else:
        assert getattr(settings, field) == expected


def test_check_in_live_mode_lists_every_missing_variable() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_mapping({"USE_MOCKS": "false"}).check()
    message = str(raised.value)
    for name in ("DECENTRO_CLIENT_ID", "DECENTRO_CLIENT_SECRET", "DECENTRO_API_KEY", "DECENTRO_ENCRYPTION_KEYS"):
        assert name in message


def test_check_in_live_mode_names_only_what_is_missing() -> None:
    partial = {k: v for k, v in LIVE.items() if k != "DECENTRO_CLIENT_SECRET"}
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_mapping(partial).check()
    assert "DECENTRO_CLIENT_SECRET" in str(raised.value)
    assert "DECENTRO_CLIENT_ID," not in str(raised.value) and "csecret" not in str(raised.value)


def test_a_complete_live_configuration_passes_check_and_a_kyc_secret_can_replace_the_api_key() -> None:
    assert Settings.from_mapping(LIVE).check().use_mocks is False
    per_module = {k: v for k, v in LIVE.items() if k != "DECENTRO_API_KEY"}
    settings = Settings.from_mapping({**per_module, "DECENTRO_KYC_MODULE_SECRET": "kyc-only"}).check()
    assert settings.module_secret("kyc") == "kyc-only"


def test_module_secret_falls_back_to_the_api_key() -> None:
    settings = Settings.from_mapping({**LIVE, "DECENTRO_PAYMENTS_MODULE_SECRET": "pay-secret"})
    assert settings.module_secret("payments") == "pay-secret"
    assert settings.module_secret("banking") == "apikey-synthetic"


@pytest.mark.parametrize("bad", [{"max_retries": -1}, {"timeout": 0.0}, {"connect_timeout": -1.0}])
def test_check_refuses_negative_retries_and_non_positive_timeouts(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Settings(**bad).check()


def test_repr_hides_every_secret_and_the_passwords_in_urls() -> None:
    settings = Settings.from_mapping({
        **LIVE, "DECENTRO_PAYMENTS_PROVIDER_SECRET": "provider-synthetic", "DECENTRO_WEBHOOK_SECRET": "whsec-synthetic",
        "DECENTRO_DATABASE_URL": "postgresql://app:dbpass-synthetic@127.0.0.1/app",
        "DECENTRO_CACHE_URL": "redis://:redispass-synthetic@127.0.0.1:6379/0",
    })
    shown = repr(settings) + str(settings)
    for secret in ("cid-synthetic", "csecret-synthetic", "apikey-synthetic", "fernet-key-synthetic",
                   "provider-synthetic", "whsec-synthetic", "dbpass-synthetic", "redispass-synthetic"):
        assert secret not in shown
    assert "postgresql://***@127.0.0.1/app" in shown and "redis://***@127.0.0.1:6379/0" in shown


def test_database_url_falls_back_to_the_common_database_url_variable() -> None:
    assert Settings.from_mapping({"DATABASE_URL": "sqlite:///fallback.db"}).database_url == "sqlite:///fallback.db"
    both = {"DATABASE_URL": "sqlite:///fallback.db", "DECENTRO_DATABASE_URL": "sqlite:///own.db"}
    assert Settings.from_mapping(both).database_url == "sqlite:///own.db"


def test_decentro_use_mocks_is_an_alias_of_use_mocks() -> None:
    assert Settings.from_mapping({"DECENTRO_USE_MOCKS": "false"}).use_mocks is False
    assert Settings.from_mapping({"DECENTRO_USE_MOCKS": "false", "USE_MOCKS": "true"}).use_mocks is True


def test_the_settings_table_names_every_field_once_with_a_description() -> None:
    names = [name for name, _, _ in SETTINGS]
    assert len(names) == len(set(names))
    assert all(doc for _, _, doc in SETTINGS)
    assert {"USE_MOCKS", "DECENTRO_API_KEY", "DECENTRO_WEBHOOK_SECRET", "DECENTRO_PAYEE_ACCOUNT"} <= set(names)


LIVE_SAFE = {**LIVE, "DECENTRO_WEBHOOK_SECRET": "s" * 32}


def test_a_comma_is_part_of_a_webhook_secret_never_a_separator() -> None:
    assert Settings.from_mapping({"DECENTRO_WEBHOOK_SECRET": "a,b c"}).webhook_secrets == ("a,b", "c")


@pytest.mark.parametrize(("override", "named"), [
    ({"DECENTRO_WEBHOOK_SECRET": "x" * 31}, "shorter than 32 characters"),
    ({"DECENTRO_WEBHOOK_SECRET": "y" * 40 + " " + "z" * 5}, "number 2 shorter"),
    ({"DECENTRO_WEBHOOK_SECRET": "old-secret-1234567890123456789012,new-secret-1234567890123456789012"},
     "separate secrets with spaces"),
    ({"DECENTRO_API_BASE": "http://in.staging.decentro.tech"}, "DECENTRO_API_BASE must be https://"),
])
def test_live_mode_refuses_unsafe_settings_naming_each_without_its_value(override: dict[str, str],
                                                                         named: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_mapping({**LIVE_SAFE, **override}).check()
    assert named in str(raised.value)
    assert not any(value in str(raised.value) for value in override.values() if "decentro.tech" not in value)


def test_an_http_base_is_allowed_in_live_mode_only_with_the_explicit_insecure_flag() -> None:
    local = {**LIVE_SAFE, "DECENTRO_API_BASE": "http://127.0.0.1:8765", "DECENTRO_ALLOW_INSECURE_API_BASE": "true"}
    assert Settings.from_mapping(local).check().api_base == "http://127.0.0.1:8765"
    assert Settings.from_mapping({"DECENTRO_WEBHOOK_SECRET": "short"}).check().webhook_secrets == ("short",)  # mock
