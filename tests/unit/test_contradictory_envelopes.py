"""An answer whose own signals contradict each other is never SUCCESS (issue #20).

Found by attacking the parsers: ``status: SUCCESS`` beside ``api_status: FAILURE``, an
``error`` that is a string or a list, a top-level ``E...`` code or ``error_...`` key beside
``status: SUCCESS`` (Decentro's own KYC spec has ``status: SUCCESS`` with ``responseCode:
E00009`` for a refused document classification), and a PAN answer whose ``kycStatus`` is not
``SUCCESS``. Each was read as SUCCESS. Synthetic identities only.
"""

from __future__ import annotations

from typing import Any

import pytest

from decentro_core.envelope import is_success
from decentro_core.errors import UpstreamProtocolError
from decentro_core.operations.kyc import parse_bank, parse_ckyc, parse_pan
from decentro_core.operations.payments import parse_payment, parse_status
from decentro_core.ports import GatewayResponse

PAN_FOUND: dict[str, Any] = {"kycStatus": "SUCCESS", "kycResult": {"idStatus": "VALID", "name": "Testa Synthetica"}}
PAID: dict[str, Any] = {"data": {"transactionStatus": "SUCCESS", "transactionId": "T1"}}
BODIES: dict[str, Any] = {
    "pan": (parse_pan, {"status": "SUCCESS", "decentroTxnId": "D1", **PAN_FOUND}),
    "ckyc": (parse_ckyc, {"status": "SUCCESS", "decentroTxnId": "D1", "data": {"kycResult": {"ckycId": "C1"}}}),
    "bank": (parse_bank, {"status": "success", "decentroTxnId": "D1", "accountStatus": "valid"}),
    "payment": (parse_payment, {"status": "SUCCESS", "decentroTxnId": "D1", **PAID}),
    "status": (parse_status, {"status": "SUCCESS", "decentroTxnId": "D1", **PAID}),
}
CONTRADICTIONS: dict[str, dict[str, Any]] = {
    "api_status FAILURE": {"api_status": "FAILURE"},
    "error as a string": {"error": "Invalid request"},
    "error as a list": {"error": [{"responseCode": "E00016"}]},
    "top-level E code": {"responseCode": "E00009"},
    "top-level v3 E code": {"response_code": "E00009"},
    "top-level error key": {"responseKey": "error_invalid_id_number"},
    "top-level v3 error key": {"response_key": "error_transaction_failed"},
}


def _outcome(parse: Any, body: dict[str, Any]) -> str:
    try:
        return str(parse(GatewayResponse(200, body), "r", {"name": None}).status)
    except UpstreamProtocolError:
        return "PROTOCOL_ERROR"


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_the_uncontradicted_answer_is_a_success(kind: str) -> None:
    parse, body = BODIES[kind]
    assert _outcome(parse, body) == "SUCCESS"


@pytest.mark.parametrize("contradiction", sorted(CONTRADICTIONS))
@pytest.mark.parametrize("kind", sorted(BODIES))
def test_a_contradicted_success_is_never_success(kind: str, contradiction: str) -> None:
    parse, body = BODIES[kind]
    assert _outcome(parse, {**body, **CONTRADICTIONS[contradiction]}) != "SUCCESS"


def test_a_non_string_status_beside_a_v3_success_is_not_a_success() -> None:
    assert not is_success({"status": ["SUCCESS"], "api_status": "SUCCESS"})
    assert is_success({"api_status": "SUCCESS"}) and is_success({"status": "Success"})


@pytest.mark.parametrize("kyc_status", ["FAILURE", "UNKNOWN", "PENDING"])
def test_a_pan_answer_whose_kyc_status_is_not_success_is_never_success(kyc_status: str) -> None:
    body = {"status": "SUCCESS", "decentroTxnId": "D1", **PAN_FOUND, "kycStatus": kyc_status}
    assert _outcome(parse_pan, body) != "SUCCESS"
