"""The sandbox's request handler: latency, injected faults, the emulator, control endpoints.

Control endpoints (no credentials; loopback only by default):
``GET /_sandbox/stats``, ``POST /_sandbox/reset``, ``GET|POST|DELETE /_sandbox/faults``,
``POST /_sandbox/callbacks`` (url, secret, attempts, backoff, duplicate, reorder),
``POST /_sandbox/payments/{transaction_id}/settle`` (``{"status": "SUCCESS"}``),
``GET /_sandbox/uidai-cert`` (the certificate that signs offline e-KYC files),
``GET /_sandbox/health``. Request bodies and headers are never logged.
"""

from __future__ import annotations

import json
import socket
import struct
import uuid
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core import Fault, path_template
from ..wire import fault_reply
from .faults import FaultRule

if TYPE_CHECKING:
    from .server import SandboxServer

__all__ = ["SandboxRequestHandler"]

MAX_BODY = 1024 * 1024
_MALFORMED = b'{"decentroTxnId": "TRUNCATED", "status": "SUCC'


class SandboxRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "DecentroSandbox/0.1"
    timeout = 30  # idle keep-alive connections end on their own
    disable_nagle_algorithm = True  # headers and body go out in two writes

    @property
    def sandbox(self) -> SandboxServer:
        return self.server.sandbox  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        pass  # paths can carry ids; the stats endpoint says what happened

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # -- Decentro's paths -----------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        raw = self._read_body()
        if raw is None:
            return self._send_json(413, {"status": "FAILURE", "message": "Request body too large."})
        path = urlsplit(self.path).path
        if path.startswith("/_sandbox/"):
            return self._control(method, path, raw)
        sandbox = self.sandbox
        sandbox.count(path_template(path))
        if sandbox.stopping.wait(sandbox.faults.latency_seconds()):
            return self._hang_up()
        fault = sandbox.faults.next_fault(path_template(path))
        if fault is not None:
            sandbox.count(path, fault=fault.kind)
            return self._inject(fault, method, raw)
        self._answer(self._emulate(method, raw), hold=0.0)

    def _emulate(self, method: str, raw: bytes) -> tuple[int, dict[str, Any]] | Fault:
        headers = {name: value for name, value in self.headers.items()}
        return self.sandbox.emulator.handle(method, self.path, headers, _parse(raw))

    def _answer(self, reply: tuple[int, dict[str, Any]] | Fault, *, hold: float) -> None:
        if isinstance(reply, Fault):  # Decentro never answers: hold, then hang up
            hold = max(hold, self.sandbox.timeout_delay)
        if hold and self.sandbox.stopping.wait(hold):
            return self._hang_up()
        if isinstance(reply, Fault):
            return self._hang_up()
        self._send_json(*reply)

    def _inject(self, fault: FaultRule, method: str, raw: bytes) -> None:
        hold = (fault.delay_ms or self.sandbox.timeout_delay * 1000) / 1000
        if fault.kind == "delay" and fault.process:
            return self._answer(self._emulate(method, raw), hold=hold)
        if fault.kind == "delay":
            self.sandbox.stopping.wait(hold)
            return self._hang_up()
        if fault.kind == "reset":
            return self._reset()
        if fault.kind == "malformed":
            return self._send_bytes(200, _MALFORMED)
        reply = fault_reply(int(fault.kind), uuid.uuid4().hex.upper())
        assert not isinstance(reply, Fault)
        extra = {"Retry-After": "1"} if fault.kind == "429" else {}
        self._send_json(*reply, extra=extra)

    # -- control endpoints ----------------------------------------------------------------

    def _control(self, method: str, path: str, raw: bytes) -> None:
        sandbox = self.sandbox
        try:
            body = _parse(raw) or {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            answer = self._control_action(sandbox, method, path, body)
        except (ValueError, TypeError, KeyError) as exc:
            return self._send_json(400, {"error": type(exc).__name__, "message": str(exc)})
        if answer is None:
            return self._send_json(404, {"error": "NotFound", "message": "no such control endpoint"})
        self._send_json(200, answer)

    @staticmethod
    def _control_action(sandbox: SandboxServer, method: str, path: str, body: dict[str, Any]) -> Any:
        route = (method, path.rstrip("/"))
        if route == ("GET", "/_sandbox/health"):
            return {"status": "ok"}
        if route == ("GET", "/_sandbox/stats"):
            return sandbox.stats()
        if route == ("GET", "/_sandbox/uidai-cert"):
            signer = sandbox.emulator.uidai_signer
            return {"certificate": signer.certificate_pem().decode("ascii"), "spki_sha256": signer.spki_sha256()}
        if route == ("POST", "/_sandbox/reset"):
            sandbox.reset()
            return {"reset": True}
        if route[1] == "/_sandbox/faults" and method in {"GET", "POST", "DELETE"}:
            if method == "POST":
                sandbox.faults.load(body)
            elif method == "DELETE":
                sandbox.faults.clear()
            return sandbox.faults.describe()
        if route == ("POST", "/_sandbox/callbacks"):
            sandbox.callbacks.configure(**body)
            return {"configured": sorted(body)}
        parts = path.strip("/").split("/")
        if method == "POST" and len(parts) == 4 and parts[1] == "payments" and parts[3] == "settle":
            sandbox.emulator.settle_payment(parts[2], str(body.get("status", "SUCCESS")))
            return {"settled": parts[2]}
        return None

    # -- the wire -------------------------------------------------------------------------

    def _read_body(self) -> bytes | None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _send_json(self, status: int, body: Any, *, extra: dict[str, str] | None = None) -> None:
        self._send_bytes(status, json.dumps(body).encode(), extra=extra)

    def _send_bytes(self, status: int, payload: bytes, *, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Kong-Request-ID", uuid.uuid4().hex)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _hang_up(self) -> None:
        """Close the connection without an answer (the client sees it drop)."""
        self.close_connection = True

    def _reset(self) -> None:
        """Close with a TCP reset (SO_LINGER 0), so the client gets ECONNRESET."""
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()


def _parse(raw: bytes) -> Any:
    """The JSON body, ``None`` when empty, or the undecodable text (the emulator refuses it)."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")
