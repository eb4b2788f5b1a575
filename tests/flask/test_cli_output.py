"""What ``flask decentro ...`` prints: no demo warnings where they do not apply, and one line
(exit 1, no traceback) instead of a library error's traceback."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from flask_helpers import signed_post

from decentro_adapters.vault.fernet import FernetVault
from decentro_core.errors import ConfigurationError
from example_app import create_app
from flask_decentro.cli import decentro_cli

ROOT = Path(__file__).resolve().parents[2]
DEMO_WARNINGS = ("EPHEMERAL encryption key", "EPHEMERAL key, so the stored audit chain", "PUBLIC demo secret", "IN-MEMORY")


def _demo_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("DECENTRO_") or k in {"USE_MOCKS", "DATABASE_URL"})}
    return {**env, "DECENTRO_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}"}


def test_gen_key_on_the_demo_app_prints_a_key_and_no_demo_warning(tmp_path):
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "example_app", "decentro", "gen-key"],
                          cwd=ROOT, env=_demo_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    FernetVault([done.stdout.strip()])  # a usable key
    assert [w for w in DEMO_WARNINGS if w in done.stderr] == [], done.stderr


def test_gen_key_does_not_even_load_the_app():
    """So it works exactly when the app cannot start for want of a key."""
    def refuses() -> None:
        raise ConfigurationError("USE_MOCKS=false needs DECENTRO_ENCRYPTION_KEYS")

    result = CliRunner().invoke(decentro_cli, ["gen-key"], obj=ScriptInfo(create_app=refuses))
    assert result.exit_code == 0, result.output
    FernetVault([result.output.strip()])


def test_commands_that_build_the_demo_app_log_no_demo_warning(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    url = f"sqlite:///{tmp_path / 'demo.sqlite3'}"
    info = ScriptInfo(create_app=lambda: create_app({"TESTING": True, "DECENTRO_DATABASE_URL": url}))
    for command in (["db", "upgrade"], ["db", "status"], ["verify-audit"], ["webhooks", "list"]):
        result = CliRunner().invoke(decentro_cli, command, obj=info)
        assert result.exit_code == 0, (command, result.output)
    assert [r.getMessage() for r in caplog.records if any(w in r.getMessage() for w in DEMO_WARNINGS)] == []


def test_serving_the_demo_warns_each_thing_once_per_process(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    for name in ("one", "two"):
        create_app({"TESTING": True, "DECENTRO_DATABASE_URL": f"sqlite:///{tmp_path / name}.sqlite3"})
    messages = [r.getMessage() for r in caplog.records]
    assert [sum(w in m for m in messages) for w in DEMO_WARNINGS] == [1, 1, 1, 1], messages


def test_a_library_error_while_loading_the_app_is_one_line_and_exit_1():
    def refuses() -> None:
        raise ConfigurationError("Live mode (USE_MOCKS=false) is missing: DECENTRO_CLIENT_ID")

    result = CliRunner().invoke(decentro_cli, ["verify-audit"], obj=ScriptInfo(create_app=refuses))
    assert result.exit_code == 1
    assert result.output == "Error: CONFIGURATION_ERROR: Live mode (USE_MOCKS=false) is missing: DECENTRO_CLIENT_ID\n"
    assert "Traceback" not in result.output


def test_replaying_a_callback_sealed_under_a_key_no_longer_configured_says_so_in_one_line(make_app, tmp_path):
    url = f"sqlite:///{tmp_path / 'callbacks.sqlite3'}"
    yesterday = make_app(service=None, DECENTRO_DATABASE_URL=url, DECENTRO_ENCRYPTION_KEYS=FernetVault.generate_key())
    raw = json.dumps({"callbackTxnId": "CB-old-key", "transactionStatus": "SUCCESS",
                      "referenceId": "never-stored"}).encode()
    assert signed_post(yesterday.test_client(), raw).status_code == 200  # stored, processing failed
    yesterday.extensions["decentro"].close()
    today = make_app(service=None, DECENTRO_DATABASE_URL=url)  # demo mode: a fresh ephemeral key
    runner = today.test_cli_runner()
    try:
        one = runner.invoke(decentro_cli, ["webhooks", "replay", "CB-old-key"])
        every = runner.invoke(decentro_cli, ["webhooks", "replay", "--all"])
    finally:
        today.extensions["decentro"].close()
    assert one.exit_code == 1 and "Traceback" not in one.output
    assert one.output.count("\n") == 1, one.output
    assert "no longer configured" in one.output and "set DECENTRO_ENCRYPTION_KEYS" in one.output
    assert every.exit_code == 1 and "cannot be opened" in every.output and "Traceback" not in every.output
