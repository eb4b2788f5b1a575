"""Every example response of Decentro's two published OpenAPI specs, through the parser for its path.

The vectors (``spec_examples/vectors.json``) are extracted by ``spec_examples/extract.py`` from
the KYC spec of ``decentro-in/decentro-in-kyc-sdk-go`` (commit 09cef07) and the collections spec
of ``decentro-in/decentro-in-collections-sdk-java`` (commit 07a7eb3), both MIT licensed, (c)
Decentro (``spec_examples/LICENSE-decentro``). CI has no network: the output is committed.

Every vector is either walked through the declared operation whose method and path it has, and
its outcome checked against :data:`EXPECTED`, or belongs to an operation listed in
:data:`NOT_IMPLEMENTED`. Both lists are checked against the vectors, so a new vector, or an
operation implemented later, cannot be skipped silently.

Two notes on the specs themselves:

* The KYC spec's 400 schemas for the Aadhaar OTP endpoints (``/v2/kyc/aadhaar/otp`` and
  ``/otp/validate``) are success bodies (``status SUCCESS``, ``S00000``): a defect of the spec.
  HTTP 400 is never a success here, whatever the body says: they are expected as rejections.
* The collections spec gives the transaction status examples under ``default`` (no HTTP
  status): they are fed as HTTP 200, the case where a failure inside a 200 must be read.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import pkgutil
from typing import Any

import pytest

from decentro_core.errors import DecentroError, UpstreamProtocolError
import decentro_core.operations
from decentro_core.operations.base import Operation
from decentro_core.ports import GatewayResponse
from decentro_core.retry import raise_for_transient_status

VECTORS = json.loads((pathlib.Path(__file__).parent / "spec_examples" / "vectors.json").read_text("utf-8"))
# Every declaration of every operations module, found by walking the package: a new module's
# operations are checked without this list being edited.
MODULES = [importlib.import_module(info.name) for info in pkgutil.iter_modules(decentro_core.operations.__path__,
                                                                              "decentro_core.operations.")]
OPERATIONS = {(op.method, op.path): op for module in MODULES for op in vars(module).values() if isinstance(op, Operation)}
REQUESTS: dict[str, dict[str, Any]] = {  # what the library sends for that operation (the parser may read it)
    "pan": {"pan": "ABCDE1234F", "name": None, "detailed": False},
    "aadhaar_otp_start": {"aadhaar_number": "234567890124"},
    "aadhaar_otp_verify": {"initiation_id": "DECXXXXXXXXXXXXXXXXXXXXXXXXXXX", "otp": "123456", "share_code": None},
}

NOT_IMPLEMENTED = frozenset({
    # KYC spec: DigiLocker, the captcha Aadhaar flow, forensics, OCR, classification, masking
    "Digilocker_initiateSession", "Digilocker_generateAccessToken", "Digilocker_eAadhaar", "Digilocker_issuedFiles",
    "Digilocker_downloadFile", "Digilocker_fileData", "Digilocker_pullFile", "Digilocker_revokeToken",
    "Aadhaarxml_initiateSession", "Aadhaarxml_reloadCaptcha", "Aadhaarxml_generateOtp", "Aadhaarxml_validateOtp",
    "KYC_maskAadhaarUid", "KYC_checkImageQuality", "KYC_matchFace", "KYC_classifyDocument", "KYC_checkPhotocopy",
    "KYC_extractText", "KYC_checkVideoLiveness",
    # collections spec: refunds are not an operation of the library (the emulator serves them)
    "Collections_issueUpiRefund",
})

S, P, PROTOCOL = "SUCCESS", "PENDING", UpstreamProtocolError
REJECTED = "FAILURE:REJECTED_BY_PROVIDER"
# (operation id, HTTP status, example name) -> "STATUS" / "FAILURE:CODE" / the typed error raised
EXPECTED: dict[tuple[str, str, str], Any] = {
    ("Upgradedaadhaarxml_generateOtp", "200", "schema example"): S,
    ("Upgradedaadhaarxml_generateOtp", "400", "schema example"): REJECTED,  # spec defect: a success body
    ("Upgradedaadhaarxml_validateOtp", "200", "schema example"): S,
    ("Upgradedaadhaarxml_validateOtp", "400", "schema example"): REJECTED,  # spec defect: a success body
    ("KYC_validate", "200", "example-0"): S,  # PAN
    ("KYC_validate", "200", "example-1"): PROTOCOL,  # FSSAI: no status at all
    ("KYC_validate", "200", "example-2"): PROTOCOL,  # Udyog Aadhaar: no status at all
    ("KYC_validate", "200", "example-3"): S,  # PAN detailed
    ("KYC_validate", "200", "example-4"): "FAILURE:NO_RECORD",  # status SUCCESS with error E00026
    # Other document types (the library asks for PAN only): no idStatus, so not a PAN answer
    **{("KYC_validate", "200", f"example-{n}"): PROTOCOL for n in range(5, 16)},
    **{("KYC_validate", "400", f"example-{n}"): REJECTED for n in range(4)},
    **{("Collections_generatePaymentLink", "200", f"example-{n}"): P for n in range(3)},
    **{("Collections_generatePaymentLink", "400", f"example-{n}"): REJECTED for n in range(7)},
    ("Collections_getTransactionStatus", "default", "example-0"): P,
    ("Collections_getTransactionStatus", "default", "example-1"): "FAILURE:PAYMENT_NOT_FOUND",
    ("Collections_getTransactionStatus", "default", "example-2"): REJECTED,  # error.response_code E00000
    ("Collections_validateUpiHandle", "200", "schema example"): S,
    **{("Collections_validateUpiHandle", "400", f"example-{n}"): REJECTED for n in range(2)},
    ("Collections_issueCollectRequest", "200", "schema example"): P,
    **{("Collections_issueCollectRequest", "400", f"example-{n}"): REJECTED for n in range(4)},
}


def _key(vector: dict[str, Any]) -> tuple[str, str, str]:
    return vector["operation_id"], vector["http_status"], vector["example"]


IMPLEMENTED = [v for v in VECTORS["vectors"] if (v["method"], v["path"]) in OPERATIONS]


def _outcome(vector: dict[str, Any]) -> Any:
    operation = OPERATIONS[(vector["method"], vector["path"])]
    status = 200 if vector["http_status"] == "default" else int(vector["http_status"])
    try:  # as the runner reads an answer: transient statuses first, then the operation's parser
        response = raise_for_transient_status(GatewayResponse(status, vector["body"]), request_id="ref-1")
        outcome = operation.parse(response, "ref-1", REQUESTS.get(operation.name, {}))
    except DecentroError as exc:
        return type(exc)
    return outcome.status if outcome.error_code is None else f"{outcome.status}:{outcome.error_code}"


def test_the_vectors_come_from_both_specs_with_their_attribution() -> None:
    assert set(VECTORS["sources"]) == {"kyc", "collections"}
    assert all(source["license"] == "MIT" and len(source["commit"]) == 40 for source in VECTORS["sources"].values())
    assert {v["source"] for v in VECTORS["vectors"]} == {"kyc", "collections"}


def test_every_vector_is_implemented_and_expected_or_its_operation_is_listed_as_not_implemented() -> None:
    implemented_ids = {v["operation_id"] for v in IMPLEMENTED}
    all_ids = {v["operation_id"] for v in VECTORS["vectors"]}
    assert not implemented_ids & NOT_IMPLEMENTED, "an implemented operation is still listed as not implemented"
    assert all_ids - implemented_ids == NOT_IMPLEMENTED
    assert {_key(v) for v in IMPLEMENTED} == set(EXPECTED)


@pytest.mark.parametrize("vector", IMPLEMENTED, ids=lambda v: "/".join(_key(v)))
def test_each_spec_example_gets_the_expected_status_or_error(vector: dict[str, Any]) -> None:
    assert _outcome(vector) == EXPECTED[_key(vector)]


def test_no_spec_failure_example_is_ever_read_as_success() -> None:
    failing = [v for v in IMPLEMENTED if v["body"].get("status") == "FAILURE" or v["body"].get("error")]
    assert failing and all(_outcome(v) not in (S, P) for v in failing)
