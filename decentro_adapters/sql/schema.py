"""Tables, connections and error mapping shared by the Peewee stores.

Models are built per database by :func:`build_models`, so two stores on two databases can
live in one process (tests do this) without peewee's global ``bind``. Connections come from
a pool and are held only for the length of one store call (:func:`session`), so any thread
may use a store and :meth:`Stores.close` can close every connection.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import peewee as pw
from playhouse.db_url import parse as parse_db_url
from playhouse.pool import MaxConnectionsExceeded, PooledDatabase, PooledPostgresqlDatabase, PooledSqliteDatabase

from decentro_core.errors import ConfigurationError, StoreError

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "LOCK_ORDER",
    "SCHEMA_VERSION",
    "Models",
    "Dialect",
    "build_models",
    "close_pool",
    "connect",
    "defer_check",
    "execute",
    "from_utc",
    "manual_transaction",
    "session",
    "sqlite_path",
    "to_utc",
    "write_transaction",
]

SCHEMA_VERSION = 3
"""The schema version this code reads and writes: the last entry of ``migrations.MIGRATIONS``."""
DEFAULT_SQLITE_PATH = os.path.join("instance", "decentro.sqlite3")
URL_VARIABLE = "DECENTRO_DATABASE_URL"
LOCK_ORDER = (
    "decentro_operation",
    "decentro_webhook_event",
    "decentro_outcome_event",
    "decentro_audit_event",
    "decentro_consent",
    "decentro_schema_version",
)
"""Every transaction that touches several tables locks them in this order (rows or whole
tables alike), migrations included, so no two transactions can wait on each other in a cycle.
The audit chain's appenders queue on an advisory lock taken at the audit table's place in
this order (``audit.APPEND_LOCK_KEY``). ``docs/persistence.md`` says who takes which lock."""
_POOL = {"max_connections": 32, "stale_timeout": 300, "timeout": 10}
_SQLITE_PRAGMAS = {"busy_timeout": 10_000, "journal_mode": "wal", "foreign_keys": 1, "synchronous": "normal"}
_SQLITE_WAIT = 10.0  # seconds, as busy_timeout


@dataclass(frozen=True)
class Models:
    schema: Any
    consent: Any
    audit: Any
    operation: Any
    webhook: Any
    event: Any

    def tables(self) -> list[Any]:
        return [self.consent, self.audit, self.operation, self.webhook, self.event]


def connect(url: str) -> pw.Database:
    """A pooled database for ``sqlite:///path`` or ``postgresql://...`` (empty: default file)."""
    url = url.strip() or "sqlite:///" + DEFAULT_SQLITE_PATH
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        return _sqlite(url)
    if scheme in {"postgres", "postgresql"}:
        params = parse_db_url(url, unquote_password=True, unquote_user=True)
        params.setdefault("connect_timeout", 10)
        database: pw.Database = _PostgresPool(params.pop("database"), **_POOL, **params)
        return database
    # Only the scheme is named: the URL may carry a password.
    raise ConfigurationError(f"{URL_VARIABLE}: unsupported scheme {scheme!r} (use sqlite:/// or postgresql://)")


class _PostgresPool(PooledPostgresqlDatabase):  # type: ignore[misc]
    """peewee's pool without the ``SELECT 1`` it sends on every checkout of an idle connection.

    That ping was a third of a KYC call's round trips. A connection the server dropped (a
    restart, an idle timeout) is found instead by its first statement failing, and that first
    statement alone is sent again on another connection (:func:`execute`): nothing of it ran.
    """

    def _is_closed(self, conn: Any) -> bool:
        if conn.closed:
            return True
        adapter = self._adapter
        status = adapter.txn_status(conn)
        if status == adapter.txn_unknown:
            return True
        if status != adapter.txn_idle:  # left in a transaction: roll it back, as the pool does
            try:
                adapter.rollback(conn)
            except Exception:  # noqa: BLE001 - a connection that cannot roll back is not reused
                return True
        return False


def sqlite_path(url: str) -> str | None:
    """The file a ``sqlite:///`` URL names (the default file for an empty URL); ``None`` otherwise."""
    url = url.strip() or "sqlite:///" + DEFAULT_SQLITE_PATH
    if urlsplit(url).scheme.lower() != "sqlite":
        return None
    return url.split("://", 1)[1][1:]


def _sqlite(url: str) -> pw.Database:
    path = sqlite_path(url) or ""
    if not path or path == ":memory:":
        raise ConfigurationError(
            f"{URL_VARIABLE}: an in-memory SQLite database is not shared between connections; "
            "use a file, or the stores of decentro_core.memory"
        )
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    _enable_wal(path)
    # Pooled connections move between threads, one thread at a time: sqlite3's check is moot.
    database: pw.Database = PooledSqliteDatabase(path, pragmas=_SQLITE_PRAGMAS, check_same_thread=False, **_POOL)
    return database


def _enable_wal(path: str) -> None:
    """Switch a new file to WAL once, before the pool's connections set it again (a no-op then).

    The switch needs an exclusive lock, and SQLite answers "database is locked" at once, without
    waiting out busy_timeout, when several processes switch a new file together (workers
    starting on a fresh demo database): so it is retried here for up to ``_SQLITE_WAIT``.
    """
    deadline = time.monotonic() + _SQLITE_WAIT
    while True:
        try:
            with closing(sqlite3.connect(path, timeout=_SQLITE_WAIT)) as conn:
                conn.execute("PRAGMA journal_mode = wal")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise ConfigurationError(f"{URL_VARIABLE}: the SQLite file cannot be opened ({exc})") from None
            time.sleep(0.02)


def close_pool(db: pw.Database) -> None:
    """Close every pooled connection (those of other threads too), or the one of a plain database."""
    if isinstance(db, PooledDatabase):
        db.close_all()
    else:
        db.close()


def execute(db: pw.Database, sql: str, params: Sequence[Any] = ()) -> Any:
    """Run precompiled SQL on this thread's connection; returns the DB-API cursor.

    The hot store methods use this instead of peewee's query builder, whose Python-side SQL
    generation cost several times what SQLite spends executing the statement.
    """
    state = db._state  # type: ignore[attr-defined]  # this thread's: the flag is about this thread's checkout
    if not getattr(state, _FIRST_STATEMENT, False):
        return db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
    setattr(state, _FIRST_STATEMENT, False)
    for _ in range(_POOL["max_connections"] + 1):
        try:
            return db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
        except (pw.OperationalError, pw.InterfaceError):
            conn = db.connection()  # type: ignore[no-untyped-call]
            if not getattr(conn, "closed", 0) or db.in_transaction():
                raise  # the connection is alive: a real error, not a dropped connection
            db.close()  # the pool discards a closed connection
            db.connect()  # another pooled one (it may be dropped too), or a new one
    return db.execute_sql(sql, params)  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Dialect:
    """What differs between SQLite and PostgreSQL in the stores' hand-written SQL."""

    sqlite: bool
    param: str

    @classmethod
    def of(cls, db: pw.Database) -> Dialect:
        return cls(sqlite=isinstance(db, pw.SqliteDatabase), param=str(db.param))

    def sql(self, text: str) -> str:
        """``text`` written with ``?`` placeholders, in this database's placeholder style."""
        return text if self.param == "?" else text.replace("?", self.param)

    def stored_time(self, value: datetime) -> datetime | str:
        """Naive UTC as the column holds it: SQLite text exactly as peewee wrote it, else a datetime."""
        naive = to_utc(value)
        return str(naive) if self.sqlite else naive


@contextmanager
def session(db: pw.Database) -> Iterator[None]:
    """Hold a pooled connection for one store call and turn driver errors into StoreError.

    A check deferred at start (the database was down, :func:`defer_check`) runs on the first
    connection that succeeds, before the call it opens."""
    opened = db.is_closed()
    try:
        if opened:
            db.connect()
            # A pooled connection is handed out unchecked (_PostgresPool): the first statement
            # finds a dropped one, and only it is retried.
            setattr(db._state, _FIRST_STATEMENT, isinstance(db, _PostgresPool))  # type: ignore[attr-defined]
        pending = getattr(db, _DEFERRED_CHECK, None)
        if pending is not None:
            setattr(db, _DEFERRED_CHECK, None)  # the check's own session must not run it again
            try:
                pending(db)  # a wrong schema raises ConfigurationError: nothing is served on it
            except BaseException:
                setattr(db, _DEFERRED_CHECK, pending)  # still unchecked (or wrong): every call asks again
                raise
        yield
    except (pw.PeeweeException, MaxConnectionsExceeded) as exc:
        # The driver's message may quote the failing row: only the class name leaves.
        raise StoreError(f"Database operation failed ({type(exc).__name__})") from exc
    finally:
        if opened and not db.is_closed():
            db.close()


_DEFERRED_CHECK = "_decentro_deferred_check"
_FIRST_STATEMENT = "_decentro_first_statement"


def defer_check(db: pw.Database, check: Callable[[pw.Database], object]) -> None:
    """Run ``check`` in the first :func:`session` whose connection succeeds."""
    setattr(db, _DEFERRED_CHECK, check)


@contextmanager
def manual_transaction(db: pw.Database) -> Iterator[None]:
    """A PostgreSQL transaction peewee does not see: its ``BEGIN`` and ``COMMIT`` travel inside
    the statement strings the block sends (so a round trip carries several statements). Any
    failure rolls it back here, before the connection returns to the pool."""
    try:
        yield
    except BaseException:
        try:
            execute(db, "ROLLBACK")
        except pw.PeeweeException:
            pass  # a broken connection: the server rolled back with it, the pool drops it
        raise


@contextmanager
def write_transaction(db: pw.Database, *, lock_table: str | None = None) -> Iterator[None]:
    """A transaction that serialises writers: SQLite ``BEGIN IMMEDIATE``, PostgreSQL a table lock."""
    if isinstance(db, pw.SqliteDatabase):
        with db.atomic("IMMEDIATE"):
            yield
        return
    with db.atomic():
        if lock_table is not None:
            execute(db, f'LOCK TABLE "{lock_table}" IN EXCLUSIVE MODE')
        yield


def to_utc(value: datetime) -> datetime:
    """Naive UTC for storage (a naive input is taken to be UTC already)."""
    if value.tzinfo is None:
        return value
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def from_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands back text for rows written by other tools
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def build_models(db: pw.Database) -> Models:
    """Model classes bound to ``db`` (see the module docstring for why not a global bind)."""

    class Base(pw.Model):
        class Meta:
            database = db
            legacy_table_names = False

    class SchemaVersion(Base):
        id = pw.IntegerField(primary_key=True)
        version = pw.IntegerField()

        class Meta:
            table_name = "decentro_schema_version"

    class Consent(Base):
        user_id = pw.CharField(max_length=255, index=True)
        operation = pw.CharField(max_length=64)
        text = pw.TextField()  # sealed; in clear only in rows from before version 3 (text_fingerprint NULL)
        purpose = pw.TextField()
        given_at = pw.DateTimeField()
        client_ip = pw.TextField(null=True)  # sealed when the store has a vault
        user_agent = pw.TextField(null=True)  # sealed when the store has a vault
        text_fingerprint = pw.CharField(max_length=64, null=True, index=True)  # version 3

        class Meta:
            table_name = "decentro_consent"

    class AuditRow(Base):
        id = pw.BigAutoField()
        actor = pw.TextField()
        action = pw.TextField()
        subject = pw.TextField()
        outcome = pw.TextField()
        # Kept as the exact ISO text that was hashed, so verify() recomputes the same hash.
        occurred_at = pw.TextField()
        operation_id = pw.CharField(max_length=255, null=True, index=True)
        reference_id = pw.CharField(max_length=255, null=True, index=True)
        row_hash = pw.CharField(max_length=64)

        class Meta:
            table_name = "decentro_audit_event"

    class Operation(Base):
        reference_id = pw.CharField(max_length=255, unique=True)
        operation = pw.CharField(max_length=64)
        status = pw.CharField(max_length=32)
        operation_id = pw.CharField(max_length=255, null=True, index=True)
        user_id = pw.CharField(max_length=255, null=True, index=True)
        sealed_request = pw.TextField(null=True)
        sealed_result = pw.TextField(null=True)
        created_at = pw.DateTimeField()
        updated_at = pw.DateTimeField(index=True)

        class Meta:
            table_name = "decentro_operation"

    class Webhook(Base):
        dedupe_key = pw.CharField(max_length=255, unique=True)
        sealed_body = pw.TextField()
        received_at = pw.DateTimeField(index=True)
        state = pw.CharField(max_length=16, index=True)
        attempts = pw.IntegerField(default=0)
        reference_id = pw.CharField(max_length=255, null=True, index=True)
        last_error = pw.TextField(null=True)

        class Meta:
            table_name = "decentro_webhook_event"

    class OutcomeEventRow(Base):
        """The outbox (``decentro_core.events``): no personal data, so nothing here is sealed."""

        id = pw.BigAutoField()
        event_key = pw.CharField(max_length=300, unique=True)
        type = pw.CharField(max_length=32)
        reference_id = pw.CharField(max_length=255, index=True)
        operation = pw.CharField(max_length=64)
        old_status = pw.CharField(max_length=32, null=True)
        new_status = pw.CharField(max_length=32)
        operation_id = pw.CharField(max_length=255, null=True)
        user_id = pw.CharField(max_length=255, null=True)
        occurred_at = pw.DateTimeField()
        state = pw.CharField(max_length=16)
        attempts = pw.IntegerField(default=0)
        next_attempt_at = pw.DateTimeField(null=True)
        leased_until = pw.DateTimeField(null=True)
        delivered_at = pw.DateTimeField(null=True)
        delivered_to = pw.TextField(default="")  # handler names, one per line
        last_error = pw.TextField(null=True)

        class Meta:
            table_name = "decentro_outcome_event"
            indexes = ((("state", "next_attempt_at"), False),)

    return Models(SchemaVersion, Consent, AuditRow, Operation, Webhook, OutcomeEventRow)
