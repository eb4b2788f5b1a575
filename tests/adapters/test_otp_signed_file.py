"""The Aadhaar OTP flow with a share code: Decentro's signed offline ZIP is verified here,
with the same verifier as an uploaded file, and neither the file nor the share code is kept."""

from __future__ import annotations

import json
import re

import pytest

from decentro_adapters.aadhaar.offline import UidaiOfflineVerifier
from decentro_sandbox.core import DecentroEmulator
from decentro_adapters.gateway.mock import MockGateway
from decentro_core import BlockingDecentroService, Settings
from decentro_core.memory import MemoryRecordStore, MemoryVault, memory_ports
from decentro_core.ports import GatewayRequest, GatewayResponse

AADHAAR = "999999990019"  # synthetic, Verhoeff-valid


def _service(gateway: object, verifier: UidaiOfflineVerifier) -> tuple[BlockingDecentroService, MemoryRecordStore,
                                                                       MemoryVault]:
    records, vault = MemoryRecordStore(), MemoryVault()
    ports = memory_ports(gateway, records=records, vault=vault, aadhaar_verifier=verifier)  # type: ignore[arg-type]
    return BlockingDecentroService(Settings(), ports), records, vault


def _otp(service: BlockingDecentroService, share_code: str | None) -> dict:
    started = service.start_aadhaar_otp(AADHAAR, user_id="u-1")
    return service.verify_aadhaar_otp(started["data"]["initiation_id"], "123456", share_code=share_code, user_id="u-1")


def _without_ids(text: str) -> str:
    """``text`` less its hashes, ids and reference numbers (runs of 12+ hex digits), in which a
    4-digit share code turns up by chance about once in a thousand runs; a leaked code would
    stand on its own."""
    return re.sub(r"[0-9A-Fa-f]{12,}", "#", text)


@pytest.fixture
def gateway() -> MockGateway:
    return MockGateway(DecentroEmulator())


def test_the_signed_file_is_verified_with_the_pinned_keys_and_its_fields_returned(gateway: MockGateway) -> None:
    service, records, vault = _service(gateway, UidaiOfflineVerifier(pinned_keys=[gateway.uidai_certificate_pem()]))
    result = _otp(service, "1357")
    data = result["data"]
    assert result["status"] == "SUCCESS" and data["signed_proof"] is True and data["signature_verified"] is True
    assert data["aadhaar_last4"] == AADHAAR[-4:] and len(data["signed_file_sha256"]) == 64
    assert "_aadhaar_zip" not in data and "1357" not in _without_ids(json.dumps(result))
    stored = " ".join(vault.open(token).decode() for r in records.operations.values()
                      for token in (r.sealed_request, r.sealed_result) if token)
    assert "1357" not in _without_ids(stored) and "aadhaarZip" not in stored and "UEsDB" not in stored  # no share code, no ZIP


def test_a_file_signed_by_a_key_we_do_not_trust_fails_the_call(gateway: MockGateway) -> None:
    service, _, _ = _service(gateway, UidaiOfflineVerifier())  # UIDAI's shipped keys only
    result = _otp(service, "1357")
    assert (result["status"], result["error"]["code"]) == ("FAILURE", "AADHAAR_SIGNATURE_INVALID")
    assert result["error"]["message"] == "The file's UIDAI signature does not verify."


def test_a_tampered_or_oversized_file_fails_the_call(gateway: MockGateway) -> None:
    class Tampering:
        def send(self, request: GatewayRequest) -> GatewayResponse:
            answer = gateway.send(request)
            signed = answer.body.get("data", {}).get("aadhaarFile")
            if signed:
                signed["aadhaarZip"] = "A" * 400_000  # valid base64, far over the 128 KiB cap
            return answer

    service, _, _ = _service(Tampering(), UidaiOfflineVerifier(pinned_keys=[gateway.uidai_certificate_pem()]))
    result = _otp(service, "1357")
    assert (result["status"], result["error"]["code"]) == ("FAILURE", "AADHAAR_FILE_TOO_LARGE")


def test_without_a_share_code_the_flow_is_unchanged(gateway: MockGateway) -> None:
    service, _, _ = _service(gateway, UidaiOfflineVerifier())
    result = _otp(service, None)
    assert result["status"] == "SUCCESS" and "signed_proof" not in result["data"]
