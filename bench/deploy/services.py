"""Private PostgreSQL and Redis for the deployment fault run, which stops and restarts them.

Never the machine's shared servers: each instance lives in a temporary directory, listens on
a free port of 127.0.0.1 (PostgreSQL's Unix socket is in that directory too), and is stopped
and removed when :func:`private_services` ends, whatever happened inside. PostgreSQL refuses
to run as root, so under root its commands run as the ``postgres`` user (``runuser``) on a
directory that user owns. ``fsync=off``: the run stops servers, it never crashes the machine,
so the durability lost is only against power loss.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from ..common import stop_process
from ..servers import free_port

__all__ = ["PrivatePostgres", "PrivateRedis", "postgres_bin", "private_services"]

COMMAND_TIMEOUT = 120.0


def postgres_bin() -> str:
    """Where ``initdb`` and ``pg_ctl`` are: ``DECENTRO_PG_BIN``, Debian's newest, or the PATH."""
    given = os.environ.get("DECENTRO_PG_BIN")
    if given:
        return given
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if debian:
        return os.path.dirname(debian[-1])
    found = shutil.which("pg_ctl")
    if found is None:
        raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql, or set DECENTRO_PG_BIN)")
    return os.path.dirname(found)


@dataclass
class PrivatePostgres:
    """One PostgreSQL cluster of our own: ``init()``, ``start()``, ``stop()``, ``url``."""

    root: str
    port: int = field(default_factory=free_port)
    bin_dir: str = field(default_factory=postgres_bin)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [os.path.join(self.bin_dir, args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} {args[1] if len(args) > 1 else ''} failed: {done.stderr[-1500:]}")

    def init(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", os.path.join(self.root, "data"), "-A", "trust", "-U", "postgres", "-E", "UTF8",
                  "--no-locale", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", os.path.join(self.root, "data"), "-l", os.path.join(self.root, "postgres.log"),
                  "-w", "-t", "60", "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: connections are closed and open transactions rolled back, as an operator's restart."""
        self._run("pg_ctl", "-D", os.path.join(self.root, "data"), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return os.path.exists(os.path.join(self.root, "data", "postmaster.pid"))

    def ready(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(self.url, connect_timeout=2).close()
        except psycopg2.Error:
            return False
        return True


@dataclass
class PrivateRedis:
    """One ``redis-server`` of our own, without persistence (a restart comes back empty, as a cache)."""

    root: str
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *, ready_timeout: float = 30.0) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                   "no", "--dir", self.root, "--logfile", os.path.join(self.root, "redis.log")]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True)
        deadline = time.monotonic() + ready_timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)

    def ready(self) -> bool:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@contextmanager
def private_services(*, keep_logs: str | None = None) -> Iterator[tuple[PrivatePostgres, PrivateRedis]]:
    """A started private PostgreSQL and Redis; both stopped and their directory removed after.

    ``keep_logs``: a folder to copy the servers' logs into before the directory goes.
    """
    root = tempfile.mkdtemp(prefix="decentro-deployfault-")
    pg_root, redis_root = os.path.join(root, "pg"), os.path.join(root, "redis")
    os.makedirs(pg_root)
    os.makedirs(redis_root)
    if os.geteuid() == 0:
        os.chmod(root, 0o755)  # postgres must reach its own folder inside ours
    postgres, cache = PrivatePostgres(pg_root), PrivateRedis(redis_root)
    try:
        postgres.init()
        postgres.start()
        cache.start()
        yield postgres, cache
    finally:
        try:
            cache.stop()
            if postgres.running():
                postgres.stop("immediate")
        finally:
            if keep_logs:
                os.makedirs(keep_logs, exist_ok=True)
                for name in ("pg/postgres.log", "redis/redis.log"):
                    source = os.path.join(root, name)
                    if os.path.exists(source):
                        shutil.copy(source, os.path.join(keep_logs, "deployfault-" + os.path.basename(name)))
            shutil.rmtree(root, ignore_errors=True)
