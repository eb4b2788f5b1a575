"""Versioned schema migrations: the schema changes at deploy time, never as a side effect of serving.

A deploy runs :func:`upgrade` once (``decentro-db upgrade`` or ``flask decentro db upgrade``)
before the new code serves. It holds one lock for the whole run (PostgreSQL
``pg_advisory_lock``; SQLite: each step is a ``BEGIN IMMEDIATE`` transaction that re-reads the
version), so concurrent upgrades queue and the later ones find nothing to do. Every step is its
own transaction with a short ``lock_timeout``: a step that cannot lock a busy table gives up
instead of stalling every writer queued behind its lock.

A serving process runs :func:`check_database` (``open_stores(schema="check")``): one read of
the version row, no DDL, and a :class:`~decentro_core.errors.ConfigurationError` that says what
to do when the database is behind or ahead of the code. Starting a worker thus never locks a
busy table, which is what let a worker start deadlock with ``apply_callback`` before.

Writing migration N+1: append ``Migration(N + 1, "what it does", apply)`` to
:data:`MIGRATIONS`, raise ``schema.SCHEMA_VERSION`` to N+1, touch tables in
``schema.LOCK_ORDER`` and never edit a released migration. ``apply`` receives a
:class:`MigrationContext` whose ``migrator`` is peewee's ``playhouse.migrate`` migrator::

    def _add_channel(ctx: MigrationContext) -> None:
        migrate(ctx.migrator.add_column("decentro_operation", "channel", pw.CharField(null=True)))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

import logging

import peewee as pw
from playhouse.migrate import SchemaMigrator, migrate

from decentro_core.errors import ConfigurationError, StoreError

from .schema import LOCK_ORDER, defer_check, SCHEMA_VERSION, Models, build_models, close_pool, connect, execute, session, sqlite_path
from .schema_version import UPGRADE_HINT, VERSION_TABLE, check_database, driver_error, read_version, refuse

__all__ = [
    "MIGRATIONS",
    "UPGRADE_HINT",
    "Migration",
    "MigrationContext",
    "SchemaMode",
    "SchemaStatus",
    "UpgradeReport",
    "check",
    "check_database",
    "prepare_schema",
    "read_version",
    "schema_check_deferred",
    "status",
    "status_of_database",
    "upgrade",
    "upgrade_database",
]

log = logging.getLogger("decentro")

SchemaMode = Literal["check", "auto", "upgrade"]
SchemaState = Literal["empty", "unversioned", "behind", "current", "ahead"]
DEFAULT_LOCK_TIMEOUT = 5.0
_LOCK_KEY = 0x0DEC_E471_0000_0001  # pg_advisory_lock key: one upgrade at a time per database


@dataclass(frozen=True)
class MigrationContext:
    """What a migration works with: the database, its models and a ``playhouse.migrate`` migrator."""

    database: pw.Database
    models: Models
    migrator: SchemaMigrator


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Callable[[MigrationContext], None]

    @property
    def label(self) -> str:
        return f"{self.version} ({self.name})"


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database stands: ``current`` is ``None`` when no version is recorded."""

    state: SchemaState
    current: int | None
    latest: int
    pending: tuple[str, ...]

    def summary(self) -> str:
        found = "none recorded" if self.current is None else str(self.current)
        text = f"schema version {found}, this code needs {self.latest}: {self.state}"
        if self.state == "ahead":
            return text + " (this code is older than the database)"
        return text + (f"; pending: {', '.join(self.pending)}" if self.pending else "")


@dataclass(frozen=True)
class UpgradeReport:
    """What :func:`upgrade` did: ``stamped`` means an existing unversioned schema was recognised."""

    before: int | None
    after: int
    applied: tuple[str, ...]
    stamped: bool

    def summary(self) -> str:
        parts = ["existing schema recognised as version 1 and stamped"] if self.stamped else []
        if self.applied:
            parts.append(f"applied {', '.join(self.applied)}")
        if not parts:
            return f"schema already at version {self.after}: nothing to do"
        return "; ".join(parts) + f"; schema now at version {self.after}"


def _initial_tables(ctx: MigrationContext) -> None:
    """Version 1: the tables and indexes the library created up to 0.1.0, with the same names.

    Creates only what is missing, so it also completes an unversioned database when stamping.
    """
    later, existing = {ctx.models.event}, set(ctx.database.get_tables())  # later: created by later migrations
    for model in _in_lock_order(ctx.models):
        if model not in later:
            _ensure_table(ctx, model, existing)


def _outcome_events(ctx: MigrationContext) -> None:
    """Version 2: the outbox of outcome events (``decentro_outcome_event``), a new table only."""
    _ensure_table(ctx, ctx.models.event, set(ctx.database.get_tables()))


def _consent_text_fingerprint(ctx: MigrationContext) -> None:
    """Version 3: ``decentro_consent.text_fingerprint`` and its index. Schema only: a migration
    holds no vault key, so the clear texts of older rows are sealed by the explicit, resumable
    ``flask decentro seal-consents`` (:mod:`decentro_adapters.sql.consent_sealing`)."""
    model = ctx.models.consent
    table, column = model._meta.table_name, model.text_fingerprint
    if column.column_name not in {c.name for c in ctx.database.get_columns(table)}:  # a new table has it
        migrate(ctx.migrator.add_column(table, column.column_name, pw.CharField(max_length=64, null=True)))
    _ensure_table(ctx, model, {table})  # the column's index


def _ensure_table(ctx: MigrationContext, model: Any, existing: set[str]) -> None:
    """Create ``model``'s table with its indexes, or add the indexes an ``existing`` one lacks."""
    db, table = ctx.database, model._meta.table_name
    if table not in existing:
        model.create_table(safe=False)  # the table and its indexes
        return
    present = {index.name for index in db.get_indexes(table)}
    columns = {column.name for column in db.get_columns(table)}
    for index in model._meta.fields_to_index():
        # An index over a column a later migration adds waits for that migration.
        indexed = {getattr(e, "column_name", None) for e in index._expressions}
        if index._name not in present and indexed <= columns:
            db.execute(model._schema._create_index(index, safe=False))  # type: ignore[no-untyped-call]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial tables", _initial_tables),
    Migration(2, "outcome events outbox", _outcome_events),
    Migration(3, "consent text fingerprint", _consent_text_fingerprint),
)
LATER_COLUMNS = {"decentro_consent": {"text_fingerprint"}}
"""Columns added by migrations after version 1: an unversioned (0.1.0) schema lacks them."""


def _in_lock_order(models: Models) -> list[Any]:
    by_table = {m._meta.table_name: m for m in [*models.tables(), models.schema]}
    return [by_table[table] for table in LOCK_ORDER]


_CHECK_DEFERRED: ContextVar[bool] = ContextVar("decentro_schema_check_deferred", default=False)


@contextmanager
def schema_check_deferred() -> Iterator[None]:
    """While ``flask decentro db ...`` loads the app to read its settings, the app's stores open
    without looking at the schema: the command is there to inspect or upgrade it."""
    token = _CHECK_DEFERRED.set(True)
    try:
        yield
    finally:
        _CHECK_DEFERRED.reset(token)


def check_when_reachable(db: pw.Database) -> None:
    """The serving check; a database that cannot be reached now is checked on first use instead.

    A worker starting during a database outage (a reload, a replaced worker) must not fail to
    boot: gunicorn stops the whole server when one does. It starts, answers 503 while the
    database is away, and checks the schema on the first connection that succeeds
    (:func:`~decentro_adapters.sql.schema.session`); a wrong schema is refused then.
    """
    try:
        check_database(db)
    except StoreError as exc:
        log.error("decentro: the database is unreachable at start (%s); its schema is checked on first use",
                  type(exc.__cause__ or exc).__name__)
        defer_check(db, check_database)


def prepare_schema(db: pw.Database, url: str, mode: SchemaMode) -> None:
    """What :func:`~decentro_adapters.sql.stores.open_stores` does to the schema before serving.

    ``check``: :func:`check_database` only. ``upgrade``: :func:`upgrade_database` (scripts and
    tests that own the database). ``auto``: upgrade the embedded demo default (an empty URL) and
    a SQLite database that has no Decentro table yet; check everything else, PostgreSQL always.
    """
    if mode not in ("check", "auto", "upgrade"):
        raise ValueError(f"schema mode must be 'check', 'auto' or 'upgrade', not {mode!r}")
    if _CHECK_DEFERRED.get():
        return
    if mode == "upgrade":
        upgrade_database(db)
    elif mode == "check" or sqlite_path(url) is None:
        check_when_reachable(db)
    elif not url.strip():
        upgrade_database(db)
    else:
        version = read_version(db)  # a started database: this one read is all
        if version is not None:
            refuse(version, SCHEMA_VERSION)
            return
        # No version yet: look at tables and version together, since another starter may have
        # created the file between our two reads (then it is current, not unversioned).
        found = status_of_database(db)
        if found.state == "empty":
            upgrade_database(db)  # starters queue in the upgrade, which looks again under its lock
        elif found.state != "current":
            refuse(found.current, SCHEMA_VERSION)


# -- deploy: status and upgrade -------------------------------------------------------------


def _state(db: pw.Database, latest: int) -> tuple[SchemaState, int | None]:
    tables = set(db.get_tables())
    version = read_version(db) if VERSION_TABLE in tables else None
    if version is None:
        return ("unversioned" if tables & set(LOCK_ORDER[:-1]) else "empty"), None
    if version == latest:
        return "current", version
    return ("behind" if version < latest else "ahead"), version


def status_of_database(db: pw.Database, *, migrations: Sequence[Migration] = MIGRATIONS) -> SchemaStatus:
    latest = migrations[-1].version
    with session(db):
        state, version = _state(db, latest)
    pending = () if state == "ahead" else tuple(m.label for m in migrations if m.version > (version or 0))
    return SchemaStatus(state=state, current=version, latest=latest, pending=pending)


def upgrade_database(
    db: pw.Database, *, migrations: Sequence[Migration] = MIGRATIONS, lock_timeout: float = DEFAULT_LOCK_TIMEOUT
) -> UpgradeReport:
    """Apply the pending migrations in order, one transaction each (all in one for an empty
    database), under the deploy lock."""
    _validate(migrations)
    latest = migrations[-1].version
    context = MigrationContext(db, build_models(db), SchemaMigrator.from_database(db))
    start: SchemaState | None = None
    before: int | None = None
    applied: list[str] = []
    with session(db), _deploy_lock(db):
        while True:
            with _step(db, lock_timeout):
                state, version = _state(db, latest)
                if start is None:
                    start, before = state, version
                if state == "ahead":
                    refuse(version, latest)
                if state == "unversioned":
                    _verify_columns(context)
                pending = [m for m in migrations if m.version > (version or 0)]
                if not pending:
                    break
                # A new database gets every step in one transaction, so a process starting on it
                # at the same moment never sees it half-built (a version behind the code).
                for step in pending if state == "empty" else pending[:1]:
                    step.apply(context)
                    _write_version(db, step.version)
                    if state != "unversioned":
                        applied.append(step.label)
    return UpgradeReport(before=before, after=latest, applied=tuple(applied), stamped=start == "unversioned")


def _validate(migrations: Sequence[Migration]) -> None:
    if [m.version for m in migrations] != list(range(1, len(migrations) + 1)):
        raise ValueError("migrations must be numbered 1, 2, 3... in order")
    if migrations[0].apply is not _initial_tables:
        raise ValueError("migration 1 must be the initial tables")


def _verify_columns(ctx: MigrationContext) -> None:
    """Stamping trusts an unversioned schema only if every version-1 column is already there."""
    existing = set(ctx.database.get_tables())
    missing = [
        f"{table}.{column}"
        for model in _in_lock_order(ctx.models)
        if (table := model._meta.table_name) in existing
        for column in _columns(model) - LATER_COLUMNS.get(table, set()) - {c.name for c in ctx.database.get_columns(table)}
    ]
    if missing:
        raise ConfigurationError(
            "The database has Decentro tables but no schema version, and they lack version 1's columns "
            f"({', '.join(missing)}): restore it or repair it by hand; upgrade will not guess."
        )


def _columns(model: Any) -> set[str]:
    return {field.column_name for field in model._meta.sorted_fields}


def _write_version(db: pw.Database, version: int) -> None:
    sql = (f'INSERT INTO "{VERSION_TABLE}" ("id", "version") VALUES (1, {db.param}) '
           'ON CONFLICT ("id") DO UPDATE SET "version" = excluded."version"')
    execute(db, sql, (version,))


@contextmanager
def _deploy_lock(db: pw.Database) -> Iterator[None]:
    """PostgreSQL: a session advisory lock for the whole upgrade (SQLite: see :func:`_step`)."""
    if isinstance(db, pw.SqliteDatabase):
        yield
        return
    execute(db, "SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        yield
    finally:
        try:
            execute(db, "SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
        except pw.DatabaseError:  # a broken connection: the server released the lock with it
            db.close()


@contextmanager
def _step(db: pw.Database, lock_timeout: float) -> Iterator[None]:
    """One migration's transaction; it may wait at most ``lock_timeout`` for a table lock."""
    if isinstance(db, pw.SqliteDatabase):
        with db.atomic("IMMEDIATE"):  # the write lock, until this step commits
            yield
        return
    try:
        with db.atomic():
            execute(db, "SELECT set_config('lock_timeout', %s, true)", (f"{int(lock_timeout * 1000)}ms",))
            yield
    except pw.OperationalError as exc:
        if getattr(driver_error(exc), "pgcode", None) != "55P03":  # lock_not_available
            raise
        raise StoreError(
            f"A schema upgrade step could not lock its tables within {lock_timeout:g} s (the application is "
            "using them); that step was rolled back. Run the upgrade again, or with a longer lock timeout."
        ) from exc


# -- by URL ---------------------------------------------------------------------------------


@contextmanager
def _database(database_url: str) -> Iterator[pw.Database]:
    db = connect(database_url)
    try:
        yield db
    finally:
        close_pool(db)


def upgrade(database_url: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> UpgradeReport:
    """Bring the database at ``database_url`` to this code's schema version (the deploy step)."""
    with _database(database_url) as db:
        return upgrade_database(db, lock_timeout=lock_timeout)


def status(database_url: str) -> SchemaStatus:
    """Where the database at ``database_url`` stands; changes nothing."""
    with _database(database_url) as db:
        return status_of_database(db)


def check(database_url: str) -> int:
    """:func:`check_database` by URL: the version, or ``ConfigurationError`` saying what to do."""
    with _database(database_url) as db:
        return check_database(db)
