"""Helpers of the Flask tests: the service over in-memory ports, payloads, signed callbacks."""

from __future__ import annotations

import json
from typing import Any

from decentro_adapters.aadhaar.mock import MockAadhaarVerifier
from decentro_adapters.gateway.mock import MockGateway
from decentro_core.memory import memory_ports
from decentro_core.ports import GatewayRequest, GatewayResponse
from decentro_core.service import BlockingDecentroService
from decentro_core.settings import Settings
from decentro_core.webhooks import sign_body

WEBHOOK_SECRET = "test-webhook-secret"
PAN = "ABCDE1234F"
NAME = "Testa Synthetica"
ACCOUNT = "123456789011"
IFSC = "SBIN0001077"
CONSENT = {
    "given": True,
    "text": "I agree that my documents are verified through Decentro.",
    "purpose": "Customer onboarding identity verification (KYC)",
}


class RecordingGateway(MockGateway):
    """The mock gateway, remembering every request that reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[GatewayRequest] = []

    def send(self, request: GatewayRequest) -> GatewayResponse:
        self.requests.append(request)
        return super().send(request)


def build_service() -> BlockingDecentroService:
    ports = memory_ports(RecordingGateway(), aadhaar_verifier=MockAadhaarVerifier())
    return BlockingDecentroService(Settings(use_mocks=True), ports, sleep=lambda seconds: None)


def kyc(pan: str = PAN, **extra: Any) -> dict[str, Any]:
    return {"pan": pan, "consent": CONSENT, **extra}


def payment(amount: float, **extra: Any) -> dict[str, Any]:
    customer = {"name": NAME, "email": "testa@example.com", "phone": "9876500011"}
    return {"amount": amount, "customer_details": customer, **extra}


def signed_post(client: Any, payload: dict[str, Any] | bytes, *, secret: str = WEBHOOK_SECRET,
                signature: str | None = None, **kwargs: Any) -> Any:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"X-Decentro-Signature": signature or sign_body(raw, secret), **kwargs.pop("headers", {})}
    return client.post("/api/webhooks/decentro", data=raw, headers=headers,
                       content_type="application/json", **kwargs)


def callback(reference_id: str, status: str = "SUCCESS", **extra: Any) -> dict[str, Any]:
    return {"attempt": 1, "callbackTxnId": f"CB-{reference_id}-{status}", "originalCallbackTxnId": None,
            "transactionStatus": status, "referenceId": reference_id, "beneficiaryName": NAME,
            "transactionAmount": 30.0, **extra}
