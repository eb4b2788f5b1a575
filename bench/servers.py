"""Subprocess servers for the benchmarks and fault runs: gunicorn serving bench.webhook_app.

Always on 127.0.0.1, in its own session (process group) so it can be stopped, or killed
with ``SIGKILL`` mid-request, as a whole; every wait polls a state and is bounded, with limits
a busy 2-core machine stays well inside (they bound a hang, they are not expected durations).

Ready means every worker has built the app, not just the first one to answer ``/health``:
each worker's ``create_app()`` leaves a file named by its pid in ``BENCH_READY_DIR``. A worker
still booting while another serves would check the schema during live writes, which can
deadlock in PostgreSQL and make gunicorn halt (a worker that fails to boot stops the master).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import requests

__all__ = ["Gunicorn", "ROOT", "free_port", "gunicorn", "gunicorn_app", "no_control_socket", "webhook_env", "worker_pids"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEBHOOK_PATH = "/api/webhooks/decentro"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def webhook_env(*, database_url: str, secret: str, keys: str, **extra: str) -> dict[str, str]:
    """The app's environment: mock mode, the given store and webhook secret, nothing inherited."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith("DECENTRO_") and k not in {"USE_MOCKS", "DATABASE_URL"}}
    return {**keep, "PYTHONPATH": ROOT, "USE_MOCKS": "true", "DECENTRO_DATABASE_URL": database_url,
            "DECENTRO_WEBHOOK_SECRET": secret, "DECENTRO_ENCRYPTION_KEYS": keys, **extra}


@dataclass
class Gunicorn:
    url: str
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL the master and its workers at once (a crash, not a shutdown)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def gunicorn(env: Mapping[str, str], *, workers: int = 2, threads: int = 1, port: int | None = None,
             ready_timeout: float = 120.0, log_path: str = os.devnull) -> Iterator[Gunicorn]:
    """gunicorn serving ``bench.webhook_app:create_app()`` on ``port`` (default: a free one).

    One thread per worker is gunicorn's sync worker; more threads, its gthread worker.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "gunicorn", "--chdir", ROOT, "-w", str(workers), "--threads", str(threads),
               "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5", "--timeout", "60",
               "bench.webhook_app:create_app()"]
    with tempfile.TemporaryDirectory(prefix="bench-gunicorn-") as ready_dir:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(command, env={**env, "BENCH_READY_DIR": ready_dir}, cwd=ROOT, stdout=log,
                                    stderr=log, start_new_session=True)
        server = Gunicorn(f"http://127.0.0.1:{port}", proc)
        try:
            _wait_ready(server, ready_timeout, ready_dir, workers)
            yield server
        finally:
            server.stop()


def _wait_ready(server: Gunicorn, timeout: float, ready_dir: str | None = None, workers: int = 0) -> None:
    """Until every worker has built the app (when it reports in ``ready_dir``) and ``/health``
    answers; a state, polled."""
    deadline = time.monotonic() + timeout
    with requests.Session() as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {server.process.returncode}")
            try:
                booted = ready_dir is None or len(os.listdir(ready_dir)) >= workers
                if booted and http.get(server.url + "/health", timeout=10).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
    booted = f"{len(os.listdir(ready_dir))}/{workers}" if ready_dir is not None else "?"
    raise RuntimeError(f"gunicorn did not become ready in {timeout}s ({booted} workers booted)")


def no_control_socket() -> list[str]:
    """``--no-control-socket`` where gunicorn has one (25+): else every gunicorn of the user
    shares ``~/.gunicorn/gunicorn.ctl``, and runs in parallel take it from each other."""
    from gunicorn.config import Config

    return ["--no-control-socket"] if "control_socket_disable" in Config().settings else []


def worker_pids(master_pid: int) -> set[int]:
    """The live child processes of ``master_pid`` (gunicorn's workers), read from /proc."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == master_pid and fields[0] != "Z":
            found.add(int(entry))
    return found


@contextmanager
def gunicorn_app(app: str, env: Mapping[str, str], *, options: list[str], port: int | None = None,
                 ready_timeout: float = 60.0, log_path: str = os.devnull) -> Iterator[Gunicorn]:
    """gunicorn serving ``app`` (``module:factory()``) with the given command-line ``options``.

    Like :func:`gunicorn`, for apps other than the webhook benchmark's and settings of the
    caller's choosing (worker class, timeouts, log level). ``GET /health`` must answer 200.
    """
    port = port or free_port()
    command = [sys.executable, "-m", "gunicorn", "--chdir", ROOT, "-b", f"127.0.0.1:{port}", *options, app]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, env=dict(env), cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
    server = Gunicorn(f"http://127.0.0.1:{port}", proc)
    try:
        _wait_ready(server, ready_timeout)
        yield server
    finally:
        server.stop()
