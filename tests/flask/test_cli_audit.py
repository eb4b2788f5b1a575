"""``flask decentro verify-audit | audit-anchor | rotate-audit-key | migrate-audit-legacy`` and the
worker's anchoring, on an app whose audit log is a SQLite file."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from cryptography.fernet import Fernet

from decentro_adapters.sql.audit import generate_audit_key
from decentro_adapters.sql.stores import open_stores
from decentro_core.audit import AuditKeyring, chain_hash, key_id_of
from decentro_core.ports import AuditEvent
from flask_decentro.cli import decentro_cli

LIVE = {"USE_MOCKS": "false", "DECENTRO_CLIENT_ID": "cid-synthetic", "DECENTRO_CLIENT_SECRET": "csecret-synthetic",
        "DECENTRO_API_KEY": "apikey-synthetic", "DECENTRO_WEBHOOK_SECRET": "w" * 32,
        "DECENTRO_PAYEE_ACCOUNT": "462515000000000"}


def event(n: int) -> AuditEvent:
    return AuditEvent("system", "upi_collect", "user@***", "SUCCESS", datetime(2024, 5, 1, 10, n, tzinfo=timezone.utc),
                      f"TXN{n}", f"ref-{n}")


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'audit.sqlite3'}"


@pytest.fixture
def open_app(make_app, db_url):
    """``open_app(keys, live=False, **settings)``: an app on the same database; all closed at the end."""
    apps = []

    def factory(keys, *, live=False, **settings):
        extra = {**LIVE, "DECENTRO_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                 "identity": lambda: "user-synthetic"} if live else {}
        app = make_app(service=None, DECENTRO_DATABASE_URL=db_url, DECENTRO_AUDIT_KEYS=keys, **extra, **settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["decentro"].close()


def run(app, *args):
    return app.test_cli_runner().invoke(decentro_cli, list(args))


def append(app, count, start=0):
    audit = app.extensions["decentro"].service.ports.audit
    for n in range(start, start + count):
        audit.append(event(n))


def delete_from(db_url, row_id):
    with open_stores(db_url) as stores:  # someone with write access to the database
        stores.database.execute_sql(f"DELETE FROM decentro_audit_event WHERE id >= {int(row_id)}")


def test_live_verification_without_an_anchor_warns_and_exits_non_zero(open_app, tmp_path):
    app = open_app(generate_audit_key(), live=True)
    append(app, 3)
    result = run(app, "verify-audit")
    assert result.exit_code == 3, result.output
    assert "intact: 3 events" in result.stdout and "UNNOTICED" in result.stderr and "DECENTRO_AUDIT_ANCHOR_URL" in result.stderr


def test_live_verification_against_the_configured_anchor_store_passes(open_app, tmp_path):
    app = open_app(generate_audit_key(), live=True, DECENTRO_AUDIT_ANCHOR_URL=str(tmp_path / "anchors.jsonl"))
    append(app, 3)
    assert run(app, "verify-audit").exit_code == 3  # configured, but no anchor written yet
    anchored = run(app, "audit-anchor")
    assert anchored.exit_code == 0, anchored.output
    assert json.loads(anchored.stdout)["count"] == 3
    result = run(app, "verify-audit")
    assert result.exit_code == 0, result.output
    assert "anchor at event 3 holds (file " in result.stdout and "WARNING" not in result.output


@pytest.mark.parametrize("first_deleted", [3, 1], ids=["newest rows", "all rows"])
def test_deleted_rows_are_caught_with_the_automatic_anchor(open_app, db_url, tmp_path, first_deleted):
    anchors = tmp_path / "anchors.jsonl"
    app = open_app(generate_audit_key(), DECENTRO_AUDIT_ANCHOR_URL=str(anchors))
    append(app, 4)
    worker = run(app, "worker", "--once", "--reconcile-every", "0m")  # the worker's schedule writes anchors
    assert worker.exit_code == 0, worker.output
    assert json.loads(anchors.read_text().splitlines()[-1])["count"] == 4
    delete_from(db_url, first_deleted)
    result = run(app, "verify-audit")
    assert result.exit_code == 1
    assert "BROKEN at event 4: the chain ends before the anchor (newest rows deleted)" in result.stderr
    again = run(app, "audit-anchor")  # nor does a later anchoring bless the cut chain
    assert again.exit_code == 1 and len(anchors.read_text().splitlines()) == 1
    scheduled = run(app, "worker", "--once", "--reconcile-every", "0m")
    assert scheduled.exit_code == 1 and "BROKEN at event 4" in scheduled.stderr
    assert len(anchors.read_text().splitlines()) == 1


def test_a_chain_rewritten_as_plain_sha256_fails_with_keys_set(open_app, db_url):
    app = open_app(generate_audit_key())
    append(app, 3)
    with open_stores(db_url) as stores:
        row, previous = stores.models.audit, ""
        for r in row.select().order_by(row.id):
            edited = AuditEvent(r.actor, r.action, r.subject, "FAILURE", datetime.fromisoformat(r.occurred_at),
                                r.operation_id, r.reference_id)
            previous = chain_hash(previous, edited)
            row.update(outcome="FAILURE", row_hash=previous).where(row.id == r.id).execute()
    result = run(app, "verify-audit")
    assert result.exit_code == 1 and "BROKEN at event 1: an unkeyed (plain SHA-256) link" in result.stderr


def test_rotation_resigns_so_the_old_key_can_be_removed(open_app, db_url, tmp_path):
    old, new = generate_audit_key(), generate_audit_key()
    anchors = {"DECENTRO_AUDIT_ANCHOR_URL": str(tmp_path / "anchors.jsonl")}
    before = open_app(old, **anchors)
    append(before, 3)
    assert run(before, "audit-anchor").exit_code == 0
    dropped = run(open_app(new, **anchors), "verify-audit")
    assert dropped.exit_code == 1 and "made under a key not in DECENTRO_AUDIT_KEYS" in dropped.stderr
    both = open_app(f"{new} {old}", **anchors)
    rotated = run(both, "rotate-audit-key")
    assert rotated.exit_code == 0, rotated.output
    assert "3 events verified against the anchor" in rotated.stdout and "3 link(s) re-signed" in rotated.stdout
    after = open_app(new, live=True, **anchors)  # the old key is gone
    result = run(after, "verify-audit")
    assert result.exit_code == 0, result.output
    assert "4 events checked, anchor at event 4 holds" in result.stdout  # the rotation's own audit row
    trail = after.extensions["decentro"].service.ports.audit.events
    assert (trail[-1].actor, trail[-1].action, trail[-1].reference_id) == ("cli", "audit_rotate_key", "resigned:3")
    assert old not in rotated.output + result.output and new not in rotated.output + result.output
    assert "nothing to re-sign" in run(after, "rotate-audit-key").stdout


def test_live_rotation_refuses_an_unanchored_chain_unless_told(open_app):
    old, new = generate_audit_key(), generate_audit_key()
    append(open_app(old), 2)
    app = open_app(f"{new} {old}", live=True)
    refused = run(app, "rotate-audit-key")
    assert refused.exit_code == 1 and "refusing to re-sign an unanchored chain" in refused.output
    assert run(app, "rotate-audit-key", "--without-anchor").exit_code == 0
    assert run(open_app(new), "verify-audit").exit_code == 0


def test_the_legacy_migration_resigns_old_rows_once(open_app, db_url):
    key = generate_audit_key()
    app = open_app(key)
    with open_stores(db_url) as stores:  # rows written by a release before audit keys
        previous = ""
        for n in range(3):
            previous = chain_hash(previous, event(n))
            values = {**event(n).__dict__, "occurred_at": event(n).occurred_at.isoformat(), "row_hash": previous}
            stores.models.audit.insert(**values).execute()
    append(app, 2, start=3)
    assert run(app, "verify-audit").exit_code == 1
    assert run(app, "rotate-audit-key").exit_code == 1  # rotation does not take plain links
    migrated = run(app, "migrate-audit-legacy")
    assert migrated.exit_code == 0, migrated.output
    assert "5 events verified" in migrated.stdout and "5 link(s) re-signed" in migrated.stdout
    assert "WARNING: no audit anchor" in migrated.stderr
    assert run(app, "verify-audit").exit_code == 0
    again = run(app, "migrate-audit-legacy")
    assert again.exit_code == 0 and "nothing to re-sign" in again.stdout
    with open_stores(db_url) as stores:
        links = [r.row_hash for r in stores.models.audit.select().order_by(stores.models.audit.id)]
    assert [key_id_of(link) for link in links] == [AuditKeyring([key]).signing_key_id] * 6
