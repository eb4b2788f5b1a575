"""``flask decentro`` commands that are not about callbacks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from click import BadParameter
from cryptography.fernet import Fernet

from decentro_core.ports import AuditEvent
from flask_decentro.cli import decentro_cli, parse_age


def test_gen_key_prints_a_usable_fernet_key(app):
    result = app.test_cli_runner().invoke(decentro_cli, ["gen-key"])
    key = result.output.strip()
    assert Fernet(key.encode()).decrypt(Fernet(key.encode()).encrypt(b"x")) == b"x"


def test_verify_audit_reports_an_intact_chain_and_fails_on_a_broken_one(app, client, service):
    from flask_helpers import kyc

    client.post("/api/kyc/pan", json=kyc())
    runner = app.test_cli_runner()
    ok = runner.invoke(decentro_cli, ["verify-audit"])
    assert ok.exit_code == 0 and "intact" in ok.output
    event, digest = service.ports.audit.rows[0]
    service.ports.audit.rows[0] = (AuditEvent(**{**event.__dict__, "outcome": "EDITED"}), digest)
    broken = runner.invoke(decentro_cli, ["verify-audit"])
    assert broken.exit_code == 1 and "BROKEN at event 1" in broken.output


def test_purge_removes_records_older_than_the_given_age(app, client, service):
    from flask_helpers import payment

    client.post("/api/payments", json=payment(10))
    runner = app.test_cli_runner()
    assert "purged 0" in runner.invoke(decentro_cli, ["purge", "--older-than", "90d"]).output
    assert "purged 1" in runner.invoke(decentro_cli, ["purge", "--older-than", "0m"]).output
    assert list(service.ports.records.operations) == []


def test_ages_read_as_days_hours_or_minutes():
    assert [parse_age("90d"), parse_age("12h"), parse_age(" 5m ")] == [
        timedelta(days=90), timedelta(hours=12), timedelta(minutes=5)]
    with pytest.raises(BadParameter):
        parse_age("ninety days")


def test_replay_needs_either_all_or_one_key(app):
    result = app.test_cli_runner().invoke(decentro_cli, ["webhooks", "replay"])
    assert result.exit_code == 2


def test_rotate_keys_reseals_stored_values_under_the_first_key(make_app, tmp_path):
    from decentro_adapters.vault.fernet import FernetVault
    from decentro_adapters.sql.stores import open_stores

    old, new = FernetVault.generate_key(), FernetVault.generate_key()
    url = f"sqlite:///{tmp_path / 'rotate.sqlite3'}"
    with open_stores(url, vault=FernetVault([old])) as stores:
        from datetime import datetime, timezone

        from decentro_core.ports import OperationRecord

        now = datetime.now(timezone.utc)
        stores.records.save_operation(OperationRecord(
            reference_id="r1", operation="pan", status="SUCCESS", created_at=now, updated_at=now,
            sealed_request=FernetVault([old]).seal(b"{}")))
    app = make_app(service=None, DECENTRO_DATABASE_URL=url, DECENTRO_ENCRYPTION_KEYS=f"{new},{old}")
    result = app.test_cli_runner().invoke(decentro_cli, ["rotate-keys", "--batch-size", "10"])
    app.extensions["decentro"].close()
    assert result.exit_code == 0, result.output
    assert "rotated=1" in result.output and "complete=True" in result.output
    with open_stores(url) as stores:
        token = stores.records.get_operation("r1").sealed_request
    assert FernetVault([new]).open(token) == b"{}"


@pytest.mark.postgres
def test_db_upgrade_brings_an_empty_database_to_the_schema_the_app_then_serves_on(empty_postgres_url):
    import os
    import subprocess
    import sys

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("DECENTRO_")},
           "USE_MOCKS": "true", "DECENTRO_DATABASE_URL": empty_postgres_url}

    def flask(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "example_app", *args], env=env,
                              capture_output=True, text=True, timeout=120)

    refused = flask("routes")  # serving (any command that builds the app) checks the schema first
    assert refused.returncode != 0 and "decentro db upgrade" in refused.stderr
    behind = flask("decentro", "db", "status")
    assert behind.returncode == 1, behind.stderr
    upgraded = flask("decentro", "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    current = flask("decentro", "db", "status")
    assert current.returncode == 0 and "current" in current.stdout, current.stdout + current.stderr
    assert flask("routes").returncode == 0


# -- The keyed audit chain and its anchors ---------------------------------------------------


def _audited_app(make_app, tmp_path, keys):
    """An app on a SQLite file whose audit sink signs with ``keys``, and three events in it."""
    from datetime import datetime, timezone

    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    app = make_app(service=None, DECENTRO_DATABASE_URL=url, DECENTRO_AUDIT_KEYS=keys)
    audit = app.extensions["decentro"].service.ports.audit
    for n in range(3):
        audit.append(AuditEvent("system", "upi_collect", "user@***", "SUCCESS",
                                datetime(2024, 5, 1, 10, n, tzinfo=timezone.utc), f"TXN{n}", f"ref-{n}"))
    return app, url


def test_gen_key_audit_prints_a_key_the_audit_chain_accepts(app):
    from decentro_core.audit import AuditKeyring

    runner = app.test_cli_runner()
    first, second = (runner.invoke(decentro_cli, ["gen-key", "--audit"]).output.strip() for _ in range(2))
    assert first != second and len(first) >= 32
    assert AuditKeyring([first, second]).key_ids


def test_audit_anchor_prints_the_head_and_verify_audit_checks_against_it(make_app, tmp_path):
    import json

    from decentro_adapters.sql.audit import generate_audit_key

    app, url = _audited_app(make_app, tmp_path, generate_audit_key())
    runner = app.test_cli_runner()
    anchored = runner.invoke(decentro_cli, ["audit-anchor"])
    assert anchored.exit_code == 0, anchored.output
    head = json.loads(anchored.stdout)
    assert head["count"] == 3 and head["last_id"] == 3 and head["link"].startswith(head["key_id"] + ":")
    anchors = tmp_path / "anchors.jsonl"
    anchors.write_text('{"count":1,"last_id":1,"link":"x:y","key_id":"x"}\n' + anchored.stdout)  # latest last
    for value in (anchored.stdout.strip(), f"@{anchors}"):
        ok = runner.invoke(decentro_cli, ["verify-audit", "--anchor", value])
        assert ok.exit_code == 0 and "3 events checked" in ok.output and "anchor at event 3 holds" in ok.output

    from decentro_adapters.sql.stores import open_stores

    with open_stores(url) as stores:  # someone with write access to the database
        stores.database.execute_sql("DELETE FROM decentro_audit_event WHERE id = 3")
    unanchored = runner.invoke(decentro_cli, ["verify-audit"])  # why anchors matter: the cut is not seen
    assert unanchored.exit_code == 0 and "UNNOTICED" in unanchored.stderr  # mock mode: a warning, exit 0
    cut = runner.invoke(decentro_cli, ["verify-audit", "--anchor", f"@{anchors}"])
    app.extensions["decentro"].close()
    assert cut.exit_code == 1
    assert "BROKEN at event 3: the chain ends before the anchor (newest rows deleted)" in cut.output


def test_verify_audit_refuses_an_anchor_it_cannot_read(app, tmp_path):
    runner = app.test_cli_runner()
    garbled = runner.invoke(decentro_cli, ["verify-audit", "--anchor", "not json"])
    assert garbled.exit_code == 2 and "not an audit anchor" in garbled.output
    missing = runner.invoke(decentro_cli, ["verify-audit", "--anchor", f"@{tmp_path / 'none.json'}"])
    assert missing.exit_code == 2 and "cannot read" in missing.output


def test_verify_audit_accepts_links_of_an_older_key_after_rotation_and_fails_without_the_key(make_app, tmp_path):
    from decentro_adapters.sql.audit import generate_audit_key

    old, new = generate_audit_key(), generate_audit_key()
    first, url = _audited_app(make_app, tmp_path, old)
    first.extensions["decentro"].close()
    rotated = make_app(service=None, DECENTRO_DATABASE_URL=url, DECENTRO_AUDIT_KEYS=f"{new} {old}")
    ok = rotated.test_cli_runner().invoke(decentro_cli, ["verify-audit"])
    rotated.extensions["decentro"].close()
    assert ok.exit_code == 0 and "3 events checked" in ok.output
    dropped = make_app(service=None, DECENTRO_DATABASE_URL=url, DECENTRO_AUDIT_KEYS=new)
    broken = dropped.test_cli_runner().invoke(decentro_cli, ["verify-audit"])
    dropped.extensions["decentro"].close()
    assert broken.exit_code == 1 and "BROKEN at event 1: made under a key not in DECENTRO_AUDIT_KEYS" in broken.output
    assert old not in broken.output and new not in broken.output


def test_webhooks_list_pages_with_limit_and_after(app, service):
    from datetime import datetime, timezone

    from decentro_core.ports import WebhookEvent

    t0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
    for n in range(5):
        service.ports.records.add_webhook_event(WebhookEvent(f"CB-{n}", service.ports.vault.seal(b"{}"),
                                                             t0 + timedelta(seconds=n)))
    runner = app.test_cli_runner()
    first = runner.invoke(decentro_cli, ["webhooks", "list", "--limit", "2"])
    assert first.exit_code == 0, first.output
    assert [line.split("\t")[0] for line in first.stdout.splitlines()] == ["CB-0", "CB-1"]
    assert "more may follow: --after CB-1" in first.stderr
    rest = runner.invoke(decentro_cli, ["webhooks", "list", "--after", "CB-1"])
    assert [line.split("\t")[0] for line in rest.stdout.splitlines()] == ["CB-2", "CB-3", "CB-4"]
    assert "more may follow" not in rest.stderr
    missing = runner.invoke(decentro_cli, ["webhooks", "list", "--after", "CB-404"])
    assert missing.exit_code != 0 and "no stored callback with key CB-404" in missing.output


def test_seal_consents_seals_the_clear_texts_older_rows_hold(make_app, tmp_path):
    from datetime import datetime

    from decentro_adapters.sql.stores import open_stores
    from decentro_adapters.vault.fernet import FernetVault

    key, url = FernetVault.generate_key(), f"sqlite:///{tmp_path / 'consents.sqlite3'}"
    text = "I, Testa Synthetica, PAN ABCDE1234F, agree to this check."
    with open_stores(url) as stores:  # a row as version 2 wrote it: text in clear, no fingerprint
        stores.models.consent.insert(user_id="u-1", operation="pan", text=text, purpose="Customer onboarding",
                                     given_at=datetime(2024, 5, 1)).execute()
    app = make_app(service=None, DECENTRO_DATABASE_URL=url, DECENTRO_ENCRYPTION_KEYS=key)
    runner = app.test_cli_runner()
    first = runner.invoke(decentro_cli, ["seal-consents", "--batch-size", "10"])
    again = runner.invoke(decentro_cli, ["seal-consents"])
    consents = app.extensions["decentro"].service.ports.consents
    found = [c.user_id for c in consents.for_text(text)]
    app.extensions["decentro"].close()
    assert first.exit_code == 0, first.output
    assert "sealed=1 " in first.output and "remaining=0" in first.output and "complete=True" in first.output
    assert "sealed=0 " in again.output and found == ["u-1"]
    with open_stores(url) as stores:
        assert "ABCDE1234F" not in stores.models.consent.get().text
