"""Shared fixtures: real PostgreSQL and Redis when reachable.

A test that needs a service skips with a loud reason when it is unreachable, except under
``DECENTRO_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where a missing service fails the test.
Each test gets its own PostgreSQL database or Redis key prefix and leaves nothing behind.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _unavailable(service: str, reason: str) -> None:
    message = f"{service} UNAVAILABLE, test not run: {reason}"
    if os.environ.get("DECENTRO_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (DECENTRO_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reads the developer's Decentro settings, and the default SQLite file is temporary."""
    for name in list(os.environ):
        if (name.startswith("DECENTRO_") and not name.startswith("DECENTRO_TEST_")
                and name != "DECENTRO_REQUIRE_SERVICES") or name in {"USE_MOCKS", "DATABASE_URL"}:
            monkeypatch.delenv(name, raising=False)
    for name in ("WEB_CONCURRENCY", "GUNICORN_CMD_ARGS"):  # what the limiter reads as "several processes"
        monkeypatch.delenv(name, raising=False)
    db = tmp_path_factory.mktemp("db") / "decentro.sqlite3"
    monkeypatch.setenv("DECENTRO_DATABASE_URL", f"sqlite:///{db}")


@pytest.fixture
def postgres_url(empty_postgres_url: str) -> str:
    """A fresh PostgreSQL database at this code's schema version, as a deploy leaves it.

    Serving code only checks the schema version (``open_stores`` never runs DDL on
    PostgreSQL), so the test database is upgraded first, as ``decentro-db upgrade`` would.
    """
    from decentro_adapters.sql.migrations import upgrade

    upgrade(empty_postgres_url)
    return empty_postgres_url


@pytest.fixture
def empty_postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database (no tables) for this test, dropped afterwards."""
    try:
        import psycopg2
    except ImportError as exc:  # pragma: no cover - dev extra missing
        _unavailable("PostgreSQL", f"psycopg2 not installed ({exc})")
    admin_url = os.environ.get("DECENTRO_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    try:
        admin = psycopg2.connect(admin_url, connect_timeout=3)
    except psycopg2.Error as exc:
        _unavailable("PostgreSQL", f"{admin_url}: {str(exc).strip()}")
    admin.autocommit = True
    name = "decentro_test_" + secrets.token_hex(6)
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The Redis URL; the test must use the ``redis_prefix`` fixture for its keys."""
    try:
        import redis
    except ImportError as exc:  # pragma: no cover - dev extra missing
        _unavailable("Redis", f"redis-py not installed ({exc})")
    url = os.environ.get("DECENTRO_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable("Redis", f"{url}: {exc}")
    finally:
        client.close()
    yield url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A unique key prefix; every key under it is deleted after the test."""
    import redis

    prefix = f"decentro-test-{secrets.token_hex(6)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _demo_warnings_reset() -> Iterator[None]:
    """The demo warnings are given once per process: each test starts (and leaves) a fresh one."""
    from decentro_core.demo import forget_warnings

    forget_warnings()
    yield
    forget_warnings()


class SilentRedis:
    """A TCP port that accepts connections and never answers: a Redis cut off mid-network
    (a blackhole), where every call waits for its timeout. ``connections`` counts the accepts."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self._listener.getsockname()[1]}/0"
        self.connections = 0
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.connections += 1
            self._held.append(conn)  # kept open, never read from nor written to

    def close(self) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self._listener.close()
        for conn in self._held:
            conn.close()
        self._thread.join(timeout=30)


@pytest.fixture
def silent_redis() -> Iterator[SilentRedis]:
    server = SilentRedis()
    yield server
    server.close()


@pytest.fixture
def closed_redis_url() -> str:
    """A Redis URL on a local port nobody listens on (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def _answered_within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()``'s result (or its exception), failing instead of hanging past a generous ``seconds``."""
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as exc:  # handed to the test's thread
            outcome.append((False, exc))

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=seconds)
    assert outcome, f"no answer within {seconds} s"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


@pytest.fixture
def within() -> Callable[[float, Callable[[], Any]], Any]:
    """``within(seconds, call)``: a hang bound for calls that must answer (generous, never a target)."""
    return _answered_within
