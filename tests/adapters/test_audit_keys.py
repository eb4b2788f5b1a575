"""DECENTRO_AUDIT_KEYS: required live, ephemeral and loud in mock mode, long enough, never shown."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from decentro_adapters.bootstrap import build
from decentro_adapters.sql.audit import PeeweeAuditSink, generate_audit_key
from decentro_core.audit import MIN_AUDIT_KEY_LENGTH, AuditKeyring, key_id_of
from decentro_core.errors import ConfigurationError
from decentro_core.ports import AuditEvent
from decentro_core.settings import Settings

LIVE = {"USE_MOCKS": "false", "DECENTRO_CLIENT_ID": "cid-synthetic", "DECENTRO_CLIENT_SECRET": "csecret-synthetic",
        "DECENTRO_API_KEY": "apikey-synthetic", "DECENTRO_ENCRYPTION_KEYS": "fernet-key-synthetic",
        "DECENTRO_WEBHOOK_SECRET": "w" * 32}
EVENT = AuditEvent("system", "pan", "ABCDE****F", "SUCCESS", datetime(2024, 5, 1, tzinfo=timezone.utc), "TXN1", "r1")


def test_live_mode_without_audit_keys_refuses_to_start_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="DECENTRO_AUDIT_KEYS"):
        Settings.from_mapping(LIVE).check()
    with pytest.raises(ConfigurationError, match="DECENTRO_AUDIT_KEYS"):
        build(Settings.from_mapping(LIVE))
    assert "DECENTRO_AUDIT_KEYS" in Settings.from_mapping(LIVE).missing_live_settings()


def test_a_short_audit_key_is_refused_by_position_and_never_shown(tmp_path: Path) -> None:
    short = "too-short-secret-value"
    settings = Settings.from_mapping({"DECENTRO_AUDIT_KEYS": f"{generate_audit_key()} {short}",
                                      "DECENTRO_DATABASE_URL": f"sqlite:///{tmp_path}/a.sqlite3"})
    with pytest.raises(ConfigurationError) as raised:
        build(settings)
    message = str(raised.value)
    assert "DECENTRO_AUDIT_KEYS" in message and "key number 2" in message and str(MIN_AUDIT_KEY_LENGTH) in message
    assert short not in message


def test_the_same_key_twice_is_refused() -> None:
    key = generate_audit_key()
    with pytest.raises(ConfigurationError, match="twice"):
        AuditKeyring([key, key])


def test_mock_mode_without_keys_signs_with_an_ephemeral_key_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="decentro"):
        first = AuditKeyring.from_settings(Settings())
    assert "EPHEMERAL" in caplog.text and "DECENTRO_AUDIT_KEYS" in caplog.text
    assert first.signing_key_id != AuditKeyring.from_settings(Settings()).signing_key_id


def test_the_app_signs_with_the_first_configured_key(tmp_path: Path) -> None:
    keys = (generate_audit_key(), generate_audit_key())
    settings = Settings.from_mapping({"DECENTRO_AUDIT_KEYS": " ".join(keys),
                                      "DECENTRO_DATABASE_URL": f"sqlite:///{tmp_path}/a.sqlite3"})
    with build(settings) as system:
        audit = system.service.ports.audit
        assert isinstance(audit, PeeweeAuditSink)
        audit.append(EVENT)
        assert audit.head().key_id == AuditKeyring(keys[:1]).signing_key_id
        assert audit.verify().ok


def test_generated_keys_are_long_random_and_usable() -> None:
    keys = {generate_audit_key() for _ in range(3)}
    assert len(keys) == 3 and all(len(k) >= MIN_AUDIT_KEY_LENGTH for k in keys)
    keyring = AuditKeyring(sorted(keys))
    link = keyring.link("", EVENT)
    assert key_id_of(link) == keyring.signing_key_id and keyring.check("", EVENT, link) is None


def test_neither_the_keyring_nor_the_settings_show_a_key() -> None:
    key = generate_audit_key()
    assert key not in repr(AuditKeyring([key]))
    assert key not in repr(Settings.from_mapping({"DECENTRO_AUDIT_KEYS": key}))
    assert key not in AuditKeyring([key]).link("", EVENT)
