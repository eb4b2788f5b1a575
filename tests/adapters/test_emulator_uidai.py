"""Aadhaar OTP validation with a share code returns a UIDAI-style signed offline e-KYC ZIP.

The file is checked by the project's own verifier, trusting only the sandbox's certificate.
"""

from __future__ import annotations

import base64
import io
import zipfile
import zlib
from datetime import datetime, timezone

import pytest
import test_emulator_support as req
from lxml import etree

from decentro_adapters.aadhaar.errors import SHARE_CODE_WRONG, SIGNATURE_INVALID
from decentro_adapters.aadhaar.offline import UidaiOfflineVerifier
from decentro_sandbox.core import DecentroEmulator, SandboxUidaiSigner
from decentro_sandbox.scenarios import SANDBOX_EMAIL, SANDBOX_MOBILE
from decentro_core.errors import AadhaarFileRejected
from decentro_core.settings import Settings

SIGNER = SandboxUidaiSigner()  # one key for the module: RSA generation is the slow part


def _validate(emu: DecentroEmulator, **over: object) -> dict:
    initiation = emu.handle("POST", req.OTP_PATH, None, req.otp_start())[1]["decentroTxnId"]
    status, body = emu.handle("POST", req.OTP_VALIDATE_PATH, None, req.otp_validate(initiation, **over))
    assert status == 200
    return body["data"]  # type: ignore[no-any-return]


@pytest.fixture
def emu() -> DecentroEmulator:
    return DecentroEmulator(uidai_signer=SIGNER)


def test_with_a_share_code_the_answer_carries_a_zip_the_verifier_accepts(emu):
    data = _validate(emu, share_code="4321")
    archive = base64.b64decode(data["aadhaarFile"]["aadhaarZip"])
    assert data["aadhaarFile"]["shareCode"] == "4321"
    verifier = UidaiOfflineVerifier(pinned_keys=[SIGNER.certificate_pem()])
    kyc = verifier.verify(archive, "4321", mobile=SANDBOX_MOBILE, email=SANDBOX_EMAIL)
    identity = data["proofOfIdentity"]
    assert (kyc.name, kyc.date_of_birth, kyc.gender) == (identity["name"], identity["dob"], identity["gender"])
    assert kyc.aadhaar_last4 == "1234" and kyc.mobile_verified is True and kyc.email_verified is True
    assert kyc.photo_base64 == data["image"]


def test_the_zip_is_encrypted_with_the_share_code_and_holds_one_uidai_xml(emu):
    archive = base64.b64decode(_validate(emu, share_code="4321")["aadhaarFile"]["aadhaarZip"])
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        [entry] = opened.infolist()
        assert entry.flag_bits & 0x1 and entry.filename.startswith("offlineaadhaar")
        # A wrong password passes ZipCrypto's one-byte check 1 time in 256 (the header is random
        # per archive); the data then fails to inflate or its CRC: refused either way.
        with pytest.raises((RuntimeError, zlib.error, zipfile.BadZipFile)):
            opened.read(entry, pwd=b"0000")
        xml = opened.read(entry, pwd=b"4321")
    root = etree.fromstring(xml)
    assert root.tag == "OfflinePaperlessKyc" and len(root.get("referenceId")) == 21
    signature = root.find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    method = signature.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureMethod").get("Algorithm")
    digest = signature.find(".//{http://www.w3.org/2000/09/xmldsig#}DigestMethod").get("Algorithm")
    assert method.endswith("#rsa-sha1") and digest.endswith("#sha256")  # as UIDAI signs


def test_the_json_hashes_match_the_file_and_the_reference_is_in_ist(emu):
    frozen = datetime(2025, 3, 1, 20, 0, tzinfo=timezone.utc)  # 01:30 IST on 2 March
    emu = DecentroEmulator(uidai_signer=SIGNER, clock=lambda: frozen)
    data = _validate(emu, share_code="4321")
    assert data["aadhaarReferenceNumber"] == "1234" + "20250302013000000"
    verifier = UidaiOfflineVerifier(pinned_keys=[SIGNER.certificate_pem()], now=lambda: frozen)
    archive = base64.b64decode(data["aadhaarFile"]["aadhaarZip"])
    assert verifier.verify(archive, "4321").generated_at == frozen


def test_a_wrong_share_code_or_an_untrusted_key_is_refused(emu):
    archive = base64.b64decode(_validate(emu, share_code="4321")["aadhaarFile"]["aadhaarZip"])
    trusting = UidaiOfflineVerifier(pinned_keys=[SIGNER.certificate_pem()])
    with pytest.raises(AadhaarFileRejected) as wrong_code:
        trusting.verify(archive, "1111")
    assert wrong_code.value.code == SHARE_CODE_WRONG
    with pytest.raises(AadhaarFileRejected) as untrusted:
        UidaiOfflineVerifier().verify(archive, "4321")  # UIDAI's shipped keys only
    assert untrusted.value.code == SIGNATURE_INVALID


def test_the_sandbox_certificate_is_trusted_through_decentro_uidai_cert(emu, tmp_path):
    cert = tmp_path / "sandbox-uidai.pem"
    cert.write_bytes(SIGNER.certificate_pem())
    settings = Settings.from_mapping({"DECENTRO_UIDAI_CERT": str(cert)})
    archive = base64.b64decode(_validate(emu, share_code="4321")["aadhaarFile"]["aadhaarZip"])
    kyc = UidaiOfflineVerifier.from_settings(settings).verify(archive, "4321")
    assert kyc.signer == "sandbox-uidai.pem"


def test_without_a_share_code_there_is_no_file(emu):
    body = req.otp_validate("x")
    del body["share_code"]
    initiation = emu.handle("POST", req.OTP_PATH, None, req.otp_start())[1]["decentroTxnId"]
    status, answer = emu.handle("POST", req.OTP_VALIDATE_PATH, None, {**body, "initiation_transaction_id": initiation})
    assert status == 200 and "aadhaarFile" not in answer["data"] and answer["data"]["proofOfIdentity"]["name"]


def test_a_saved_key_signs_with_the_same_certificate_next_time(tmp_path):
    path = tmp_path / "sandbox-uidai-key.pem"
    first = SandboxUidaiSigner.from_file(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert SandboxUidaiSigner.from_file(path).spki_sha256() == first.spki_sha256()


def test_the_mock_gateway_hands_out_the_certificate_that_verifies_its_files():
    from decentro_core.ports import GatewayRequest

    from decentro_adapters.gateway.mock import MockGateway

    gateway = MockGateway(DecentroEmulator(uidai_signer=SIGNER))
    start = gateway.send(GatewayRequest("POST", req.OTP_PATH, "kyc", "r1", req.otp_start())).body
    answer = gateway.send(GatewayRequest("POST", req.OTP_VALIDATE_PATH, "kyc", "r2",
                                         req.otp_validate(start["decentroTxnId"], share_code="1357"))).body
    archive = base64.b64decode(answer["data"]["aadhaarFile"]["aadhaarZip"])
    verifier = UidaiOfflineVerifier(pinned_keys=[gateway.uidai_certificate_pem()])
    assert verifier.verify(archive, "1357").aadhaar_last4 == "1234"


def test_the_certificate_survives_a_reset(emu):
    before = emu.uidai_signer.certificate_pem()
    emu.reset()
    assert emu.uidai_signer.certificate_pem() == before
