"""Shared pieces of the benchmarks: the sandbox, live settings, timing, services, RSS.

Everything runs on 127.0.0.1. PostgreSQL databases and Redis prefixes made here are unique
per run and removed at the end (:func:`postgres_database`, :func:`redis_prefix`).
"""

from __future__ import annotations

import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from decentro_core.settings import Settings

__all__ = [
    "PAN_PATH",
    "interleaved",
    "live_settings",
    "median_ratio",
    "pan_body",
    "pan_for",
    "postgres_database",
    "raw_headers",
    "redis_prefix",
    "redis_url",
    "rss_kib",
    "sandbox_credentials",
    "sandbox_env",
    "sandbox_process",
    "sandbox_stats",
    "spread",
]

PAN_PATH = "/kyc/public_registry/validate"
PURPOSE = "Customer identity verification for onboarding (KYC)"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# One fixed Fernet key for the benchmark only (synthetic data; never a production key).
BENCH_FERNET_KEY = "MXjFyX5EitONB3igFrq2qZzk3Kfew9ahOlOaSKrYkX0="
# One fixed audit-chain key for the benchmark only, shared by its processes (never a production key).
BENCH_AUDIT_KEY = "bench-audit-key-synthetic-0123456789abcdefgh"


def sandbox_credentials() -> dict[str, str]:
    from decentro_sandbox.sandbox import DEFAULT_CREDENTIALS as c

    return {"client_id": c.client_id, "client_secret": c.client_secret,
            "module_secret": c.module_secrets["kyc"], "provider_secret": str(c.provider_secret)}


def sandbox_env(api_base: str) -> dict[str, str]:
    """The environment variables that point an app at the sandbox in live mode."""
    c = sandbox_credentials()
    return {
        "USE_MOCKS": "false", "DECENTRO_API_BASE": api_base, "DECENTRO_ALLOW_INSECURE_API_BASE": "true",
        "DECENTRO_CLIENT_ID": c["client_id"],
        "DECENTRO_CLIENT_SECRET": c["client_secret"], "DECENTRO_API_KEY": c["module_secret"],
        "DECENTRO_PAYMENTS_PROVIDER_SECRET": c["provider_secret"], "DECENTRO_PAYEE_ACCOUNT": "BENCHPAYEE0001",
        "DECENTRO_ENCRYPTION_KEYS": BENCH_FERNET_KEY, "DECENTRO_AUDIT_KEYS": BENCH_AUDIT_KEY,
    }


def live_settings(api_base: str, *, database_url: str, **overrides: Any) -> Settings:
    """Live-mode settings against the sandbox at ``api_base``."""
    env = {**sandbox_env(api_base), "DECENTRO_DATABASE_URL": database_url}
    # No bulkhead: these runs measure the library's calls from many threads, not a server's threads.
    return Settings.from_mapping(env, **{"bulkhead_max": -1, **overrides}).check()


def raw_headers() -> dict[str, str]:
    """What a hand-written client sends: Decentro's static headers and JSON."""
    c = sandbox_credentials()
    return {"client_id": c["client_id"], "client_secret": c["client_secret"], "module_secret": c["module_secret"],
            "Content-Type": "application/json", "Accept": "application/json"}


def pan_body(pan: str) -> dict[str, Any]:
    return {"reference_id": str(uuid.uuid4()), "document_type": "PAN", "id_number": pan, "consent": "Y",
            "consent_purpose": PURPOSE}


_MAGIC = {"0000", "0404", "0429", "0500", "0503", "0408"}


def pan_for(index: int) -> str:
    """A valid-format synthetic PAN per index (letters vary too), never a magic value."""
    digits = 1000 + index % 8000
    while f"{digits:04d}" in _MAGIC:
        digits += 1
    block = index // 8000
    letters = "ABCDE"[:4] + chr(ord("A") + block % 26)
    return f"{letters}{digits:04d}F"


def interleaved(variants: dict[str, Callable[[], Any]], *, rounds: int, per_round: int,
                warmup: int = 20, cpu: dict[str, list[float]] | None = None) -> dict[str, list[float]]:
    """Per round, the median milliseconds per call of every variant.

    Variants are interleaved call by call (order rotated each call), so drift in the machine
    hits all of them alike. ``cpu``, when given, gets each variant's per-round median of this
    process's CPU milliseconds per call (``time.process_time``: the sandbox's own CPU is in
    another process and not counted).
    """
    names = list(variants)
    for _ in range(warmup):
        for name in names:
            variants[name]()
    medians: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        samples: dict[str, list[float]] = {name: [] for name in names}
        cpu_samples: dict[str, list[float]] = {name: [] for name in names}
        for i in range(per_round):
            order = names[i % len(names):] + names[:i % len(names)]
            for name in order:
                started, cpu_started = time.perf_counter(), time.process_time()
                variants[name]()
                samples[name].append((time.perf_counter() - started) * 1000)
                cpu_samples[name].append((time.process_time() - cpu_started) * 1000)
        for name in names:
            medians[name].append(statistics.median(samples[name]))
            if cpu is not None:
                cpu.setdefault(name, []).append(statistics.median(cpu_samples[name]))
    return medians


def median_ratio(medians: dict[str, list[float]], name: str, base: str) -> float:
    """Median over rounds of the per-round ratio (side by side in the same round)."""
    return statistics.median(a / b for a, b in zip(medians[name], medians[base]))


def spread(values: Sequence[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def redis_url() -> str:
    return os.environ.get("DECENTRO_TEST_REDIS_URL", DEFAULT_REDIS_URL)


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database (URL) at the code's schema version, dropped afterwards."""
    import psycopg2

    from decentro_adapters.sql.migrations import upgrade

    admin_url = os.environ.get("DECENTRO_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)
    admin = psycopg2.connect(admin_url, connect_timeout=3)
    admin.autocommit = True
    name = "decentro_bench_" + secrets.token_hex(6)
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        parts = urlsplit(admin_url)
        url = urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
        upgrade(url)  # the deploy step: serving processes only check the version
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def on_each_database(name: str, measure: Callable[[str], Any]) -> None:
    """Print ``measure(url)`` on a fresh PostgreSQL database, then on a SQLite file (both dropped after)."""
    with postgres_database() as url:
        print("postgresql", measure(url))
    with tempfile.TemporaryDirectory(prefix=f"decentro-bench-{name}-") as folder:
        print("sqlite", measure("sqlite:///" + os.path.join(folder, f"{name}.sqlite3")))


@contextmanager
def redis_prefix() -> Iterator[str]:
    """A unique Redis key prefix; every key under it is deleted afterwards."""
    import redis

    prefix = f"decentro-bench-{secrets.token_hex(6)}:"
    try:
        yield prefix
    finally:
        client = redis.Redis.from_url(redis_url())
        try:
            keys = list(client.scan_iter(match=prefix + "*", count=500))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def rss_kib() -> int:
    """This process's resident set size in KiB, from /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("VmRSS not found in /proc/self/status")


@contextmanager
def sandbox_process(*args: str, ready_timeout: float = 20.0) -> Iterator[str]:
    """A sandbox in its own process on 127.0.0.1 (a free port); yields its URL, stops it after.

    Its own process, so the server's Python work does not share the client's interpreter lock:
    what the benchmark sees is the client's cost plus a loopback round trip.
    """
    import select
    import subprocess
    import sys

    command = [sys.executable, "-m", "decentro_sandbox.sandbox", "--host", "127.0.0.1", "--port", "0", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], ready_timeout)
        line = proc.stdout.readline() if ready else ""
        if "listening on " not in line:
            raise RuntimeError(f"the sandbox did not start: {line!r}")
        yield line.rsplit("listening on ", 1)[1].strip()
    finally:
        stop_process(proc, timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def stop_process(proc: subprocess.Popen[Any], *, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after ``timeout`` seconds; waits either way."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def sandbox_stats(url: str) -> dict[str, Any]:
    import requests

    with requests.Session() as http:
        response = http.get(url + "/_sandbox/stats", timeout=10)
        response.raise_for_status()
        return dict(response.json())
