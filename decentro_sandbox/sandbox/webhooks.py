"""Callback delivery like Decentro's: POST to your URL on a terminal payment, 3 attempts.

The raw JSON body is signed with HMAC-SHA256 (hex) in ``X-Decentro-Signature``. An attempt
fails on a non-2xx answer or a connection error and is retried after ``backoff`` seconds,
doubling; attempt ``n`` carries ``"attempt": n``, a new ``callbackTxnId`` and the first one
in ``originalCallbackTxnId``. ``duplicate`` sends every delivered body a second time,
unchanged; ``reorder`` holds callbacks back in pairs and sends the later one first.
Delivery runs in one background thread; :meth:`CallbackDeliverer.stop` ends it promptly.
:meth:`CallbackDeliverer.wait_idle` blocks until every queued callback is dealt with, so a
caller waits on that state rather than guessing how long delivery and its retries take; a
retry waiting out its backoff re-reads it when :meth:`CallbackDeliverer.configure` is called,
so a caller can hold a retry back and release it once the state it needs is reached.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections import Counter
from typing import Any

import requests

from decentro_core.webhooks import sign_body

__all__ = ["CallbackDeliverer"]

_STOP = object()


class CallbackDeliverer:
    """Queues terminal-payment payloads and POSTs them from a background thread."""

    def __init__(
        self,
        *,
        url: str | None = None,
        secret: str = "sandbox-webhook-secret",
        attempts: int = 3,
        backoff: float = 0.2,
        timeout: float = 5.0,
        duplicate: bool = False,
        reorder: bool = False,
        reorder_window: float = 0.5,
    ) -> None:
        self.url, self.secret, self.attempts, self.backoff = url, secret, attempts, backoff
        self.timeout, self.duplicate, self.reorder, self.reorder_window = timeout, duplicate, reorder, reorder_window
        self._queue: queue.Queue[Any] = queue.Queue()
        self._stopping = threading.Event()
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._changed = threading.Condition(self._lock)  # configure() or stop(): a waiting retry re-reads
        self._outstanding = 0  # queued, not yet delivered, failed or skipped; never reset
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="sandbox-callbacks", daemon=True)
        self._thread.start()

    def configure(self, **options: Any) -> None:
        """Change ``url``, ``secret``, ``attempts``, ``backoff``, ``timeout``, ``duplicate`` or ``reorder``."""
        allowed = {"url", "secret", "attempts", "backoff", "timeout", "duplicate", "reorder", "reorder_window"}
        unknown = set(options) - allowed
        if unknown:
            raise ValueError(f"unknown callback option(s): {sorted(unknown)}")
        with self._changed:
            for name, value in options.items():
                setattr(self, name, value)
            self._changed.notify_all()

    def enqueue(self, payload: dict[str, Any]) -> None:
        with self._lock:
            self._counts["queued"] += 1
            self._outstanding += 1
        self._queue.put(dict(payload))

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued callback was delivered, failed or skipped; ``False`` on timeout.

        Retries back off and a receiver may be slow, so how long delivery takes depends on the
        machine: callers wait on this state, not on a guessed sleep.
        """
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {k: self._counts[k] for k in ("queued", "attempted", "delivered", "failed", "duplicates", "skipped")}

    def reset_stats(self) -> None:
        with self._lock:
            self._counts.clear()

    def stop(self, *, timeout: float = 5.0) -> None:
        with self._changed:
            self._stopping.set()
            self._changed.notify_all()
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._session.close()

    # -- the worker -----------------------------------------------------------------------

    def _run(self) -> None:
        held: dict[str, Any] | None = None
        while not self._stopping.is_set():
            try:
                item = self._queue.get(timeout=self.reorder_window if held is not None else None)
            except queue.Empty:  # nothing came to swap with: send the held one alone
                item, held = held, None
            if item is _STOP:
                return
            if self.reorder and held is None and item is not None:
                held = item
                continue
            for payload in (item, held):
                if payload is not None:
                    self._deliver(payload)
                    self._finished()
            held = None

    def _deliver(self, payload: dict[str, Any]) -> None:
        if not self.url:
            self._count("skipped")  # no receiver configured: nothing to send
            return
        original = payload.get("originalCallbackTxnId") or payload.get("callbackTxnId")
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                payload = {**payload, "attempt": attempt, "callbackTxnId": uuid.uuid4().hex.upper(),
                           "originalCallbackTxnId": original}
                if self._pause(attempt):
                    return
            body = json.dumps(payload, separators=(",", ":")).encode()
            if self._post(body):
                self._count("delivered")
                if self.duplicate and self._post(body):
                    self._count("duplicates")
                return
        self._count("failed")

    def _pause(self, attempt: int) -> bool:
        """Wait out the backoff before ``attempt``, re-read on every change; ``True``: stopping."""
        started = time.monotonic()
        with self._changed:
            while not self._stopping.is_set():
                left = started + self.backoff * 2 ** (attempt - 2) - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def _post(self, body: bytes) -> bool:
        url = self.url
        if not url:
            return False
        self._count("attempted")
        headers = {"Content-Type": "application/json", "X-Decentro-Signature": sign_body(body, self.secret)}
        try:
            response = self._session.post(url, data=body, headers=headers, timeout=self.timeout)
            response.close()
        except requests.RequestException:
            return False
        return 200 <= response.status_code < 300

    def _finished(self) -> None:
        with self._idle:
            self._outstanding -= 1
            self._idle.notify_all()

    def _count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1
