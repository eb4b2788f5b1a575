"""Count PostgreSQL and Redis round trips for one KYC miss (``verify_pan`` with a new user).

PostgreSQL: every ``execute`` on a psycopg2 cursor (peewee's statements, its ``BEGIN`` and
``COMMIT``, the pool's ``SELECT 1`` liveness check on checkout) and every ``commit()`` or
``rollback()`` on the connection is one round trip; statements sent together in one ``execute``
are one. Redis: every command sent on its own, and every pipeline, is one.

Used by ``python -m bench`` (``pg_round_trips_per_kyc_miss``, ``redis_round_trips_per_kyc_miss``)
and by ``tests/adapters/test_round_trips.py``, which holds the count as an upper bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CountingRedis", "RoundTrips", "count_postgres", "kyc_hit_round_trips", "kyc_miss_round_trips"]


@dataclass
class RoundTrips:
    postgres: int = 0
    redis: int = 0
    statements: list[str] = field(default_factory=list)
    commits: int = 0
    """``COMMIT``s, explicit or implied: a write sent outside ``BEGIN`` commits on its own."""
    in_transaction: bool = False

    def reset(self) -> None:
        self.postgres = self.redis = self.commits = 0
        self.statements.clear()

    def saw(self, sql: str) -> None:
        self.postgres += 1
        self.statements.append(sql)
        implicit = False  # writes sent outside BEGIN in one string share one implicit transaction
        for statement in filter(None, (part.strip().upper() for part in sql.split(";"))):
            if statement.startswith("BEGIN"):
                self.in_transaction = True
            elif statement.startswith(("COMMIT", "ROLLBACK")):
                self.commits += statement.startswith("COMMIT")
                self.in_transaction = False
            elif statement.startswith(("INSERT", "UPDATE", "DELETE", "WITH")) and not self.in_transaction:
                implicit = True
        self.commits += implicit


def _counting_connection(counter: RoundTrips) -> type:
    import psycopg2.extensions

    class Cursor(psycopg2.extensions.cursor):  # type: ignore[misc]
        def execute(self, query: Any, vars: Any = None) -> Any:
            counter.saw(query if isinstance(query, str) else query.decode())
            return super().execute(query, vars)

    class Connection(psycopg2.extensions.connection):  # type: ignore[misc]
        def cursor(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("cursor_factory", Cursor)
            return super().cursor(*args, **kwargs)

        def commit(self) -> None:
            counter.saw("COMMIT")
            super().commit()

        def rollback(self) -> None:
            counter.saw("ROLLBACK")
            super().rollback()

    return Connection


@contextmanager
def count_postgres(database: Any, counter: RoundTrips) -> Iterator[None]:
    """New connections of ``database`` (a peewee pooled PostgreSQL database) count into ``counter``."""
    from decentro_adapters.sql.schema import close_pool

    close_pool(database)  # connections made before do not count: drop them
    database.connect_params["connection_factory"] = _counting_connection(counter)
    try:
        yield
    finally:
        close_pool(database)
        database.connect_params.pop("connection_factory", None)


def CountingRedis(url: str, counter: RoundTrips) -> Any:  # noqa: N802 - a class made on demand
    """A ``redis.Redis`` whose single commands and pipelines each count one round trip."""
    import redis
    from redis.client import Pipeline

    class CountingPipeline(Pipeline):  # type: ignore[misc]
        def execute(self, raise_on_error: bool = True) -> Any:
            if self.command_stack:
                counter.redis += 1
            return super().execute(raise_on_error)

    class Client(redis.Redis):  # type: ignore[misc]
        def execute_command(self, *args: Any, **options: Any) -> Any:
            counter.redis += 1
            return super().execute_command(*args, **options)

        def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
            return CountingPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)

    return Client.from_url(url, socket_connect_timeout=1.0, socket_timeout=1.0)


def kyc_miss_round_trips(service: Any, database: Any, counter: RoundTrips, *, misses: int = 1,
                         pan: str = "ABCDE1234F", label: str = "rt") -> RoundTrips:
    """Round trips of ``misses`` KYC misses (after one uncounted warm-up), per miss."""
    result = service.verify_pan(pan, user_id=f"{label}-warmup")
    assert result["status"] == "SUCCESS", result
    with count_postgres(database, counter):
        service.verify_pan(pan, user_id=f"{label}-warmup-2")  # the pool's first connection
        counter.reset()
        for n in range(misses):
            result = service.verify_pan(pan, user_id=f"{label}-{n}")
            assert result["status"] == "SUCCESS" and not result["data"].get("cached"), result
    return counter


def kyc_hit_round_trips(service: Any, database: Any, counter: RoundTrips, *, hits: int = 1,
                        pan: str = "ABCDE1234F", label: str = "rt-hit") -> RoundTrips:
    """Round trips of ``hits`` KYC cache hits (the consent row and the audit row), after the miss
    that fills the cache and one uncounted hit."""
    user = f"{label}-user"
    assert not service.verify_pan(pan, user_id=user)["data"].get("cached")
    with count_postgres(database, counter):
        assert service.verify_pan(pan, user_id=user)["data"].get("cached") is True
        counter.reset()
        for _ in range(hits):
            result = service.verify_pan(pan, user_id=user)
            assert result["data"].get("cached") is True, result
    return counter
