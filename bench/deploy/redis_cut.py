"""The ``redis_cut`` phase: hosts cut from Redis (packets dropped, not refused), under a burst.

Two more gunicorn hosts serve the same app next to the run's own, with a KYC limit of
``LIMIT`` per signed-in user (``DECENTRO_RATELIMIT_KEY=user_or_ip``), their cache and rate-limit
storage reached through :class:`CutProxy`, a TCP relay to the private Redis. One host keeps
the default ``DECENTRO_RATELIMIT_ON_STORAGE_ERROR=memory``, the other ``refuse``. Before the
cut a few checks go through Redis (the baseline answer times). Then the relay goes silent:
it keeps every connection open and forwards nothing, and accepts new ones that never get an
answer, as a Redis behind a dropped network path does (a stopped Redis refuses at once, which
is the cheap case the ``redis`` phase covers). During the cut each host gets a burst of
``BURST`` PAN checks from one user for one document, ``CONCURRENCY`` at a time. Measured: how
many the limit accepted against what it allows (``LIMIT`` per process while the count is
kept in memory, so ``LIMIT x workers`` at most; none in ``refuse`` mode), how many reached the
sandbox for that document (single flight and the in-process cache: one per process at most),
and the slowest answer against the 1 s target.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import requests

from ..common import pan_for
from ..servers import free_port, gunicorn_app
from .analysis import PhaseTimes
from .app import USER_HEADER
from .load import CONSENT
from .rig import APP, Rig, gunicorn_options

__all__ = ["ANSWER_TARGET_S", "CutProxy", "redis_cut"]

LIMIT = 10           # DECENTRO_RATELIMIT on the cut hosts: per user per minute
BURST = 40           # PAN checks per host during the cut, one user and one document
CONCURRENCY = 8      # at once (the hosts' 2 workers x 4 threads)
WARM = 4             # checks through Redis before the cut (distinct users and documents)
ANSWER_TARGET_S = 1.0


class CutProxy:
    """A TCP relay to ``target`` that :meth:`cut` turns into a blackhole and :meth:`heal` back."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.silent = threading.Event()
        self._closed = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True, name="redis-cut-proxy")
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self) -> None:
        self.silent.set()

    def heal(self) -> None:
        self.silent.clear()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self._held.append(client)
            if self.silent.is_set():
                continue  # accepted, never answered
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        self._held.append(upstream)
        with selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, client)
            while not self._closed.is_set():
                for key, _ in sel.select(timeout=0.2):
                    if self.silent.is_set():
                        continue  # bytes stay unread: the peer waits, as behind a dropped path
                    try:
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    except OSError:
                        data = b""
                    if not data:
                        client.close()
                        upstream.close()
                        return
                    key.data.sendall(data)
                if self.silent.is_set():
                    time.sleep(0.05)  # unread bytes keep the selector ready: do not spin

    def close(self) -> None:
        self._closed.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for sock in self._held:
            try:
                sock.close()
            except OSError:
                pass
        self._thread.join(timeout=10)


def _count_document(sandbox: Any, pan: str) -> list[int]:
    """Count the sandbox's PAN checks for ``pan`` (a one-element list, shared with the spy)."""
    emulator, count, lock = sandbox.emulator, [0], threading.Lock()
    handle = emulator.handle

    def spying(method: str, path: str, headers: Any, body: Any) -> Any:
        if isinstance(body, dict) and body.get("id_number") == pan:
            with lock:
                count[0] += 1
        return handle(method, path, headers, body)

    emulator.handle = spying
    return count


def _check(base: str, user: str, pan: str) -> tuple[int | None, float, str | None]:
    """One PAN check: status (``None``: no answer), seconds, ``Retry-After``."""
    sent = time.monotonic()
    try:
        response = requests.post(f"{base}/api/kyc/pan", json={"pan": pan, "consent": CONSENT},
                                 headers={USER_HEADER: user}, timeout=30)
    except requests.RequestException:
        return None, time.monotonic() - sent, None
    return response.status_code, time.monotonic() - sent, response.headers.get("Retry-After")


def _burst(base: str, user: str, pan: str) -> dict[str, Any]:
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(lambda _: _check(base, user, pan), range(BURST)))
    codes: dict[str, int] = {}
    for status, _, _ in answers:
        codes[str(status)] = codes.get(str(status), 0) + 1
    times = sorted(seconds for _, seconds, _ in answers)
    return {"sent": BURST, "codes": codes, "accepted": codes.get("200", 0),
            "max_s": round(times[-1], 3), "p50_s": round(times[len(times) // 2], 3),
            "retry_after": sorted({r for status, _, r in answers if status in (429, 503) and r})}


def redis_cut(rig: Rig, phase: PhaseTimes) -> None:
    """Two hosts cut from Redis (memory and refuse modes) get a burst each; then Redis is back."""
    p, token = rig.profile, rig.load.token
    proxy = CutProxy(rig.cache.port)
    log_path = os.path.join(os.path.dirname(rig.log_path), "deployfault-redis-cut.log")
    env = {**rig.env, "DECENTRO_CACHE_URL": proxy.url, "DECENTRO_RATELIMIT_STORAGE_URI": proxy.url,
           "DECENTRO_RATELIMIT": f"{LIMIT} per minute", "DECENTRO_RATELIMIT_KEY": "user_or_ip"}
    results: dict[str, Any] = {"limit_per_process": LIMIT, "workers": p.workers}
    with ExitStack() as stack:
        stack.callback(proxy.close)
        hosts = {}
        for mode in ("memory", "refuse"):
            host_env = {**env, "DECENTRO_RATELIMIT_ON_STORAGE_ERROR": mode,
                        "DECENTRO_RATELIMIT_KEY_PREFIX": f"redis-cut-{mode}-{token}"}
            hosts[mode] = stack.enter_context(gunicorn_app(APP, host_env, options=gunicorn_options(p),
                                                           port=free_port(), log_path=log_path,
                                                           ready_timeout=p.limit)).url
        warm = [_check(hosts[mode], f"rc-warm-{token}-{mode}-{n}", pan_for(9000 + n))
                for mode in hosts for n in range(WARM)]
        results["before_cut"] = {"codes": sorted({str(s) for s, _, _ in warm}),
                                 "max_s": round(max(t for _, t, _ in warm), 3)}
        pan = pan_for(9900)
        upstream = _count_document(rig.sandbox, pan)
        moment = time.monotonic()
        proxy.cut()
        phase.injections.append(moment)
        for mode, base in hosts.items():
            before = upstream[0]
            results[mode] = _burst(base, f"rc-burst-{token}-{mode}", pan)
            results[mode]["upstream_calls_for_the_document"] = upstream[0] - before
        results["cut_s"] = round(time.monotonic() - moment, 3)
        proxy.heal()
        phase.returned = time.monotonic()
    with open(os.path.join(os.path.dirname(rig.log_path), "deployfault-redis-cut.json"), "w",
              encoding="utf-8") as out:
        json.dump(results, out, indent=2)
    _judge(phase, results)


def _judge(phase: PhaseTimes, results: dict[str, Any]) -> None:
    """The phase's own targets, as notes: the limit held and every answer came within 1 s."""
    allowed = results["limit_per_process"] * results["workers"]
    memory, refuse = results["memory"], results["refuse"]
    phase.notes.append(
        f"redis cut, memory mode: {memory['accepted']} of {memory['sent']} accepted "
        f"(limit {results['limit_per_process']}/min per process, {allowed} at most), {memory['upstream_calls_for_the_document']} upstream calls for the "
        f"document, slowest answer {memory['max_s']:.2f} s (target {ANSWER_TARGET_S:.0f} s), codes {memory['codes']}")
    phase.notes.append(
        f"redis cut, refuse mode: {refuse['accepted']} of {refuse['sent']} accepted, codes {refuse['codes']}, "
        f"Retry-After {refuse['retry_after']}, slowest answer {refuse['max_s']:.2f} s")
    if memory["accepted"] > allowed or refuse["accepted"] > 0:
        phase.notes.append("MISSED: the KYC limit did not hold while Redis was cut")
    if max(memory["max_s"], refuse["max_s"]) > ANSWER_TARGET_S:
        phase.notes.append(f"MISSED: a host cut from Redis took over {ANSWER_TARGET_S:.0f} s to answer")
