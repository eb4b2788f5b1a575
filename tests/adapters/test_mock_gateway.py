"""MockGateway: the HttpGateway port in process, over the emulator."""

from __future__ import annotations

from decimal import Decimal

import pytest
import test_emulator_support as req

from decentro_sandbox.core import DecentroEmulator
from decentro_adapters.gateway.mock import MockGateway
from decentro_core.errors import GatewayTimeout
from decentro_core.ports import GatewayRequest, HttpGateway


def _request(path: str, body: dict, module: str = "kyc") -> GatewayRequest:
    return GatewayRequest("POST", path, module, body["reference_id"], body)  # type: ignore[arg-type]


def test_it_satisfies_the_http_gateway_port_and_exposes_its_emulator():
    emulator = DecentroEmulator()
    gateway: HttpGateway = MockGateway(emulator)
    assert isinstance(gateway, MockGateway) and gateway.emulator is emulator
    assert isinstance(MockGateway().emulator, DecentroEmulator)


def test_it_returns_decentros_raw_answer_with_its_status():
    gateway = MockGateway()
    response = gateway.send(_request(req.PAN_PATH, req.pan()))
    assert response.status_code == 200 and response.body["kycResult"]["idStatus"] == "VALID"
    assert response.headers["Content-Type"] == "application/json"
    assert gateway.send(_request(req.PAN_PATH, req.pan("ABCDE0503F"))).status_code == 503


def test_it_skips_the_credential_check_even_when_the_emulator_has_credentials():
    from decentro_sandbox.core import Credentials

    creds = Credentials.same_for_every_module(client_id="a", client_secret="b", module_secret="c")
    gateway = MockGateway(DecentroEmulator(credentials=creds))
    assert gateway.send(_request(req.PAN_PATH, req.pan())).status_code == 200


def test_the_emulated_timeout_raises_gateway_timeout_with_the_reference():
    gateway = MockGateway()
    body = req.pan("ABCDE0408F")
    with pytest.raises(GatewayTimeout) as caught:
        gateway.send(_request(req.PAN_PATH, body))
    assert caught.value.request_id == body["reference_id"] and caught.value.retryable


def test_the_status_path_is_reached_with_a_get_and_no_body():
    gateway = MockGateway()
    created = gateway.send(_request(req.LINK_PATH, req.link(20), "payments")).body
    txn = created["data"]["transactionId"]
    status = gateway.send(GatewayRequest("GET", f"/v2/payments/transaction/{txn}/status", "payments", "ref-x"))
    assert status.body["data"]["transactionStatus"] == "FAILURE"


def test_a_body_the_live_gateway_could_not_serialise_fails_here_too():
    with pytest.raises(TypeError):
        MockGateway().send(_request(req.LINK_PATH, req.link(Decimal("10")), "payments"))


def test_changing_a_returned_body_does_not_change_the_emulator():
    gateway = MockGateway()
    created = gateway.send(_request(req.LINK_PATH, req.link(30), "payments")).body
    created["data"]["transactionStatus"] = "SUCCESS"  # type: ignore[index]
    txn = created["data"]["transactionId"]
    status = gateway.send(GatewayRequest("GET", f"/v2/payments/transaction/{txn}/status", "payments", "r"))
    assert status.body["data"]["transactionStatus"] == "PENDING"
