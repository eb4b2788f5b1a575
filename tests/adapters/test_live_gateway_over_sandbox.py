"""The live gateway over real HTTP, against the offline sandbox on loopback."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from decentro_adapters.gateway.live import RequestsGateway
from decentro_adapters.sql.stores import open_stores
from decentro_adapters.vault.fernet import FernetVault
from decentro_sandbox.sandbox.server import SandboxServer, start_sandbox
from decentro_core import BlockingDecentroService, Settings
from decentro_core.errors import AuthenticationFailed, UpstreamUnavailable
from decentro_core.memory import memory_ports, MemoryAuditSink, MemoryCache, MemoryConsentStore, MemoryRecordStore, MemoryVault

CREDENTIALS = dict(client_id="sandbox-client-id", client_secret="sandbox-client-secret",
                   api_key="sandbox-module-secret", payments_provider_secret="sandbox-provider-secret")


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    server = start_sandbox(seed=11, timeout_delay=2.0)
    yield server
    server.stop()


def _live_settings(sandbox: SandboxServer, **overrides: object) -> Settings:
    settings = Settings(use_mocks=False, api_base=sandbox.url, allow_insecure_api_base=True, payee_account="SANDBOXPAYEE",
                        encryption_keys=("unused",), audit_keys=("a" * 43,), timeout=0.5, connect_timeout=0.5,
                        backoff_base=0.01, backoff_max=0.02, **CREDENTIALS)
    return replace(settings, **overrides)


def _live(sandbox: SandboxServer, **overrides: object) -> BlockingDecentroService:
    settings = _live_settings(sandbox, **overrides)
    return BlockingDecentroService(settings, memory_ports(RequestsGateway(settings)), clock=lambda: datetime(2026, 11, 26, tzinfo=timezone.utc), rng=random.Random(3))


def _received(sandbox: SandboxServer, path: str) -> int:
    return int(sandbox.stats()["requests"].get(path, 0))


def test_every_kyc_operation_succeeds_over_http(sandbox):
    service = _live(sandbox)
    try:
        assert service.verify_pan("ABCDE1234F")["status"] == "SUCCESS"
        assert service.verify_bank("123456789011", "SBIN0001077")["status"] == "SUCCESS"
        assert service.verify_bank("123456789013", "HDFC0001234")["error"]["code"] == "INVALID_DOCUMENT"
        assert service.fetch_ckyc("ABCDE1234A")["status"] == "SUCCESS"
        assert service.validate_upi_handle("charles.babbage@okhdfc")["status"] == "SUCCESS"
        assert service.validate_upi_handle("alan.turing@oksbi")["error"]["code"] == "INVALID_DOCUMENT"
        started = service.start_aadhaar_otp("999999990019")
        assert service.verify_aadhaar_otp(started["data"]["initiation_id"], "123456")["status"] == "SUCCESS"
    finally:
        service.ports.gateway.close()
    assert _received(sandbox, "/kyc/public_registry/validate") == 1


def test_a_payment_goes_from_pending_to_its_sandbox_outcome(sandbox):
    service = _live(sandbox)
    try:
        outcomes = {}
        for amount in (10, 20, 30):
            created = service.initiate_payment({"amount": amount})
            outcomes[amount] = service.get_payment_status(created["data"]["reference_id"])["status"]
    finally:
        service.ports.gateway.close()
    assert outcomes == {10: "SUCCESS", 20: "FAILURE", 30: "PENDING"}


def test_wrong_credentials_are_refused_with_a_typed_error(sandbox):
    service = _live(sandbox, client_secret="wrong")
    try:
        with pytest.raises(AuthenticationFailed):
            service.verify_pan("ABCDE1234F")
    finally:
        service.ports.gateway.close()


@pytest.mark.parametrize("kind", ["503", "500", "429", "reset", "malformed"])
def test_a_kyc_read_survives_one_fault_of_each_kind(sandbox, kind):
    sandbox.faults.load({"faults": [{"path": "/kyc/public_registry/validate", "kind": kind}]})
    service = _live(sandbox)
    try:
        result = service.verify_pan("ABCDE1234F")
    finally:
        service.ports.gateway.close()
    assert result["status"] == "SUCCESS"
    assert _received(sandbox, "/kyc/public_registry/validate") == 2


def test_a_kyc_read_gives_up_after_the_retry_budget(sandbox):
    sandbox.faults.load({"faults": [{"path": "/kyc/public_registry/validate", "kind": "503", "count": 10}]})
    service = _live(sandbox, max_retries=2)
    try:
        with pytest.raises(UpstreamUnavailable):
            service.verify_pan("ABCDE1234F")
    finally:
        service.ports.gateway.close()
    assert _received(sandbox, "/kyc/public_registry/validate") == 3


def test_a_slow_payment_is_pending_and_created_exactly_once(sandbox):
    sandbox.faults.load({"faults": [{"path": "/v2/payments/upi/link", "kind": "delay", "delay_ms": 1500}]})
    service = _live(sandbox)
    try:
        result = service.initiate_payment({"amount": 10})
    finally:
        service.ports.gateway.close()
    assert result["status"] == "PENDING"
    assert result["data"]["reconciliation"] == "OUTCOME_UNKNOWN"
    assert _received(sandbox, "/v2/payments/upi/link") == 1


@pytest.mark.parametrize("kind", ["reset", "malformed", "500"])
def test_an_ambiguous_payment_fault_is_pending_and_never_resent(sandbox, kind):
    sandbox.faults.load({"faults": [{"path": "/v2/payments/upi/link", "kind": kind}]})
    service = _live(sandbox)
    try:
        result = service.initiate_payment({"amount": 10})
    finally:
        service.ports.gateway.close()
    assert result["status"] == "PENDING"
    assert _received(sandbox, "/v2/payments/upi/link") == 1


def test_a_payment_refused_with_503_is_retried_with_the_same_reference(sandbox):
    sandbox.faults.load({"faults": [{"path": "/v2/payments/upi/link", "kind": "503"}]})
    service = _live(sandbox)
    try:
        result = service.initiate_payment({"amount": 10})
    finally:
        service.ports.gateway.close()
    assert result["status"] == "PENDING" and result["data"]["transaction_id"]
    assert "reconciliation" not in result["data"]
    assert _received(sandbox, "/v2/payments/upi/link") == 2


def test_a_collect_request_refused_with_503_is_retried_off_the_callers_thread_on_sql_stores(sandbox, database_url):
    """Over HTTP and a real database: the caller gets PENDING (RETRY_SCHEDULED) after one
    request; a retry thread, with its own database connection, sends the same reference again
    and stores the transaction id Decentro gave it."""
    sandbox.faults.load({"faults": [{"path": "/v2/payments/collection", "kind": "503", "count": 1}]})
    vault = FernetVault([FernetVault.generate_key()])
    with open_stores(database_url, vault=vault) as stores:
        settings = _live_settings(sandbox, backoff_base=0.05)
        ports = memory_ports(RequestsGateway(settings), vault=vault, audit=stores.audit,
                             consents=stores.consents, records=stores.records)
        service = BlockingDecentroService(settings, ports, rng=random.Random(3))
        try:
            result = service.initiate_payment({"amount": 10, "customer_details": {"upi_id": "test.payer@okaxis"}})
            assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "RETRY_SCHEDULED")
            assert service.wait_for_retries(30.0)
        finally:
            service.close()
            ports.gateway.close()
        record = stores.records.get_operation(result["data"]["reference_id"])
    assert _received(sandbox, "/v2/payments/collection") == 2
    assert record is not None and record.status == "PENDING" and record.operation_id
