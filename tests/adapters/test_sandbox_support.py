"""Helpers for the sandbox tests (no tests here): credentials, a callback receiver, waiting."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from decentro_sandbox.sandbox import DEFAULT_CREDENTIALS

CREDS = DEFAULT_CREDENTIALS
KYC_HEADERS = {
    "client_id": CREDS.client_id,
    "client_secret": CREDS.client_secret,
    "module_secret": CREDS.module_secrets["kyc"],
}
PAYMENT_HEADERS = {**KYC_HEADERS, "provider_secret": str(CREDS.provider_secret)}


def wait_until(predicate: Callable[[], bool], *, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


class Receiver:
    """Records every callback (raw body, signature); answers with ``statuses`` in turn, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[bytes, str | None]] = []
        self.lock = threading.Lock()

    def payloads(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(body) for body, _ in self.received]

    def count(self) -> int:
        with self.lock:
            return len(self.received)


@contextmanager
def callback_receiver(statuses: list[int] | None = None) -> Iterator[tuple[str, Receiver]]:
    receiver = Receiver(statuses)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.received.append((body, self.headers.get("X-Decentro-Signature")))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
            answer = json.dumps({"response_code": "CB_S00000" if status == 200 else "CB_E00009"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks", receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
