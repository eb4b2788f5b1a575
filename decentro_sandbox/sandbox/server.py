"""The offline sandbox: Decentro's paths over real HTTP, answered by the emulator.

Start it in a thread for tests::

    with start_sandbox(callback_url="http://127.0.0.1:9000/hooks") as sandbox:
        requests.post(sandbox.url + "/kyc/public_registry/validate", json=..., headers=...)
        sandbox.stats()

Credentials are required (defaults in :data:`DEFAULT_CREDENTIALS`). Faults, latency and
callbacks: :mod:`.faults`, :mod:`.callbacks`. Control endpoints live under ``/_sandbox/``
(see ``docs/sandbox.md``); they are unauthenticated, so the server binds 127.0.0.1 by default.
Offline e-KYC files are signed by ``uidai_signer`` (a fresh key per server unless given);
``uidai_cert_out`` writes its certificate (PEM) where ``DECENTRO_UIDAI_CERT`` can point.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Mapping
from http.server import ThreadingHTTPServer
from typing import Any

from ..core import Credentials, DecentroEmulator, SandboxUidaiSigner, SeededIds
from .webhooks import CallbackDeliverer
from .faults import FaultPlan
from .handler import SandboxRequestHandler

__all__ = ["DEFAULT_CREDENTIALS", "SandboxServer", "start_sandbox"]

DEFAULT_CREDENTIALS = Credentials.same_for_every_module(
    client_id="sandbox-client-id",
    client_secret="sandbox-client-secret",
    module_secret="sandbox-module-secret",
    provider_secret="sandbox-provider-secret",
)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    sandbox: SandboxServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (timeout, reset) is expected here, not an error


class SandboxServer:
    """A running sandbox: ``url``, ``emulator``, ``faults``, ``callbacks``, ``stats()``, ``stop()``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        credentials: Credentials | None = DEFAULT_CREDENTIALS,
        faults: Mapping[str, Any] | None = None,
        timeout_delay: float = 35.0,
        seed: int | None = None,
        emulator: DecentroEmulator | None = None,
        callback_url: str | None = None,
        callback_secret: str = "sandbox-webhook-secret",
        callback_attempts: int = 3,
        callback_backoff: float = 0.2,
        duplicate_callbacks: bool = False,
        reorder_callbacks: bool = False,
        sms_path: str = "/v2/notifications/sms",
        email_path: str = "/v2/notifications/email",
        uidai_signer: SandboxUidaiSigner | None = None,
        uidai_cert_out: str | os.PathLike[str] | None = None,
    ) -> None:
        self.faults = FaultPlan(seed=seed, default_delay_ms=timeout_delay * 1000)
        if faults:
            self.faults.load(faults)  # first: a bad plan must fail before a socket is bound
        self.timeout_delay = timeout_delay
        self.stopping = threading.Event()
        self._counts_lock = threading.Lock()
        self._received: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()
        self._httpd = _HTTPServer((host, port), SandboxRequestHandler)
        self._httpd.sandbox = self
        self.callbacks = CallbackDeliverer(
            url=callback_url, secret=callback_secret, attempts=callback_attempts,
            backoff=callback_backoff, duplicate=duplicate_callbacks, reorder=reorder_callbacks,
        )
        self.emulator = emulator or DecentroEmulator(
            credentials=credentials, new_id=SeededIds(seed), sms_path=sms_path, email_path=email_path,
            uidai_signer=uidai_signer,
        )
        self.emulator.on_terminal = self.callbacks.enqueue
        if uidai_cert_out is not None:
            with open(uidai_cert_out, "wb") as handle:
                handle.write(self.emulator.uidai_signer.certificate_pem())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> SandboxServer:
        """Serve from a background thread; returns ``self``."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="decentro-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Wake held requests, stop serving, close the socket and the callback thread (idempotent)."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=10)
        self._httpd.server_close()
        self.callbacks.stop()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, path: str, fault: str | None = None) -> None:
        with self._counts_lock:
            if fault is None:
                self._received[path] += 1
            else:
                self._injected[fault] += 1

    def stats(self) -> dict[str, Any]:
        """Requests received per path, billable (2xx) calls, faults injected, callbacks."""
        emulated = self.emulator.stats()
        with self._counts_lock:
            return {
                "requests": dict(self._received),
                "billable": emulated["billable"],
                "faults_injected": dict(self._injected),
                "callbacks": self.callbacks.stats(),
                "emulator": emulated,
            }

    def reset(self) -> None:
        """Forget references, payments, counts and fault rules (callback settings stay)."""
        self.emulator.reset()
        self.faults.clear()
        self.callbacks.reset_stats()
        with self._counts_lock:
            self._received.clear()
            self._injected.clear()


def start_sandbox(*, host: str = "127.0.0.1", port: int = 0, **options: Any) -> SandboxServer:
    """Start a sandbox in a thread (port 0: a free port); stop it, or use it as a context."""
    return SandboxServer(host=host, port=port, **options).start()
