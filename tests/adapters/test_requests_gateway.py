"""The live gateway speaks Decentro's wire format byte for byte (requests-mock: no socket)."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import pytest
import requests
import requests_mock as rm
from urllib3.exceptions import NewConnectionError, ProtocolError

from decentro_adapters.gateway.live import RequestsGateway
from decentro_core import BlockingDecentroService, Settings
from decentro_core.errors import GatewayConnectionError, GatewayTimeout, UpstreamProtocolError
from decentro_core.memory import memory_ports, MemoryAuditSink, MemoryCache, MemoryConsentStore, MemoryRecordStore, MemoryVault
from decentro_core.ports import GatewayRequest

BASE = "https://in.staging.decentro.tech"
LIVE = Settings(use_mocks=False, client_id="test-client", client_secret="test-client-secret",
                api_key="test-module-secret", payments_module_secret="test-pay-module",
                payments_provider_secret="test-pay-provider", payee_account="TESTPAYEE01",
                encryption_keys=("unused-in-these-tests",), audit_keys=("a" * 43,), backoff_base=0.0, backoff_max=0.0)
PURPOSE = "Customer identity verification for onboarding"  # no characters Decentro sanitises


@pytest.fixture
def live() -> BlockingDecentroService:
    counter = iter(range(1, 100))
    service = BlockingDecentroService(LIVE, memory_ports(RequestsGateway(LIVE)), clock=lambda: datetime(2026, 11, 26, tzinfo=timezone.utc), new_reference_id=lambda: f"ref-{next(counter)}", sleep=lambda s: None)
    yield service
    service.ports.gateway.close()


def _sent(m: rm.Mocker) -> tuple[str, dict[str, str], bytes | None]:
    last = m.request_history[-1]
    return last.path, dict(last.headers), last.body.encode() if isinstance(last.body, str) else last.body


def test_pan_is_posted_to_the_public_registry_with_decentros_exact_body_and_headers(live):
    with rm.Mocker() as m:
        m.post(f"{BASE}/kyc/public_registry/validate", json={
            "status": "SUCCESS", "kycStatus": "SUCCESS", "responseCode": "S00000", "decentroTxnId": "T1",
            "kycResult": {"idNumber": "ABCDE1234F", "idStatus": "VALID", "name": "Test Person"}})
        result = live.verify_pan("abcde1234f", "Test Person")
        path, headers, body = _sent(m)
    assert path == "/kyc/public_registry/validate"
    assert body == (b'{"reference_id":"ref-1","document_type":"PAN","id_number":"ABCDE1234F","consent":"Y",'
                    b'"consent_purpose":"' + PURPOSE.encode() + b'"}')
    assert {k: headers[k] for k in ("client_id", "client_secret", "module_secret", "Content-Type")} == {
        "client_id": "test-client", "client_secret": "test-client-secret", "module_secret": "test-module-secret",
        "Content-Type": "application/json"}
    assert "provider_secret" not in headers
    assert result == {"status": "SUCCESS", "data": {
        "operation_id": "T1", "reference_id": "ref-1", "kyc_status": "SUCCESS", "pan_status": "VALID",
        "registered_name": "Test Person", "name_match": True}}


def test_bank_validation_body_and_the_flat_lowercase_answer(live):
    with rm.Mocker() as m:
        m.post(f"{BASE}/core_banking/money_transfer/validate_account", json={
            "status": "success", "decentroTxnId": "T2", "accountStatus": "valid", "responseCode": "S00000",
            "beneficiaryName": "TEST PERSON", "bankReferenceNumber": "B1", "validationType": "penniless"})
        result = live.verify_bank("123456789011", "sbin0001077", "Test Person")
        _, _, body = _sent(m)
    assert json.loads(body) == {"reference_id": "ref-1", "purpose_message": "Account verification",
                                "validation_type": "penniless",
                                "beneficiary_details": {"account_number": "123456789011", "ifsc": "SBIN0001077",
                                                        "name": "Test Person"}}
    assert result["status"] == "SUCCESS" and result["data"]["name_match"] is True


def test_a_payment_link_sends_all_four_headers_and_rupees(live):
    with rm.Mocker() as m:
        m.post(f"{BASE}/v2/payments/upi/link", json={
            "status": "SUCCESS", "responseCode": "S00000", "decentroTxnId": "T3",
            "responseKey": "success_payment_link_created",
            "data": {"transactionId": "T3", "transactionStatus": "PENDING", "generatedLink": "https://l.invalid"}})
        result = live.initiate_payment({"amount": "10.50", "currency": "INR", "payment_method": "upi"})
        _, headers, body = _sent(m)
    assert body == (b'{"reference_id":"ref-1","payee_account":"TESTPAYEE01","amount":10.5,'
                    b'"purpose_message":"Payment","generate_qr":1,"expiry_time":30,"generate_uri":1}')
    assert (headers["module_secret"], headers["provider_secret"]) == ("test-pay-module", "test-pay-provider")
    assert result["status"] == "PENDING" and result["data"]["transaction_id"] == "T3"


def test_payment_status_is_a_get_on_the_transaction_path(live):
    with rm.Mocker() as m:
        m.post(f"{BASE}/v2/payments/collection", json={
            "status": "SUCCESS", "responseCode": "S00000", "decentroTxnId": "T4",
            "data": {"transactionId": "TX4", "transactionStatus": "PENDING"}})
        m.get(f"{BASE}/v2/payments/transaction/TX4/status", json={
            "status": "SUCCESS", "responseCode": "S00000", "decentroTxnId": "T5",
            "data": {"transactionStatus": "SUCCESS", "bankReferenceNumber": "BRN", "npciTxnId": "N1"}})
        created = live.initiate_payment({"amount": 20, "customer_details": {"upi_id": "charles.babbage@okhdfc"}})
        status = live.get_payment_status(created["data"]["reference_id"])
        first_body = json.loads(m.request_history[0].body)
        get = m.request_history[1]
    assert first_body["payer_upi"] == "charles.babbage@okhdfc" and first_body["amount"] == 20.0
    assert (get.method, get.body) == ("GET", None)
    assert status["status"] == "SUCCESS" and status["data"]["npci_txn_id"] == "N1"
    assert status["data"]["reference_id"] == created["data"]["reference_id"]


def test_ckyc_and_aadhaar_otp_use_boolean_consent(live):
    with rm.Mocker() as m:
        m.post(f"{BASE}/v2/kyc/ckyc/search", json={"status": "SUCCESS", "decentroTxnId": "T6", "data": {
            "kycStatus": "SUCCESS", "kycResult": {"ckycId": "C1", "fullName": "Test Person"}}})
        m.post(f"{BASE}/v2/kyc/aadhaar/otp", json={"status": "SUCCESS", "decentroTxnId": "T7",
                                                   "responseKey": "success_otp_generated"})
        live.fetch_ckyc("ABCDE1234A")
        live.start_aadhaar_otp("999999990019")
        ckyc, otp = (json.loads(r.body) for r in m.request_history)
    assert ckyc == {"reference_id": "ref-1", "document_type": "PAN", "id_number": "ABCDE1234A", "consent": True,
                    "consent_purpose": PURPOSE}
    assert otp == {"reference_id": "ref-2", "consent": True, "purpose": PURPOSE, "aadhaar_number": "999999990019"}


def _request() -> GatewayRequest:
    return GatewayRequest("POST", "/kyc/public_registry/validate", "kyc", "ref-x", {"a": 1})


@pytest.mark.parametrize(("raised", "expected"), [
    (requests.ConnectTimeout, GatewayConnectionError),
    (requests.ReadTimeout, GatewayTimeout),
    (requests.ConnectionError(NewConnectionError(None, "refused")), GatewayConnectionError),
    (requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError())), GatewayTimeout),
    (requests.exceptions.ChunkedEncodingError("cut off mid-body"), GatewayTimeout),
    (requests.exceptions.ContentDecodingError("bad gzip"), GatewayTimeout),
    (requests.exceptions.InvalidHeader("bad header"), GatewayConnectionError),
])
def test_transport_failures_become_typed_errors_saying_whether_the_request_was_sent(raised, expected):
    gateway = RequestsGateway(LIVE)
    with rm.Mocker() as m:
        m.post(f"{BASE}/kyc/public_registry/validate", exc=raised)
        with pytest.raises(expected) as caught:
            gateway.send(_request())
    gateway.close()
    assert caught.value.request_id == "ref-x"


def test_a_non_json_success_is_a_protocol_error_but_a_proxy_502_page_is_just_a_status():
    gateway = RequestsGateway(LIVE)
    with rm.Mocker() as m:
        m.post(f"{BASE}/kyc/public_registry/validate", [
            {"status_code": 200, "text": "<html>oops</html>"},
            {"status_code": 502, "text": "<html>bad gateway</html>"}])
        with pytest.raises(UpstreamProtocolError):
            gateway.send(_request())
        assert gateway.send(_request()).status_code == 502
    gateway.close()


def test_a_live_configuration_without_credentials_names_every_missing_variable():
    from decentro_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        Settings(use_mocks=False).check()
    for name in ("DECENTRO_CLIENT_ID", "DECENTRO_CLIENT_SECRET", "DECENTRO_API_KEY", "DECENTRO_ENCRYPTION_KEYS"):
        assert name in str(caught.value)


def test_a_payment_whose_answer_is_cut_off_mid_body_is_pending_and_never_resent():
    """A real socket: the server reads the request, promises 500 bytes, sends 14 and hangs up."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    received: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                received.append(conn.recv(65536))
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 500\r\n\r\n{\"status\": \"SU")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    settings = Settings(**{**LIVE.__dict__, "api_base": f"http://127.0.0.1:{listener.getsockname()[1]}",
                           "allow_insecure_api_base": True,
                           "timeout": 2.0})
    service = BlockingDecentroService(settings, memory_ports(RequestsGateway(settings)), sleep=lambda s: None)
    try:
        result = service.initiate_payment({"amount": 10})
    finally:
        service.ports.gateway.close()
        stop.set()
        thread.join(timeout=5)
        listener.close()
    assert result["status"] == "PENDING"
    assert result["data"]["reconciliation"] == "OUTCOME_UNKNOWN"
    assert len(received) == 1
    assert service.ports.records.get_operation(result["data"]["reference_id"]).status == "PENDING"


def test_proxy_and_ca_bundle_variables_are_read_once_when_the_gateway_is_built(monkeypatch, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not really a bundle")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal.invalid:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    gateway = RequestsGateway(LIVE)
    with rm.Mocker() as m:
        m.post(f"{BASE}/kyc/public_registry/validate", json={"status": "SUCCESS"})
        gateway.send(_request())
        sent = m.request_history[-1]
    gateway.close()
    assert sent.proxies.get("https") == "http://proxy.internal.invalid:3128"
    assert sent.verify == str(bundle)


def test_no_proxy_keeps_decentro_off_the_proxy(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal.invalid:3128")
    monkeypatch.setenv("NO_PROXY", "in.staging.decentro.tech")
    gateway = RequestsGateway(LIVE)
    with rm.Mocker() as m:
        m.post(f"{BASE}/kyc/public_registry/validate", json={"status": "SUCCESS"})
        gateway.send(_request())
        sent = m.request_history[-1]
    gateway.close()
    assert not sent.proxies


def test_an_answer_trickled_a_byte_at_a_time_is_cut_at_the_calls_deadline():
    """Every socket read returns within the read timeout, yet the answer never ends: the
    exchange as a whole must stop when the call's budget does."""
    import socket
    import threading
    import time

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
                give_up = time.monotonic() + 20  # bounded: without the watchdog the test fails, never hangs
                while not stop.is_set() and time.monotonic() < give_up:
                    try:
                        conn.sendall(b" ")
                    except OSError:
                        break
                    time.sleep(0.05)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    settings = Settings(**{**LIVE.__dict__, "api_base": f"http://127.0.0.1:{listener.getsockname()[1]}",
                           "allow_insecure_api_base": True, "timeout": 1.0})
    gateway = RequestsGateway(settings)
    started = time.monotonic()
    try:
        with pytest.raises(GatewayTimeout):
            gateway.send(GatewayRequest("POST", "/kyc/public_registry/validate", "kyc", "ref-t", {"x": 1},
                                        timeout=1.5))
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        gateway.close()
        listener.close()
        thread.join(timeout=10)
    assert elapsed < 15  # the budget is 1.5 s; without the watchdog the read lasts the whole 20 s trickle


def test_body_read_deadlines_share_one_watchdog_thread_instead_of_a_thread_per_call(monkeypatch):
    """A ``threading.Timer`` per call started an OS thread per request; the deadline is now an
    entry in one shared watchdog's heap, cancelled when the body is read."""
    import threading

    from decentro_adapters.gateway import live

    def no_timer(*args, **kwargs):
        raise AssertionError("a thread per call")

    monkeypatch.setattr(threading, "Timer", no_timer)
    gateway = RequestsGateway(LIVE)
    with rm.Mocker() as m:
        m.post(f"{BASE}/kyc/public_registry/validate", json={"status": "SUCCESS"})
        for _ in range(20):
            assert gateway.send(_request()).status_code == 200
    gateway.close()
    watchdogs = [t for t in threading.enumerate() if t.name == "decentro-read-watchdog"]
    assert len(watchdogs) <= 1
    assert all(alarm.cancelled for alarm in live._WATCHDOG._heap)  # answered in time: nothing left to cut


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_starts_with_a_watchdog_of_its_own() -> None:
    """The parent's pending alarms and lock state are not the child's (a server forking workers)."""
    from decentro_adapters.gateway import live

    alarm = live._WATCHDOG.arm(600, lambda: None)
    try:
        pid = os.fork()
        if pid == 0:  # the child: report by exit code only
            os._exit(0 if live._WATCHDOG._heap == [] and live._WATCHDOG._thread is None else 3)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert alarm in live._WATCHDOG._heap  # the parent's own is untouched
    finally:
        alarm.cancel()
