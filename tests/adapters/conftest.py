"""Backends shared by the contract tests: the in-memory fake and each real database."""

from __future__ import annotations

from pathlib import Path

import pytest

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/decentro.sqlite3"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty real database of each kind: a SQLite file, a fresh PostgreSQL database."""
    return _url(request, tmp_path)


@pytest.fixture(params=["memory", *DATABASES])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """``None`` for the in-memory fake, else the URL of an empty real database."""
    return None if request.param == "memory" else _url(request, tmp_path)
