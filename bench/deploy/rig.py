"""The deployment under test: private PostgreSQL and Redis, the sandbox, gunicorn, the load.

:func:`deployment` starts everything and always takes it down again: the load stopped, the
gunicorn process group killed, the sandbox stopped, the private servers stopped and their
directory removed. :class:`Rig` is what the phases act on, and every wait it offers is on
state with a limit (``Rig.wait``), never a bare sleep.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..common import sandbox_env
from ..servers import ROOT, WEBHOOK_PATH, Gunicorn, free_port, gunicorn_app, no_control_socket, worker_pids
from .analysis import Creation, PhaseTimes
from .load import Load, watch_callbacks
from .logs import LogReader
from .services import PrivatePostgres, PrivateRedis, private_services

__all__ = ["APP", "Profile", "Rig", "SECRET", "deployment", "gunicorn_options"]

APP = "bench.deploy.app:create_app()"
SECRET = "deployfault-webhook-secret-synthetic"
PAYMENT_PATHS = frozenset({"/v2/payments/upi/link", "/v2/payments/collection"})
WARM_BOOT = ("-c", "python:bench.deploy.gunicorn_conf")  # third-party libraries imported once, in the master


@dataclass(frozen=True)
class Profile:
    """Sizes and timings of one run; :data:`bench.deployfault.FULL` and ``SHORT`` are the two used."""

    name: str
    clients: int = 12              # client threads (as many as the bulkheads' 2 x 6 slots: a hang can take them all)
    pause: float = 0.15            # each client's pause between requests, seconds
    workers: int = 2               # gunicorn -w
    threads: int = 8               # gunicorn --threads (2 over DECENTRO_BULKHEAD_MAX's 6)
    worker_class: str = "gthread"  # gunicorn -k
    gunicorn_timeout: int = 30     # gunicorn --timeout (its default)
    graceful_timeout: int = 30     # gunicorn --graceful-timeout (its default)
    decentro_timeout: float = 10.0  # DECENTRO_TIMEOUT (the library's default)
    decentro_deadline: float = 20.0  # DECENTRO_DEADLINE (the library's default, under gunicorn's 30 s)
    client_timeout: float = 60.0   # how long a client (or the proxy in front of the app) waits
    hups: int = 4                  # reloads in the hup phase
    kills: int = 3                 # workers killed in the kill phase
    spacing: float = 3.0           # at least this long between two injections of a phase
    outage: float = 5.0            # Redis / PostgreSQL stay down at least this long
    hang: float = 45.0             # upstream hangs at least this long
    hold_extra: float = 5.0        # a held answer comes this long after DECENTRO_TIMEOUT
    slow_share: float = 0.8        # upstream_slow: answers come after this share of DECENTRO_TIMEOUT
    per_step: int = 10             # answers seen after each injection before the next one
    observe: float = 8.0           # seconds watched after the service's return (>= the 5 s target)
    limit: float = 120.0           # the longest any wait for state may take
    cold_boot: bool = False        # workers import everything themselves, uncompiled (the HUP gap's baseline)

    @property
    def hold_ms(self) -> float:
        return (self.decentro_timeout + self.hold_extra) * 1000

    @property
    def slow_ms(self) -> float:
        return self.decentro_timeout * self.slow_share * 1000


def gunicorn_options(profile: Profile) -> list[str]:
    return ["-w", str(profile.workers), "-k", profile.worker_class, "--threads", str(profile.threads),
            "--timeout", str(profile.gunicorn_timeout), "--graceful-timeout", str(profile.graceful_timeout),
            "--log-level", "info", *no_control_socket(), *([] if profile.cold_boot else WARM_BOOT)]


def app_env(profile: Profile, *, api_base: str, database_url: str, redis_url: str) -> dict[str, str]:
    """Production's shape: live mode, PostgreSQL, Redis for the cache and the rate limits."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("DECENTRO_", "FLASK_")) and k not in {"USE_MOCKS", "DATABASE_URL"}}
    return {**keep, "PYTHONPATH": ROOT, "PYTHONUNBUFFERED": "1", **sandbox_env(api_base),
            "DECENTRO_DATABASE_URL": database_url, "DECENTRO_CACHE_URL": redis_url,
            "DECENTRO_RATELIMIT_STORAGE_URI": redis_url,
            # One client address sends everything here: the per-IP limit is raised, its storage is Redis still.
            "DECENTRO_RATELIMIT": "100000 per minute",
            "DECENTRO_WEBHOOK_SECRET": SECRET, "DECENTRO_TIMEOUT": str(profile.decentro_timeout),
            "DECENTRO_DEADLINE": str(profile.decentro_deadline),
            # The default's share of the default timeout (5 of 10 s), for the scaled-down profile too.
            "DECENTRO_BREAKER_SLOW_CALL_SECONDS": str(profile.decentro_timeout / 2)}


@dataclass
class Rig:
    profile: Profile
    postgres: PrivatePostgres
    cache: PrivateRedis
    sandbox: Any
    load: Load
    log_path: str
    env: dict[str, str]
    port: int
    stack: ExitStack
    server: Gunicorn | None = None
    master_pid: int = 0
    masters: list[int] = field(default_factory=list)
    created: list[Creation] = field(default_factory=list)
    late_until: float = 0.0  # answers the sandbox holds are processed until then
    logs: LogReader = field(init=False)

    def __post_init__(self) -> None:
        self.logs = LogReader(self.log_path, os.path.join(self.postgres.root, "postgres.log"))

    # -- gunicorn ----------------------------------------------------------------------

    def start_server(self) -> None:
        self.server = self.stack.enter_context(gunicorn_app(
            APP, self.env, options=gunicorn_options(self.profile), port=self.port, log_path=self.log_path,
            ready_timeout=self.profile.limit))
        self.master_pid = self.server.process.pid
        self.masters.append(self.master_pid)

    def master_alive(self) -> bool:
        return self.server is not None and self.server.process.poll() is None

    def workers(self) -> set[int]:
        return worker_pids(self.master_pid) if self.master_alive() else set()

    def signal_master(self, signum: int) -> float:
        os.kill(self.master_pid, signum)
        return time.monotonic()

    # -- waiting on state --------------------------------------------------------------

    def wait(self, condition: Callable[[], bool], what: str, phase: PhaseTimes, *, limit: float | None = None) -> bool:
        """Poll ``condition`` until true or ``limit`` seconds; a miss is noted on the phase, not raised."""
        deadline = time.monotonic() + (limit or self.profile.limit)
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        phase.notes.append(f"gave up waiting for {what} after {limit or self.profile.limit:.0f} s")
        return False

    def sandbox_requests(self) -> int:
        return sum(self.sandbox.stats()["requests"].values())

    def deliveries_settled(self) -> bool:
        c = self.sandbox.callbacks.stats()
        return bool(c["delivered"] + c["failed"] + c["skipped"] == c["queued"])

    def worker_loaded(self, pid: int) -> bool:
        """Whether worker ``pid`` finished loading the app (``bench/deploy/app.py`` logs it)."""
        with open(self.log_path, "rb") as log:
            return f"bench: app loaded in worker {pid}\n".encode() in log.read()

    # -- the logs, phase by phase -------------------------------------------------------

    def read_log(self, phase: PhaseTimes) -> None:
        """Add what gunicorn, the app and PostgreSQL logged since the last read to ``phase``."""
        counts, examples = self.logs.read()
        merged = Counter(phase.log_lines) + counts
        phase.log_lines = dict(merged.most_common(30))
        phase.log_examples = (phase.log_examples + examples)[-6:]


def _spy_payments(sandbox: Any, created: list[Creation]) -> None:
    """Record every payment the sandbox's emulator creates (answered 2xx): reference id and purpose."""
    emulator = sandbox.emulator
    handle = emulator.handle
    lock = threading.Lock()

    def spying(method: str, path: str, headers: Any, body: Any) -> Any:
        reply = handle(method, path, headers, body)
        status = reply[0] if isinstance(reply, tuple) else None
        if path.split("?")[0] in PAYMENT_PATHS and status is not None and 200 <= status < 300:
            fields = body if isinstance(body, dict) else {}
            with lock:
                created.append(Creation(str(fields.get("reference_id")), str(fields.get("purpose_message"))))
        return reply

    emulator.handle = spying


@contextmanager
def deployment(profile: Profile, *, log_path: str, keep_logs: str | None = None) -> Iterator[Rig]:
    """Everything started (load running, every kind answered once); everything stopped after."""
    from decentro_sandbox.sandbox import start_sandbox
    from decentro_adapters.sql.migrations import upgrade

    with ExitStack() as stack:
        postgres, cache = stack.enter_context(private_services(keep_logs=keep_logs))
        port = free_port()
        sandbox = stack.enter_context(start_sandbox(
            callback_url=f"http://127.0.0.1:{port}{WEBHOOK_PATH}", callback_secret=SECRET, callback_backoff=1.0))
        env = app_env(profile, api_base=sandbox.url, database_url=postgres.url, redis_url=cache.url)
        load = Load(f"http://127.0.0.1:{port}", clients=profile.clients, pause=profile.pause,
                    timeout=profile.client_timeout, token=secrets.token_hex(3))
        rig = Rig(profile, postgres, cache, sandbox, load, log_path, env, port, stack)
        upgrade(postgres.url)  # the deploy step, once, before serving (serving never changes the schema)
        if not profile.cold_boot:
            compile_sources()  # so is compiling the bytecode: a worker then reads it instead of compiling
        _spy_payments(sandbox, rig.created)
        watch_callbacks(sandbox.callbacks, load)
        stack.callback(_kill_group, rig)  # runs after gunicorn's own stop: nothing of it survives
        rig.start_server()
        stack.callback(load.stop)
        load.start()
        yield rig


def compile_sources() -> None:
    """Write the bytecode of the app and this library, as ``python -m compileall`` does in a deploy."""
    import compileall

    for package in ("decentro_core", "decentro_adapters", "flask_decentro", "bench"):
        compileall.compile_dir(os.path.join(ROOT, package), quiet=1)


def _kill_group(rig: Rig) -> None:
    """SIGKILL what is left of every gunicorn started (workers orphaned by a dead master too)."""
    for pid in rig.masters:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
