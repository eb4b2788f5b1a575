"""Schema migrations: an explicit deploy step, and a serving path that never runs DDL.

Every test runs on a SQLite file and on a fresh PostgreSQL database (``empty_url``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import peewee as pw
import pytest
from playhouse.migrate import SchemaMigrator, migrate

from decentro_adapters.sql.__main__ import main
from decentro_adapters.sql.migrations import (
    MIGRATIONS,
    Migration,
    MigrationContext,
    check,
    check_database,
    status,
    status_of_database,
    upgrade,
    upgrade_database,
)
from decentro_adapters.sql.schema import LOCK_ORDER, SCHEMA_VERSION, build_models, close_pool, connect
from decentro_adapters.sql.stores import open_stores
from decentro_core.errors import ConfigurationError, StoreError
from decentro_core.ports import OperationRecord

NOW = datetime(2024, 5, 1, 10, 30, tzinfo=timezone.utc)
DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|LOCK)\b", re.IGNORECASE)
V1_INDEXES = {
    "decentro_operation": {"decentro_operation_reference_id", "decentro_operation_operation_id",
                           "decentro_operation_user_id", "decentro_operation_updated_at"},
    "decentro_webhook_event": {"decentro_webhook_event_dedupe_key", "decentro_webhook_event_received_at",
                               "decentro_webhook_event_state", "decentro_webhook_event_reference_id"},
    "decentro_audit_event": {"decentro_audit_event_operation_id", "decentro_audit_event_reference_id"},
    "decentro_consent": {"decentro_consent_user_id"},
    "decentro_schema_version": set(),
}
V2_INDEXES = {
    **V1_INDEXES,
    "decentro_outcome_event": {"decentro_outcome_event_event_key", "decentro_outcome_event_reference_id",
                               "decentro_outcome_event_state_next_attempt_at"},
}
V3_INDEXES = {**V2_INDEXES, "decentro_consent": {"decentro_consent_user_id", "decentro_consent_text_fingerprint"}}
V1_TABLES = [t for t in LOCK_ORDER if t != "decentro_outcome_event"]
APPLIED_AFTER_V1 = ("2 (outcome events outbox)", "3 (consent text fingerprint)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables at all: a new SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/decentro.sqlite3"
    return str(request.getfixturevalue("empty_postgres_url"))


@contextmanager
def database(url: str) -> Iterator[pw.Database]:
    db = connect(url)
    try:
        with db.connection_context():
            yield db
    finally:
        close_pool(db)


def record(reference_id: str = "ref-1") -> OperationRecord:
    return OperationRecord(reference_id=reference_id, operation="pan", status="PENDING", created_at=NOW,
                           updated_at=NOW, sealed_request="gAAAA-request")


def set_version(url: str, version: int) -> None:
    with database(url) as db:
        build_models(db).schema.update(version=version).execute()


def legacy_ensure_schema(url: str, *, with_version: bool) -> None:
    """The tables as 0.1.0's ensure_schema() created them at every start (and one row)."""
    with database(url) as db:
        models = build_models(db)
        if with_version:
            db.create_tables([models.schema], safe=True)
        db.create_tables(models.tables(), safe=True)
        drop_later_columns(db)
        if with_version:
            models.schema.create(id=1, version=1)
        models.operation.create(reference_id="ref-old", operation="pan", status="SUCCESS",
                                created_at=NOW, updated_at=NOW, operation_id="TXN-old")


def drop_later_columns(db: pw.Database) -> None:
    """What today's models add to version 1's tables (migration 3's column), taken away again."""
    migrator = SchemaMigrator.from_database(db)
    migrate(migrator.drop_index("decentro_consent", "decentro_consent_text_fingerprint"),
            migrator.drop_column("decentro_consent", "text_fingerprint"))


def indexes(url: str) -> dict[str, set[str]]:
    with database(url) as db:
        return {t: {i.name for i in db.get_indexes(t) if not i.name.endswith("_pkey")} for t in LOCK_ORDER}


# -- upgrade --------------------------------------------------------------------------------


def test_a_fresh_database_is_upgraded_to_this_codes_version(empty_url: str) -> None:
    assert status(empty_url).state == "empty"
    report = upgrade(empty_url)
    assert (report.before, report.after, report.applied, report.stamped) == (
        None, SCHEMA_VERSION, ("1 (initial tables)", *APPLIED_AFTER_V1), False)
    assert indexes(empty_url) == V3_INDEXES
    assert status(empty_url).state == "current" and check(empty_url) == SCHEMA_VERSION
    with open_stores(empty_url, schema="check") as stores:
        stores.records.save_operation(record())
        assert stores.records.get_operation("ref-1") == record()


def test_a_second_upgrade_finds_nothing_to_do(empty_url: str) -> None:
    upgrade(empty_url)
    again = upgrade(empty_url)
    assert (again.before, again.applied, again.stamped) == (SCHEMA_VERSION, (), False)
    assert again.summary() == f"schema already at version {SCHEMA_VERSION}: nothing to do"


def test_a_database_made_by_the_old_start_up_code_is_recognised_as_version_1(empty_url: str) -> None:
    legacy_ensure_schema(empty_url, with_version=True)
    assert status(empty_url).state == "behind"
    assert upgrade(empty_url).applied == APPLIED_AFTER_V1
    with open_stores(empty_url, schema="check") as stores:
        found = stores.records.get_operation("ref-old")
    assert found is not None and found.operation_id == "TXN-old"


def test_an_existing_unversioned_schema_is_stamped_and_keeps_its_rows(empty_url: str) -> None:
    legacy_ensure_schema(empty_url, with_version=False)
    assert status(empty_url).state == "unversioned"
    with pytest.raises(ConfigurationError, match="no Decentro schema version"):
        open_stores(empty_url, schema="check")
    report = upgrade(empty_url)
    assert (report.before, report.applied, report.stamped) == (None, APPLIED_AFTER_V1, True)
    assert "stamped" in report.summary()
    assert indexes(empty_url) == V3_INDEXES and check(empty_url) == SCHEMA_VERSION
    with open_stores(empty_url, schema="check") as stores:
        found = stores.records.get_operation("ref-old")
    assert found is not None and found.operation_id == "TXN-old"


def test_an_unversioned_schema_that_is_not_version_1_is_refused_and_left_alone(empty_url: str) -> None:
    with database(empty_url) as db:
        db.execute_sql('CREATE TABLE "decentro_operation" ("id" INTEGER PRIMARY KEY, "reference_id" TEXT)')
    with pytest.raises(ConfigurationError) as caught:
        upgrade(empty_url)
    assert "decentro_operation.status" in str(caught.value) and "will not guess" in str(caught.value)
    with database(empty_url) as db:
        assert db.get_tables() == ["decentro_operation"]  # the step rolled back whole


def _add_channel(ctx: MigrationContext) -> None:
    migrate(ctx.migrator.add_column("decentro_operation", "channel", pw.CharField(max_length=16, null=True)))


WITH_V4 = (*MIGRATIONS, Migration(4, "operation channel", _add_channel))


def test_a_later_migration_runs_once_in_order_through_playhouse_migrate(empty_url: str) -> None:
    upgrade(empty_url)
    with database(empty_url) as db:
        assert status_of_database(db, migrations=WITH_V4).pending == ("4 (operation channel)",)
        with pytest.raises(ConfigurationError) as behind:
            check_database(db, latest=4)
        report = upgrade_database(db, migrations=WITH_V4)
        assert (report.before, report.after, report.applied) == (3, 4, ("4 (operation channel)",))
        assert "channel" in {c.name for c in db.get_columns("decentro_operation")}
        assert check_database(db, latest=4) == 4
        assert upgrade_database(db, migrations=WITH_V4).applied == ()
    assert "version 3; this code needs version 4" in str(behind.value)
    assert "flask decentro db upgrade" in str(behind.value) and "decentro-db upgrade" in str(behind.value)


def test_migration_steps_create_tables_in_the_documented_lock_order(empty_url: str) -> None:
    with database(empty_url) as db:
        statements: list[str] = []
        execute_sql = db.execute_sql

        def recording(sql: str, params: Any = None) -> Any:
            statements.append(sql)
            return execute_sql(sql, params)

        db.execute_sql = recording  # type: ignore[method-assign]
        upgrade_database(db)
    created = [m.group(1) for s in statements if (m := re.match(r'CREATE TABLE "(\w+)"', s))]
    assert created == [*V1_TABLES, "decentro_outcome_event"]  # version 1's in lock order, then version 2's


# -- check: what a serving process does -----------------------------------------------------


def test_check_refuses_an_empty_database_and_says_how_to_upgrade(empty_url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_stores(empty_url, schema="check")
    message = str(caught.value)
    assert "flask decentro db upgrade" in message and "decentro-db upgrade" in message


def test_check_refuses_a_database_ahead_of_the_code(empty_url: str) -> None:
    upgrade(empty_url)
    set_version(empty_url, 99)
    for attempt in (lambda: open_stores(empty_url, schema="check"), lambda: open_stores(empty_url),
                    lambda: upgrade(empty_url)):
        with pytest.raises(ConfigurationError) as caught:
            attempt()
        assert "99" in str(caught.value) and "this code is older than the database" in str(caught.value)
    assert status(empty_url).state == "ahead"


def test_check_refuses_a_database_behind_the_code(empty_url: str) -> None:
    upgrade(empty_url)
    set_version(empty_url, 0)  # as a database of a release before this code's last migration
    with pytest.raises(ConfigurationError) as caught:
        open_stores(empty_url, schema="check")
    assert f"version 0; this code needs version {SCHEMA_VERSION}" in str(caught.value)
    assert "decentro-db upgrade" in str(caught.value)


@pytest.fixture
def statement_log(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement any peewee database in this process sends, in order."""
    sent: list[str] = []
    execute_sql = pw.Database.execute_sql

    def recording(self: pw.Database, sql: str, params: Any = None) -> Any:
        sent.append(sql)
        return execute_sql(self, sql, params)

    monkeypatch.setattr(pw.Database, "execute_sql", recording)
    return sent


@pytest.mark.parametrize("mode", ["check", "auto"])
def test_the_serving_path_reads_the_version_once_and_sends_no_ddl(
    empty_url: str, statement_log: list[str], mode: Any
) -> None:
    upgrade(empty_url)
    statement_log.clear()
    with open_stores(empty_url, schema=mode) as stores:
        assert statement_log == ['SELECT "version" FROM "decentro_schema_version" WHERE "id" = 1']
        stores.records.save_operation(record())
        stores.consents.for_user("user-1")
        stores.audit.verify()
    assert not [sql for sql in statement_log if DDL.match(sql) and "LOCK TABLE" not in sql]


@pytest.mark.postgres
def test_auto_mode_never_creates_tables_in_postgresql(empty_postgres_url: str, statement_log: list[str]) -> None:
    with pytest.raises(ConfigurationError, match="decentro-db upgrade"):
        open_stores(empty_postgres_url)
    assert not [sql for sql in statement_log if DDL.match(sql)]
    assert status(empty_postgres_url).state == "empty"


def test_auto_mode_creates_a_new_sqlite_file_and_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/new.sqlite3"
    with open_stores(url) as stores:
        stores.records.save_operation(record())
    assert status(url).state == "current"
    monkeypatch.chdir(tmp_path)
    with open_stores("") as stores:
        stores.records.save_operation(record())
    assert status("").state == "current"


def test_auto_mode_does_not_stamp_an_unversioned_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    legacy_ensure_schema(url, with_version=False)
    with pytest.raises(ConfigurationError, match="decentro-db upgrade"):
        open_stores(url)
    assert status(url).state == "unversioned"


@pytest.mark.postgres
def test_the_serving_role_needs_no_create_privilege(postgres_url: str) -> None:
    """Serve as a role that may read and write rows but not create anything: it still starts."""
    import psycopg2

    role = "decentro_app_" + postgres_url.rsplit("_", 1)[-1]
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE ROLE "{role}" LOGIN')
        cur.execute(f'REVOKE CREATE ON SCHEMA public FROM PUBLIC, "{role}"')
        cur.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
        cur.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
        cur.execute(f'GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    role_url = postgres_url.replace("postgres@", f"{role}@", 1)
    try:
        with open_stores(role_url, schema="check") as stores:
            stores.records.save_operation(record())
            assert stores.records.get_operation("ref-1") == record()
            with pytest.raises(pw.ProgrammingError, match="permission denied"):  # the role really cannot
                with stores.database.connection_context():
                    stores.database.execute_sql('CREATE TABLE "decentro_probe" ("id" INTEGER)')
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP OWNED BY "{role}"')
            cur.execute(f'DROP ROLE "{role}"')
        admin.close()


# -- concurrency and locks ------------------------------------------------------------------


class Overlap:
    """A slow migration that records how many upgrades ran it at the same time."""

    def __init__(self) -> None:
        self.inside = self.most = self.runs = 0
        self.guard = threading.Lock()

    def __call__(self, ctx: MigrationContext) -> None:
        with self.guard:
            self.inside, self.runs = self.inside + 1, self.runs + 1
            self.most = max(self.most, self.inside)
        pause = "SELECT pg_sleep(0.3)" if isinstance(ctx.database, pw.PostgresqlDatabase) else None
        if pause:
            ctx.database.execute_sql(pause)
        else:
            threading.Event().wait(0.3)  # widens the window two unserialised upgrades would share
        _add_channel(ctx)
        with self.guard:
            self.inside -= 1


def test_concurrent_upgrades_serialise_and_apply_each_migration_once(empty_url: str) -> None:
    slow = Overlap()
    migrations = (*MIGRATIONS, Migration(4, "operation channel", slow))
    barrier = threading.Barrier(4, timeout=30)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def deploy() -> None:
        db = connect(empty_url)
        try:
            barrier.wait()
            reports.append(upgrade_database(db, migrations=migrations))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            close_pool(db)

    threads = [threading.Thread(target=deploy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and len(reports) == 4
    # Each migration ran once (on SQLite two upgraders may share the steps, one step each).
    assert sorted(label for r in reports for label in r.applied) == [
        "1 (initial tables)", *APPLIED_AFTER_V1, "4 (operation channel)"]
    assert (slow.runs, slow.most) == (1, 1)
    with database(empty_url) as db:
        assert check_database(db, latest=4) == 4


@pytest.mark.postgres
def test_a_step_that_cannot_lock_a_busy_table_gives_up_within_its_lock_timeout(postgres_url: str) -> None:
    import psycopg2

    reader = psycopg2.connect(postgres_url)
    try:
        with reader.cursor() as cur:  # an open transaction that read the table: ALTER must wait
            cur.execute('SELECT count(*) FROM "decentro_operation"')
        with database(postgres_url) as db, pytest.raises(StoreError) as caught:
            upgrade_database(db, migrations=WITH_V4, lock_timeout=0.2)
    finally:
        reader.close()
    assert "within 0.2 s" in str(caught.value) and "rolled back" in str(caught.value)
    assert check(postgres_url) == SCHEMA_VERSION


def test_the_migrations_are_numbered_in_order_and_end_at_the_schema_version(tmp_path: Path) -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert MIGRATIONS[-1].version == SCHEMA_VERSION
    with database(f"sqlite:///{tmp_path}/unused.sqlite3") as db, pytest.raises(ValueError):
        upgrade_database(db, migrations=(WITH_V4[-1],))


# -- decentro-db ----------------------------------------------------------------------------


def test_decentro_db_upgrades_and_reports_status(
    empty_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status", "--database-url", empty_url]) == 1
    monkeypatch.setenv("DECENTRO_DATABASE_URL", empty_url)
    assert main(["upgrade"]) == 0
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "empty" in out and "applied 1 (initial tables)" in out and f"schema version {SCHEMA_VERSION}" in out


def test_decentro_db_never_prints_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://decentro:hunter2@127.0.0.1:1/decentro?connect_timeout=1"
    assert main(["status", "--database-url", url]) == 2
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err and "decentro-db:" in captured.err


def test_python_dash_m_runs_the_same_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cli.sqlite3"
    done = subprocess.run([sys.executable, "-m", "decentro_adapters.sql", "upgrade", "--database-url", url],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"schema now at version {SCHEMA_VERSION}" in done.stdout


def test_an_unknown_schema_mode_is_refused_before_anything_is_read(empty_url: str) -> None:
    with pytest.raises(ValueError, match="schema mode"):
        open_stores(empty_url, schema="create")  # type: ignore[arg-type]
    assert status(empty_url).state == "empty"


def test_workers_starting_together_on_a_new_sqlite_file_all_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/demo.sqlite3"
    barrier = threading.Barrier(4, timeout=30)
    errors: list[BaseException] = []

    def start_worker(n: int) -> None:
        try:
            barrier.wait()
            with open_stores(url) as stores:
                stores.records.save_operation(record(f"ref-{n}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start_worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == [] and status(url).state == "current"
    with open_stores(url, schema="check") as stores:
        assert all(stores.records.get_operation(f"ref-{n}") is not None for n in range(4))


def test_a_worker_starting_while_postgresql_is_down_starts_and_answers_store_errors() -> None:
    """gunicorn stops the whole server when one worker fails to boot: a database outage at a
    reload must cost 503s, not the server."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here
    with open_stores(f"postgresql://postgres@127.0.0.1:{port}/nowhere", schema="check") as stores:
        with pytest.raises(StoreError):
            stores.records.get_operation("ref-1")


@pytest.mark.postgres
def test_a_check_deferred_at_start_refuses_a_wrong_schema_on_first_use(empty_postgres_url: str) -> None:
    from decentro_adapters.sql.schema import defer_check, session
    from decentro_adapters.sql.schema_version import check_database

    with database(empty_postgres_url) as db:
        defer_check(db, check_database)
        for _ in range(2):  # and on every use after, while the schema stays wrong
            with pytest.raises(ConfigurationError, match="decentro-db upgrade"), session(db):
                pass


@pytest.mark.postgres
def test_a_check_deferred_at_start_passes_once_on_a_current_schema(postgres_url: str) -> None:
    from decentro_adapters.sql.schema import defer_check, session

    calls: list[int] = []
    with database(postgres_url) as db:
        defer_check(db, lambda d: calls.append(1))
        for _ in range(3):
            with session(db):
                pass
    assert calls == [1]


def test_a_new_database_is_never_seen_half_upgraded(empty_url: str) -> None:
    """Another process starting while the first upgrade runs must see no version or the
    latest, never version 1 of 2 (it would refuse to serve a database "behind" the code)."""
    seen: list[int | None] = []

    def look_from_elsewhere(ctx: MigrationContext) -> None:
        from decentro_adapters.sql.schema_version import VERSION_TABLE, read_version

        with database(empty_url) as other:
            seen.append(read_version(other) if VERSION_TABLE in other.get_tables() else None)
        MIGRATIONS[1].apply(ctx)

    migrations = (MIGRATIONS[0], Migration(2, "outcome events outbox", look_from_elsewhere), *MIGRATIONS[2:])
    with database(empty_url) as db:
        report = upgrade_database(db, migrations=migrations)
    assert seen == [None] and report.after == SCHEMA_VERSION


# -- version 3: consent text sealed ---------------------------------------------------------

CLEAR_TEXT = "I, Testa Synthetica, PAN ABCDE1234F, agree to share my documents."


def version_2_with_clear_consents(url: str, count: int) -> None:
    """A database as version 2 left it: no text_fingerprint, consent texts in clear."""
    with database(url) as db:
        upgrade_database(db, migrations=MIGRATIONS[:2])
        drop_later_columns(db)
        for n in range(count):
            db.execute_sql(f'INSERT INTO "decentro_consent" ("user_id", "operation", "text", "purpose", "given_at") '
                           f"VALUES ({db.param}, 'pan', {db.param}, 'Customer onboarding KYC check', {db.param})",
                           (f"user-{n}", CLEAR_TEXT if n % 2 == 0 else f"Notice v2 for user {n}", NOW.replace(tzinfo=None)))


def test_version_3_adds_the_fingerprint_and_the_seal_command_seals_old_rows_resumably(empty_url: str) -> None:
    from decentro_adapters.sql.consent_sealing import seal_consent_texts
    from decentro_adapters.vault.fernet import FernetVault

    version_2_with_clear_consents(empty_url, 5)
    with database(empty_url) as db, pytest.raises(ConfigurationError, match="version 2; this code needs version 3"):
        check_database(db)
    assert upgrade(empty_url).applied == ("3 (consent text fingerprint)",)
    assert indexes(empty_url) == V3_INDEXES
    vault = FernetVault([FernetVault.generate_key()])
    with open_stores(empty_url, vault=vault, schema="check") as stores:
        assert [c.text for c in stores.consents.for_user("user-0")] == [CLEAR_TEXT]  # readable before sealing
        assert stores.consents.for_text(CLEAR_TEXT) == []  # not yet fingerprinted
        first = seal_consent_texts(stores, vault, batch_size=2, max_batches=1)
        assert (first.sealed, first.remaining, first.complete) == (2, 3, False)
        rest = seal_consent_texts(stores, vault, batch_size=2)
        assert (rest.sealed, rest.remaining, rest.complete) == (3, 0, True)
        assert seal_consent_texts(stores, vault).sealed == 0  # nothing is sealed twice
        stored = [row.text for row in stores.models.consent.select()]
        assert all(CLEAR_TEXT not in text and "Notice" not in text for text in stored)
        assert [c.text for c in stores.consents.for_user("user-0")] == [CLEAR_TEXT]
        assert sorted(c.user_id for c in stores.consents.for_text(CLEAR_TEXT)) == ["user-0", "user-2", "user-4"]


def test_refresh_recomputes_fingerprints_after_the_fingerprint_key_changed(empty_url: str) -> None:
    from decentro_adapters.sql.consent_sealing import seal_consent_texts
    from decentro_adapters.vault.fernet import FernetVault

    version_2_with_clear_consents(empty_url, 2)
    upgrade(empty_url)
    old, new = FernetVault.generate_key(), FernetVault.generate_key()
    with open_stores(empty_url, vault=FernetVault([old]), schema="check") as stores:
        seal_consent_texts(stores, FernetVault([old]))
    # Rotation done (texts re-sealed under new), the oldest key dropped: the fingerprint key changed.
    from decentro_adapters.vault.rotation import rotate_sealed_values

    with open_stores(empty_url, vault=FernetVault([new, old]), schema="check") as stores:
        assert rotate_sealed_values(stores, FernetVault([new, old])).unreadable == 0
    vault = FernetVault([new])
    with open_stores(empty_url, vault=vault, schema="check") as stores:
        assert stores.consents.for_text(CLEAR_TEXT) == []
        report = seal_consent_texts(stores, vault, refresh=True)
        assert (report.sealed, report.refreshed, report.remaining) == (0, 2, 0)
        assert [c.user_id for c in stores.consents.for_text(CLEAR_TEXT)] == ["user-0"]
