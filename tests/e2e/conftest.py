"""End-to-end fixtures: the example app as a real server in a subprocess, and Debian's Chromium.

``run_example_app()`` starts ``flask --app example_app run --port 0`` (the README's demo
command, on a port the kernel picks) with a temporary SQLite file, fresh Fernet keys and mock
mode, waits until ``/`` answers, and always stops the process and removes its directory.
The browser is ``DECENTRO_CHROMIUM`` or ``/usr/bin/chromium``; without it the browser tests
skip loudly, or fail under ``DECENTRO_REQUIRE_SERVICES=1`` (as the services do).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from decentro_adapters.vault.fernet import FernetVault

REPO = Path(__file__).resolve().parents[2]
E2E_WEBHOOK_SECRET = "e2e-webhook-secret-synthetic"
# Limits, not expected durations: every wait polls a state and a busy 2-core CI machine may be
# slow to start Python, Flask or Chromium. They only bound a hang.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0
ANSWER_TIMEOUT = 10.0  # one readiness probe; probing repeats until START_TIMEOUT
BROWSER_LAUNCH_MS = 120_000
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
_RUNNING_ON = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")


def _unavailable(service: str, reason: str) -> None:
    # Same rule as tests/conftest.py (not importable from here: every conftest is "conftest").
    message = f"{service} UNAVAILABLE, test not run: {reason}"
    if os.environ.get("DECENTRO_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (DECENTRO_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@dataclass(frozen=True)
class RunningApp:
    """A started example app: where it answers and what it logged so far."""

    base_url: str
    log_path: Path
    webhook_secret: str | None  # None: unset, the demo's public fallback applies
    encryption_key: str = ""  # the server's DECENTRO_ENCRYPTION_KEYS (its keyed hashes are derived from it)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _server_environment(workdir: Path, webhook_secret: str | None, encryption_key: str) -> dict[str, str]:
    """The caller's environment without any Decentro/Flask settings, plus the demo's own."""
    env = {
        name: value for name, value in os.environ.items()
        if not name.startswith(("DECENTRO_", "FLASK_", "WERKZEUG_")) and name not in {"USE_MOCKS", "DATABASE_URL"}
    }
    env.update(
        USE_MOCKS="true",
        DECENTRO_DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}",
        DECENTRO_ENCRYPTION_KEYS=encryption_key,
        PYTHONUNBUFFERED="1",  # the "Running on" line must reach the log file at once
    )
    if webhook_secret is not None:  # None: unset, so mock mode falls back to the demo secret
        env["DECENTRO_WEBHOOK_SECRET"] = webhook_secret
    return env


def _flask_command() -> list[str]:
    # The README runs `.venv/bin/flask --app example_app run`; use that script when present.
    script = Path(sys.executable).with_name("flask")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "flask"]
    return [*base, "--app", "example_app", "run", "--host", "127.0.0.1", "--port", "0"]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=ANSWER_TIMEOUT) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_answering(process: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"example app exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        found = _RUNNING_ON.search(log_path.read_text(encoding="utf-8", errors="replace"))
        if found and _answers(found.group(1) + "/"):
            return found.group(1)
        time.sleep(0.1)
    pytest.fail(f"example app did not answer within {START_TIMEOUT}s:\n{log_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def run_example_app(*, webhook_secret: str | None = E2E_WEBHOOK_SECRET,
                    environment: dict[str, str] | None = None) -> Iterator[RunningApp]:
    """The example app serving on 127.0.0.1 until the block ends; nothing left behind.
    ``environment`` adds (or overrides) variables of the server's environment."""
    with tempfile.TemporaryDirectory(prefix="decentro-e2e-") as tmp:
        workdir = Path(tmp)
        log_path = workdir / "server.log"
        key = FernetVault.generate_key()
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                _flask_command(), cwd=REPO, env={**_server_environment(workdir, webhook_secret, key), **(environment or {})},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
            try:
                yield RunningApp(_wait_until_answering(process, log_path), log_path, webhook_secret, key)
            finally:
                _stop(process)


@pytest.fixture(scope="module")
def example_app_server() -> Iterator[RunningApp]:
    """The example app with a configured (non-demo) webhook secret, shared by a module."""
    with run_example_app() as app:
        yield app


@pytest.fixture(scope="module")
def walk_server() -> Iterator[RunningApp]:
    """The example app for the browser walks: each walk makes more KYC calls than the default
    10 per minute per address allows, and every page comes from 127.0.0.1."""
    with run_example_app(environment={"DECENTRO_RATELIMIT": "200 per minute",
                                      "DECENTRO_STATUS_RATELIMIT": "600 per minute"}) as app:
        yield app


@pytest.fixture
def demo_server() -> Iterator[RunningApp]:
    """The example app as the docs run it: no webhook secret set (public demo fallback)."""
    with run_example_app(webhook_secret=None) as app:
        yield app


def chromium_path() -> str | None:
    path = os.environ.get("DECENTRO_CHROMIUM", "/usr/bin/chromium")
    return path if os.access(path, os.X_OK) else None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium driven by Playwright (never Playwright's own download)."""
    path = chromium_path()
    if path is None:
        _unavailable("Chromium", "no executable at $DECENTRO_CHROMIUM or /usr/bin/chromium "
                                 "(apt-get install -y chromium)")
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:  # pragma: no cover - dev extra missing
        _unavailable("Chromium", f"playwright not installed ({exc})")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS,
                                                  timeout=BROWSER_LAUNCH_MS)
        except Error as exc:
            _unavailable("Chromium", f"{path} did not start: {str(exc).splitlines()[0]}")
        try:
            yield launched
        finally:
            launched.close()
