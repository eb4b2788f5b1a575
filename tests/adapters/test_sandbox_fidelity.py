"""The sandbox server's side of issue 12: the signer certificate it publishes, its credential
options and Decentro's CKYC testbed path, over real HTTP."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import requests
import test_emulator_support as req
from test_sandbox_support import KYC_HEADERS

from decentro_adapters.aadhaar.offline import UidaiOfflineVerifier
from decentro_sandbox.core import Credentials
from decentro_sandbox.sandbox import SandboxServer, start_sandbox
from decentro_sandbox.sandbox.__main__ import build_parser, options_from_args


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture
def sandbox(tmp_path) -> Iterator[SandboxServer]:
    with start_sandbox(seed=1, uidai_cert_out=tmp_path / "uidai.pem") as server:
        yield server


def test_the_published_certificate_verifies_the_file_the_sandbox_returns(sandbox, http, tmp_path):
    published = http.get(sandbox.url + "/_sandbox/uidai-cert", timeout=5).json()
    assert published["certificate"].encode() == (tmp_path / "uidai.pem").read_bytes()
    assert len(published["spki_sha256"]) == 64
    start = http.post(sandbox.url + req.OTP_PATH, json=req.otp_start(), headers=KYC_HEADERS, timeout=5).json()
    answer = http.post(sandbox.url + req.OTP_VALIDATE_PATH, headers=KYC_HEADERS, timeout=10,
                       json=req.otp_validate(start["decentroTxnId"], share_code="2468")).json()
    archive = base64.b64decode(answer["data"]["aadhaarFile"]["aadhaarZip"])
    verifier = UidaiOfflineVerifier(extra_keys=[str(tmp_path / "uidai.pem")])  # DECENTRO_UIDAI_CERT's way
    assert verifier.verify(archive, "2468").aadhaar_last4 == "1234"


def test_decentros_ckyc_testbed_path_is_served(sandbox, http):
    answer = http.post(sandbox.url + "/testbed/v2/kyc/ckyc/search", json=req.ckyc("ABCDE1234A"),
                       headers=KYC_HEADERS, timeout=5)
    assert answer.status_code == 200 and answer.json()["data"]["kycResult"]["age"] == "25"
    assert sandbox.stats()["billable"] == {"/testbed/v2/kyc/ckyc/search": 1}


def test_a_sandbox_may_accept_kyc_calls_with_only_client_id_and_secret(http):
    creds = Credentials.same_for_every_module(client_id="a", client_secret="b", module_secret="c",
                                              optional_module_secret=frozenset({"kyc"}))
    with start_sandbox(credentials=creds) as server:
        answer = http.post(server.url + req.PAN_PATH, json=req.pan(), timeout=5,
                           headers={"client_id": "a", "client_secret": "b"})
        assert answer.status_code == 200


def test_the_credential_flags_become_credentials(tmp_path):
    key = tmp_path / "key.pem"
    args = build_parser().parse_args(["--kyc-without-module-secret", "--banking-provider-secret", "bps",
                                      "--expired-module", "payments", "--uidai-key", str(key),
                                      "--uidai-cert-out", str(tmp_path / "cert.pem")])
    options = options_from_args(args)
    creds = options["credentials"]
    assert creds.optional_module_secret == {"kyc"} and creds.expired_modules == {"payments"}
    assert creds.provider_secret_for("banking") == "bps" and creds.provider_secret_for("payments")
    assert key.exists() and options["uidai_signer"].spki_sha256() == options_from_args(args)["uidai_signer"].spki_sha256()
    assert options["uidai_cert_out"] == str(tmp_path / "cert.pem")


def test_without_the_flags_nothing_is_relaxed():
    creds = options_from_args(build_parser().parse_args([]))["credentials"]
    assert not creds.optional_module_secret and not creds.expired_modules
    assert creds.provider_secret_for("banking") is None
