"""An offline Decentro: the single source of truth for how Decentro behaves in tests.

:class:`DecentroEmulator` answers ``handle(method, path, headers, body)`` with Decentro's raw
wire answer ``(status_code, json_dict)``, or :data:`TIMEOUT` when Decentro would not answer
in time. The in-process :class:`~decentro_adapters.gateway.mock.MockGateway` and the sandbox
HTTP server (:mod:`decentro_sandbox.sandbox`) both sit on it. What each input makes it say
is one table, :mod:`decentro_sandbox.scenarios` (magic values listed there and in
``docs/sandbox.md``).

Rules it enforces like Decentro: required fields (HTTP 400 ``E00009``), consent, a
``reference_id`` used once across every path for the emulator's life (HTTP 400 ``E00019``,
even when the first request was refused), and, when built with :class:`Credentials`, the
``client_id``/``client_secret``/``module_secret`` (+ ``provider_secret`` for payments)
headers (HTTP 401, :mod:`decentro_sandbox.credentials`). ``headers=None`` (the
in-process gateway) skips the credential check. Offline e-KYC files (Aadhaar OTP with a
``share_code``) are signed by ``uidai_signer``, whose certificate is ``uidai_signer.certificate_pem()``.

Example::

    emu = DecentroEmulator()
    status, body = emu.handle("POST", "/kyc/public_registry/validate", None, {...})
"""

from __future__ import annotations

import logging
import random
import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import aadhaar as emulator_aadhaar, kyc as emulator_kyc, notifications as emulator_notifications
from . import payments as emulator_payments, refunds as emulator_refunds
from .credentials import Credentials, check_credentials
from .uidai import SandboxUidaiSigner
from .wire import TIMEOUT, Fault, Refused, Reply, Runtime, failure

__all__ = [
    "TIMEOUT",
    "Credentials",
    "DecentroEmulator",
    "Fault",
    "Reply",
    "SandboxUidaiSigner",
    "SeededIds",
    "path_template",
    "served_paths",
]

log = logging.getLogger(__name__)

STATUS_TEMPLATE = "/v2/payments/transaction/{transaction_id}/status"
_STATUS_PATH = re.compile(r"/v2/payments/transaction/([^/]+)/status")
Handler = Callable[[Runtime, Any], "Reply | Fault"]


class SeededIds:
    """``decentroTxnId`` values: 32 upper-case hex digits, repeatable for a given ``seed``
    (tests); ``None`` seeds from the OS, so processes sharing one database never repeat ids."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def __call__(self) -> str:
        return f"{self._rng.getrandbits(128):032X}"


@dataclass(frozen=True)
class _Route:
    template: str
    module: str
    handler: Handler | None = None  # None: the GET status path, which takes no body


class DecentroEmulator:
    """Decentro's behaviour in memory; thread-safe. See the module docstring."""

    def __init__(
        self,
        *,
        credentials: Credentials | None = None,
        new_id: Callable[[], str] | None = None,
        clock: Callable[[], datetime] | None = None,
        on_terminal: Callable[[dict[str, Any]], None] | None = None,
        sms_path: str = "/v2/notifications/sms",
        email_path: str = "/v2/notifications/email",
        uidai_signer: SandboxUidaiSigner | None = None,
    ) -> None:
        self.credentials = credentials
        self.uidai_signer = uidai_signer or SandboxUidaiSigner()
        self.on_terminal = on_terminal
        self._new_id = new_id or SeededIds()
        self._clock = clock or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._routes = _post_routes(sms_path, email_path)
        self.reset()

    def reset(self) -> None:
        """Forget references, payments, sessions and counts (the id sequence goes on)."""
        with self._lock:
            self._rt = Runtime(new_id=self._new_id, now=self._clock, uidai=self.uidai_signer)
            self._seen: set[str] = set()
            self._received: Counter[str] = Counter()
            self._billable: Counter[str] = Counter()
            self._statuses: Counter[str] = Counter()
            self._terminal_count = 0

    def handle(
        self, method: str, path: str, headers: Mapping[str, str] | None, body: Any
    ) -> Reply | Fault:
        """Answer one request as Decentro would; ``body`` is the parsed JSON (or ``None``)."""
        with self._lock:
            reply = self._handle_locked(method.upper(), _clean(path), headers, body)
            events, self._rt.terminal = self._rt.terminal, []
            self._terminal_count += len(events)
        self._notify(events)
        return reply

    def settle_payment(self, transaction_id: str, status: str) -> None:
        """Move a PENDING payment (e.g. amount 30) to SUCCESS, FAILURE or EXPIRED."""
        with self._lock:
            payment = self._rt.payments.get(transaction_id)
            if payment is None:
                raise KeyError("unknown transaction id")
            emulator_payments.settle(self._rt, payment, status)
            events, self._rt.terminal = self._rt.terminal, []
            self._terminal_count += len(events)
        self._notify(events)

    def stats(self) -> dict[str, Any]:
        """Requests received and billable (answered 2xx) per path, answers per status."""
        with self._lock:
            return {
                "requests": dict(self._received),
                "billable": dict(self._billable),
                "responses": dict(self._statuses),
                "total": sum(self._received.values()),
                "terminal_payments": self._terminal_count,
            }

    # -- internals ------------------------------------------------------------------------

    def _handle_locked(
        self, method: str, path: str, headers: Mapping[str, str] | None, body: Any
    ) -> Reply | Fault:
        route, param = self._route(method, path)
        if route is None:
            self._received["<unknown>"] += 1
            return self._count("<unknown>", (404, failure(self._new_id(), "No such API.", code="E00009",
                                                                 key="error_invalid_path")))
        self._received[route.template] += 1
        refusal = self._check_credentials(route.module, headers)
        if refusal is not None:
            return self._count(route.template, refusal)
        if param is not None:
            return self._count(route.template, emulator_payments.transaction_status(self._rt, param))
        return self._count(route.template, self._post(route, body))

    def _post(self, route: _Route, body: Any) -> Reply | Fault:
        reference = body.get("reference_id") if isinstance(body, Mapping) else None
        if isinstance(reference, str) and reference in self._seen:
            return 400, failure(self._new_id(), "Duplicate request reference ID.", code="E00019",
                                key="error_duplicate_reference_id")
        try:
            if not isinstance(body, Mapping):
                raise Refused("The request body must be a JSON object.")
            assert route.handler is not None
            reply = route.handler(self._rt, body)
        except Refused as refused:
            reply = refused.status, failure(self._new_id(), refused.message, code=refused.code,
                                            key=refused.key)
        if isinstance(reference, str) and reference and not _is_fault(reply):
            self._seen.add(reference)
        return reply

    def _route(self, method: str, path: str) -> tuple[_Route | None, str | None]:
        if method == "POST" and path in self._routes:
            return self._routes[path], None
        match = _STATUS_PATH.fullmatch(path)
        if method == "GET" and match:
            return _Route(STATUS_TEMPLATE, "payments"), match.group(1)
        return None, None

    def _check_credentials(self, module: str, headers: Mapping[str, str] | None) -> Reply | None:
        if self.credentials is None or headers is None:
            return None
        return check_credentials(self.credentials, module, headers, self._new_id)

    def _count(self, template: str, reply: Reply | Fault) -> Reply | Fault:
        status = "timeout" if isinstance(reply, Fault) else str(reply[0])
        self._statuses[status] += 1
        if not isinstance(reply, Fault) and 200 <= reply[0] < 300:
            self._billable[template] += 1
        return reply

    def _notify(self, events: list[dict[str, Any]]) -> None:
        hook = self.on_terminal
        for event in events if hook else ():
            try:
                hook(event)  # type: ignore[misc]
            except Exception as exc:  # a failing hook must not change Decentro's answer
                log.warning("on_terminal hook failed: %s", type(exc).__name__)


def _post_routes(sms_path: str, email_path: str) -> dict[str, _Route]:
    table: list[tuple[str, str, Handler]] = [
        ("/kyc/public_registry/validate", "kyc", emulator_kyc.pan_validate),
        ("/v2/kyc/ckyc/search", "kyc", emulator_kyc.ckyc_search),
        ("/testbed/v2/kyc/ckyc/search", "kyc", emulator_kyc.ckyc_search),  # Decentro's CKYC testbed
        ("/v2/kyc/aadhaar/otp", "kyc", emulator_aadhaar.otp_start),
        ("/v2/kyc/aadhaar/otp/validate", "kyc", emulator_aadhaar.otp_validate),
        ("/core_banking/money_transfer/validate_account", "banking", emulator_kyc.validate_account),
        ("/v2/payments/upi/link", "payments", emulator_payments.upi_link),
        ("/v2/payments/collection", "payments", emulator_payments.collection),
        ("/v2/payments/vpa/validate", "payments", emulator_payments.vpa_validate),
        ("/v2/payments/upi/refund", "payments", emulator_refunds.upi_refund),
        (_clean(sms_path), "notifications", emulator_notifications.send_sms),
        (_clean(email_path), "notifications", emulator_notifications.send_email),
    ]
    return {path: _Route(path, module, handler) for path, module, handler in table}


def served_paths(sms_path: str = "/v2/notifications/sms", email_path: str = "/v2/notifications/email") -> list[str]:
    """Every Decentro path the emulator answers (POST paths, then the GET status template)."""
    return sorted(_post_routes(sms_path, email_path)) + [STATUS_TEMPLATE]


def path_template(path: str) -> str:
    """The path as the stats name it: the status path with ``{transaction_id}``."""
    path = _clean(path)
    return STATUS_TEMPLATE if _STATUS_PATH.fullmatch(path) else path


def _clean(path: str) -> str:
    path = path.split("?", 1)[0]
    return path.rstrip("/") or "/"


def _is_fault(reply: Reply | Fault) -> bool:
    return isinstance(reply, Fault) or reply[0] == 429 or reply[0] >= 500
