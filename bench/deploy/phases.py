"""The phases of the deployment fault run: one fault each, injected while the load runs.

Each phase notes when faults went in and when the service was back (``returned``), then
watches the load until every kind of request has succeeded again and at least ``observe``
seconds (past the 5 s recovery target) have passed. Every wait is on state with a limit:
"the reload replaced every worker and clients got answers since", "clients got answers while
Redis was down", never a sleep. ``spacing``, ``outage`` and ``hang`` are the fault's minimum
length (a schedule), also checked as part of a state.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from .analysis import RECOVERY_TARGET_S, PhaseTimes
from .load import KINDS
from .redis_cut import redis_cut
from .rig import Rig

__all__ = ["PHASES", "run_phase"]

Act = Callable[[Rig, PhaseTimes], None]


def baseline(rig: Rig, phase: PhaseTimes) -> None:
    """No fault: every kind answered, enough requests seen to compare with."""
    p, start = rig.profile, phase.start
    rig.wait(lambda: rig.load.kinds_ok_since(start) >= set(KINDS) and time.monotonic() >= start + p.observe
             and rig.load.answered_since(start) >= 3 * p.per_step, "steady load with every kind answered", phase)


def hup(rig: Rig, phase: PhaseTimes) -> None:
    """SIGHUP to the master: gunicorn starts new workers and stops the old ones gracefully."""
    p = rig.profile
    for _ in range(p.hups):
        before = rig.workers()
        moment = rig.signal_master(signal.SIGHUP)
        phase.injections.append(moment)

        def replaced(moment: float = moment, before: set[int] = before) -> bool:
            now = rig.workers()
            return not rig.master_alive() or (
                time.monotonic() >= moment + p.spacing and rig.load.answered_since(moment) >= p.per_step
                and not now & before and len(now) >= p.workers and all(rig.worker_loaded(w) for w in now))

        rig.wait(replaced, "the reload to replace every worker", phase)
        if not rig.master_alive():
            break
    phase.returned = phase.injections[-1]


def kill(rig: Rig, phase: PhaseTimes) -> None:
    """SIGKILL to one worker at a time: the master must notice and start another."""
    p = rig.profile
    for i in range(p.kills):
        before = rig.workers()
        if not before:
            phase.notes.append("no worker left to kill")
            break
        victim = sorted(before)[i % len(before)]
        os.kill(victim, signal.SIGKILL)
        moment = time.monotonic()
        phase.injections.append(moment)

        def replaced(moment: float = moment, victim: int = victim) -> bool:
            now = rig.workers()
            return not rig.master_alive() or (
                time.monotonic() >= moment + p.spacing and rig.load.answered_since(moment) >= p.per_step
                and victim not in now and len(now) >= p.workers and all(rig.worker_loaded(w) for w in now))

        rig.wait(replaced, "the master to replace the killed worker", phase)
    phase.returned = phase.injections[-1] if phase.injections else None


def _outage(rig: Rig, phase: PhaseTimes, stop: Callable[[], None], start: Callable[[], None], what: str,
            *, also: Callable[[], bool] = lambda: True) -> None:
    """``stop``, wait for answers during the outage (and ``also``), ``start``: the service's return."""
    p = rig.profile
    moment = time.monotonic()
    stop()
    phase.injections.append(moment)
    rig.wait(lambda: time.monotonic() >= moment + p.outage and rig.load.answered_since(moment) >= p.per_step
             and also(), f"answers while {what} was down", phase)
    start()  # returns once the server answers
    phase.returned = time.monotonic()


def redis(rig: Rig, phase: PhaseTimes) -> None:
    """The private Redis stopped (cache, locks and rate-limit counts gone), then started empty."""
    _outage(rig, phase, rig.cache.stop, rig.cache.start, "Redis")


def postgres(rig: Rig, phase: PhaseTimes) -> None:
    """The private PostgreSQL stopped (``pg_ctl -m fast``: connections closed), then started."""
    _outage(rig, phase, lambda: rig.postgres.stop("fast"), rig.postgres.start, "PostgreSQL")


def postgres_boot(rig: Rig, phase: PhaseTimes) -> None:
    """PostgreSQL stopped and, while it is down, one worker killed: its replacement boots
    without a database (what a deploy, a crash or ``--max-requests`` does during an outage)."""

    before: set[int] = set()

    def stop() -> None:
        rig.postgres.stop("fast")
        before.update(rig.workers())
        if before:
            os.kill(min(before), signal.SIGKILL)
            phase.notes.append("one worker killed while PostgreSQL was down")

    def replacement_booted() -> bool:
        """The master gave up (its worker failed to boot), or the new worker loaded the app."""
        return not rig.master_alive() or any(rig.worker_loaded(pid) for pid in rig.workers() - before)

    _outage(rig, phase, stop, rig.postgres.start, "PostgreSQL", also=replacement_booted)


def upstream(rig: Rig, phase: PhaseTimes) -> None:
    """The sandbox holds every answer ``DECENTRO_TIMEOUT + hold_extra`` seconds (then processes
    the request: Decentro acting late), for ``hang`` seconds at least; then answers at once."""
    _late_upstream(rig, phase, rig.profile.hold_ms, "requests held by the hanging upstream")


def upstream_slow(rig: Rig, phase: PhaseTimes) -> None:
    """Issue 20: the sandbox answers every request after ``slow_share`` of ``DECENTRO_TIMEOUT``
    (slow, never a timeout), for ``hang`` seconds at least; callbacks and settled status reads
    must go on answering (:mod:`bench.deploy.starvation`)."""
    _late_upstream(rig, phase, rig.profile.slow_ms, "requests held by the slow upstream")


def _late_upstream(rig: Rig, phase: PhaseTimes, ms: float, what: str) -> None:
    p = rig.profile
    moment, seen = time.monotonic(), rig.sandbox_requests()
    rig.sandbox.faults.load({"latency": {"kind": "fixed", "ms": ms}})
    phase.injections.append(moment)
    rig.wait(lambda: time.monotonic() >= moment + p.hang and rig.sandbox_requests() - seen >= p.per_step,
             what, phase, limit=p.hang + p.limit)
    rig.sandbox.faults.clear()
    phase.returned = time.monotonic()
    rig.late_until = max(rig.late_until, phase.returned + ms / 1000)


PHASES: dict[str, tuple[str, Act]] = {
    "baseline": ("none (steady load)", baseline),
    "hup": ("SIGHUP to the master (graceful reload)", hup),
    "kill": ("SIGKILL to a worker", kill),
    "redis": ("Redis stopped and restarted", redis),
    "redis_cut": ("Redis blackholed for two more hosts (KYC limit, answer times)", redis_cut),
    "postgres": ("PostgreSQL stopped and restarted", postgres),
    "postgres_boot": ("PostgreSQL down while a worker restarts", postgres_boot),
    "upstream": ("upstream hangs past DECENTRO_TIMEOUT", upstream),
    "upstream_slow": ("upstream answers late, under DECENTRO_TIMEOUT", upstream_slow),
}


def _observe(rig: Rig, phase: PhaseTimes) -> None:
    p, back = rig.profile, phase.returned
    assert back is not None

    def recovered() -> bool:
        if not rig.master_alive():
            return True  # nothing will recover: stop watching (the phase reports the death)
        return (time.monotonic() >= back + p.observe and rig.load.kinds_ok_since(back) >= set(KINDS)
                and rig.load.answered_since(back + RECOVERY_TARGET_S) >= p.per_step)

    rig.wait(recovered, "every kind of request to succeed after the return", phase)


def run_phase(rig: Rig, name: str) -> PhaseTimes:
    """Run one phase; a master that died in it is noted and started again for the next."""
    fault, act = PHASES[name]
    phase = PhaseTimes(name, fault, start=time.monotonic())
    master = rig.master_pid
    act(rig, phase)
    if phase.returned is not None:
        _observe(rig, phase)
    phase.end = time.monotonic()
    # The next fault must not meet this phase's requests: wait for their answers first.
    rig.wait(lambda: rig.load.in_flight_before(phase.end) == 0, "the phase's requests to be answered", phase,
             limit=rig.profile.client_timeout + 10)
    phase.master_alive = rig.master_alive() and rig.master_pid == master
    rig.read_log(phase)
    if not rig.master_alive():
        phase.notes.append(f"gunicorn master died (exit {rig.server.process.returncode if rig.server else '?'}); "
                           "the harness started a new one for the next phase")
        phase.master_restarted = True
        _restart(rig, phase)
    return phase


def _restart(rig: Rig, phase: PhaseTimes, attempts: int = 3) -> None:
    """Start a new gunicorn for the next phase (a new master's workers can fail to boot too)."""
    for attempt in range(1, attempts + 1):
        try:
            rig.start_server()
            return
        except RuntimeError as exc:
            phase.notes.append(f"restart {attempt} failed: {exc}")
    raise RuntimeError(f"gunicorn could not be started again after {attempts} attempts")
