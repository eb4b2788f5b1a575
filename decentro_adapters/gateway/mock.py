"""The in-process gateway: :class:`~decentro_core.ports.HttpGateway` over the emulator.

It is what ``USE_MOCKS=true`` runs on. Bodies go through a JSON round trip both ways, so a
body the live gateway could not send fails here too, and the core cannot change the
emulator's state through a returned dict. The emulated timeout raises
:class:`~decentro_core.errors.GatewayTimeout` at once, without sleeping. Offline e-KYC files
the emulator returns (Aadhaar OTP with a share code) are signed by a sandbox key:
:meth:`MockGateway.uidai_certificate_pem` is the certificate a mock-mode verifier should trust.

Example::

    gateway = MockGateway()
    gateway.send(GatewayRequest("POST", "/v2/payments/upi/link", "payments", "ref-1", {...}))
    gateway.emulator.stats()
"""

from __future__ import annotations

import json
from typing import Any

from decentro_core.errors import GatewayTimeout
from decentro_core.ports import GatewayRequest, GatewayResponse

from decentro_sandbox.core import DecentroEmulator, Fault

__all__ = ["MockGateway"]

_JSON_HEADERS = {"Content-Type": "application/json"}


class MockGateway:
    """Answers from a :class:`DecentroEmulator` in this process; thread-safe."""

    def __init__(self, emulator: DecentroEmulator | None = None) -> None:
        self.emulator = emulator if emulator is not None else DecentroEmulator()

    def uidai_certificate_pem(self) -> bytes:
        """The sandbox signer's certificate (PEM), to trust in mock mode only, never in production."""
        return self.emulator.uidai_signer.certificate_pem()

    def send(self, request: GatewayRequest) -> GatewayResponse:
        body = _round_trip(request.body) if request.body is not None else None
        reply = self.emulator.handle(request.method, request.path, None, body)
        if isinstance(reply, Fault):
            raise GatewayTimeout(
                "Decentro did not answer in time (emulated timeout).",
                request_id=request.reference_id,
            )
        status, payload = reply
        return GatewayResponse(status_code=status, body=_round_trip(payload), headers=dict(_JSON_HEADERS))


def _round_trip(value: Any) -> Any:
    return json.loads(json.dumps(dict(value)))
