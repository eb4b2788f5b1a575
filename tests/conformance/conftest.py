"""Conformance fixtures: Decentro's official SDKs (each in its own venv) against ``decentro-sandbox``.

PyPI counts as a required service: when an SDK cannot be installed the tests skip loudly, or
fail under ``DECENTRO_REQUIRE_SERVICES=1`` (as PostgreSQL and Redis do). The environments are
built once and reused across sessions (:mod:`conformance_venv`); the sandbox runs as the
``decentro-sandbox`` command on a free loopback port for the whole session; each SDK's driver
runs once and every test reads its records.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conformance_venv import PackageIndexUnavailable, SdkEnv, sdk_env

from decentro_sandbox.sandbox import DEFAULT_CREDENTIALS

HERE = Path(__file__).resolve().parent
DRIVER_TIMEOUT = 300
START_TIMEOUT = 30


def _unavailable(service: str, reason: str) -> None:
    # Same rule as tests/conftest.py (not importable from here: every conftest is "conftest").
    message = f"{service} UNAVAILABLE, test not run: {reason}"
    if os.environ.get("DECENTRO_REQUIRE_SERVICES") == "1":
        pytest.fail(message + " (DECENTRO_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def conformance_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("DECENTRO_TEST_CONFORMANCE_DIR")
    if configured:
        return Path(configured)
    return tmp_path_factory.getbasetemp().parent / "decentro-conformance"  # pytest's root, kept across runs


def _env(name: str, cache: Path) -> SdkEnv:
    try:
        return sdk_env(name, cache)
    except PackageIndexUnavailable as exc:
        _unavailable("PyPI", str(exc))
        raise  # unreachable: _unavailable always raises


def _sandbox_command() -> list[str]:
    script = Path(sys.executable).with_name("decentro-sandbox")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "decentro_sandbox.sandbox"]
    return command + ["--host", "127.0.0.1", "--port", "0", "--seed", "12"]


@pytest.fixture(scope="session")
def sandbox_url() -> Iterator[str]:
    """``decentro-sandbox`` with its default credentials, in a subprocess, on a free port."""
    process = subprocess.Popen(_sandbox_command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # printed once the socket is bound
        if not line.startswith("Decentro sandbox listening on http://127.0.0.1:"):
            stderr = process.stderr.read() if process.stderr and process.poll() is not None else ""
            pytest.fail(f"decentro-sandbox did not start: {line!r} {stderr[-2000:]}")
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _drive(env: SdkEnv, driver: str, url: str) -> dict[str, Any]:
    creds = DEFAULT_CREDENTIALS
    command = [str(env.python), str(HERE / "drivers" / driver), "--url", url, "--client-id", creds.client_id,
               "--client-secret", creds.client_secret, "--module-secret", creds.module_secrets["kyc"],
               "--provider-secret", str(creds.provider_secret)]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run(command, capture_output=True, text=True, timeout=DRIVER_TIMEOUT, env=clean)
    if done.returncode != 0 or not done.stdout.strip():
        pytest.fail(f"{driver} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def kyc_run(conformance_cache: Path, sandbox_url: str) -> dict[str, Any]:
    return _drive(_env("kyc", conformance_cache), "kyc_driver.py", sandbox_url)


@pytest.fixture(scope="session")
def collections_run(conformance_cache: Path, sandbox_url: str) -> dict[str, Any]:
    return _drive(_env("collections", conformance_cache), "collections_driver.py", sandbox_url)
