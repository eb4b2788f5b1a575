"""The schema version check a serving process runs at start: one read, no DDL.

:func:`check_database` reads the version row once and refuses, with a message that says what
to do, a database that is behind this code (run the upgrade), ahead of it (this code is older
than the database) or has no version at all. It never creates or alters anything, so starting
a worker takes no lock a busy table could be holding (``migrations.py`` changes the schema,
at deploy time).
"""

from __future__ import annotations

import peewee as pw

from decentro_core.errors import ConfigurationError

from .schema import LOCK_ORDER, SCHEMA_VERSION, execute, session

__all__ = ["UPGRADE_HINT", "VERSION_TABLE", "check_database", "driver_error", "read_version", "refuse"]

UPGRADE_HINT = "run `flask decentro db upgrade` or `decentro-db upgrade`"
VERSION_TABLE = LOCK_ORDER[-1]
_READ_VERSION = f'SELECT "version" FROM "{VERSION_TABLE}" WHERE "id" = 1'


def read_version(db: pw.Database) -> int | None:
    """The recorded version (one SELECT); ``None`` when the version table or row is missing."""
    with session(db):
        try:
            row = execute(db, _READ_VERSION).fetchone()
        except pw.DatabaseError as exc:
            if not _missing_table(exc):
                raise
            return None
    return None if row is None else int(row[0])


def driver_error(exc: pw.DatabaseError) -> object:
    """The DB-API exception peewee wrapped (``orig``; it is also the implicit context)."""
    return getattr(exc, "orig", None) or exc.__context__ or exc


def _missing_table(exc: pw.DatabaseError) -> bool:
    cause = driver_error(exc)
    return getattr(cause, "pgcode", None) == "42P01" or "no such table" in str(cause)


def refuse(version: int | None, latest: int) -> None:
    if version is None:
        raise ConfigurationError(
            f"The database has no Decentro schema version: {UPGRADE_HINT} before starting the application."
        )
    if version < latest:
        raise ConfigurationError(
            f"The database schema is version {version}; this code needs version {latest}: "
            f"{UPGRADE_HINT} before starting the application."
        )
    if version > latest:
        raise ConfigurationError(
            f"The database schema is version {version}, newer than the {latest} this code knows: this code is "
            "older than the database. Deploy the flask-decentro release that upgraded it; never downgrade by hand."
        )


def check_database(db: pw.Database, *, latest: int = SCHEMA_VERSION) -> int:
    """Refuse (``ConfigurationError``) unless the database is at ``latest``; no DDL, one read."""
    version = read_version(db)
    refuse(version, latest)
    return latest
