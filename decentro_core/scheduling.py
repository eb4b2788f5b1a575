"""Tasks run after a delay, on a few threads that exist only while there is work.

:class:`DelayedTasks` holds the background retries of :class:`~decentro_core.runner.OperationRunner`
(``DECENTRO_BACKGROUND_RETRIES``). A waiting task holds no thread: the workers wait together for
the earliest due time, so a burst of retries waiting out their backoff needs no more threads than
sends that run at once. Workers start on demand and end when nothing is left, and they are not
daemons: an interpreter that exits normally (a web worker's graceful stop) first runs what is
due, each task bounded by its own call's deadline. A process killed meanwhile loses the waiting
tasks; the records they would have settled stay ``PENDING`` for reconciliation.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["DelayedTasks"]

log = logging.getLogger("decentro")


class DelayedTasks:
    """``schedule(delay, task)``: run ``task()`` ``delay`` seconds from now on one of at most
    ``workers`` threads. ``drain(timeout)`` waits until nothing is waiting or running."""

    def __init__(self, workers: int, *, name: str = "decentro-retry",
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self._workers, self._name, self._monotonic = workers, name, monotonic
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._started = self._running = 0
        self._changed = threading.Condition()

    def schedule(self, delay: float, task: Callable[[], None]) -> None:
        """Raises ``RuntimeError`` (nothing scheduled) only when no worker could be started
        and none runs to take the task."""
        with self._changed:
            entry = (self._monotonic() + max(0.0, delay), next(self._order), task)
            heapq.heappush(self._due, entry)
            if self._started < self._workers:
                self._started += 1
                try:
                    threading.Thread(target=self._work, name=f"{self._name}-{self._started}").start()
                except RuntimeError:
                    # No thread to be had (the process is out of them, or Python 3.12+ is
                    # shutting down while a worker reschedules): count only workers that exist,
                    # else the pool would believe itself full and never start one again.
                    self._started -= 1
                    if self._started == 0:
                        self._due.remove(entry)
                        heapq.heapify(self._due)
                        raise
                    log.warning("decentro: no new thread for a delayed task; the running workers take it")
            self._changed.notify_all()  # an earlier due time: the waiting workers look again

    def pending(self) -> int:
        """Tasks waiting or running."""
        with self._changed:
            return len(self._due) + self._running

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until no task is waiting or running; ``False`` if some still were at ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._due and not self._running, timeout)

    def _work(self) -> None:
        while True:
            with self._changed:
                while True:
                    if not self._due:
                        self._started -= 1  # nothing left: this thread ends (another starts on demand)
                        self._changed.notify_all()
                        return
                    left = self._due[0][0] - self._monotonic()
                    if left <= 0:
                        task = heapq.heappop(self._due)[2]
                        self._running += 1
                        break
                    self._changed.wait(left)
            try:
                task()
            except Exception:  # a task reports its own failures; this only keeps the worker alive
                log.exception("decentro: a delayed task failed")
            finally:
                with self._changed:
                    self._running -= 1
                    self._changed.notify_all()
