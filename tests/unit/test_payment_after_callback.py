"""A payment settled by Decentro's callback reads as settled everywhere in its envelope."""

from __future__ import annotations

import json

from decentro_adapters.gateway.mock import MockGateway
from decentro_core import BlockingDecentroService, Settings, WebhookProcessor, sign_body
from decentro_core.memory import memory_ports, MemoryAuditSink, MemoryCache, MemoryConsentStore, MemoryRecordStore, MemoryVault

SECRET = "test-webhook-secret"


def test_a_callback_settles_a_pending_payment_and_its_transaction_status_agrees():
    records, vault, audit = MemoryRecordStore(), MemoryVault(), MemoryAuditSink()
    service = BlockingDecentroService(Settings(), memory_ports(MockGateway(), vault=vault, audit=audit, records=records))
    processor = WebhookProcessor(records, vault, audit, secrets=[SECRET])
    created = service.initiate_payment({"amount": 30})  # Decentro's sandbox: 30 stays PENDING
    reference = created["data"]["reference_id"]
    body = json.dumps({"callbackTxnId": "CB-1", "transactionStatus": "SUCCESS", "referenceId": reference}).encode()

    ack = processor.receive(body, signature=sign_body(body, SECRET))
    status = service.get_payment_status(reference)

    assert ack.http_status == 200
    assert (status["status"], status["data"]["transaction_status"]) == ("SUCCESS", "SUCCESS")
    assert status["data"]["reference_id"] == reference


def _callback_during_status_check(amount: int) -> tuple[BlockingDecentroService, MemoryRecordStore, str]:
    """A PENDING payment of ``amount`` whose next status look-up meets Decentro's SUCCESS
    callback landing while the request is in flight."""
    records, vault, audit = MemoryRecordStore(), MemoryVault(), MemoryAuditSink()
    processor = WebhookProcessor(records, vault, audit, secrets=[SECRET])
    mock = MockGateway()
    reference: list[str] = []

    class CallbackDuringStatusCheck:
        def send(self, request):
            if request.method == "GET":
                body = json.dumps({"callbackTxnId": f"CB-{reference[0]}", "transactionStatus": "SUCCESS",
                                   "referenceId": reference[0]}).encode()
                assert processor.receive(body, signature=sign_body(body, SECRET)).http_status == 200
            return mock.send(request)

    ports = memory_ports(CallbackDuringStatusCheck(), vault=vault, audit=audit, records=records)
    service = BlockingDecentroService(Settings(), ports)
    reference.append(service.initiate_payment({"amount": amount})["data"]["reference_id"])
    return service, records, reference[0]


def test_a_status_check_in_flight_cannot_undo_a_callback_that_lands_meanwhile():
    service, records, reference = _callback_during_status_check(30)  # stays PENDING upstream

    service.get_payment_status(reference)  # Decentro still says PENDING; the callback said SUCCESS

    assert records.get_operation(reference).status == "SUCCESS"
    assert service.get_payment_status(reference)["status"] == "SUCCESS"


def test_an_expired_callback_settles_the_payment_as_failed_and_decentro_is_not_asked_again():
    records, vault, audit = MemoryRecordStore(), MemoryVault(), MemoryAuditSink()
    processor = WebhookProcessor(records, vault, audit, secrets=[SECRET])
    mock = MockGateway()
    sent = []

    class Recording:
        def send(self, request):
            sent.append(request.method)
            return mock.send(request)

    service = BlockingDecentroService(Settings(), memory_ports(Recording(), vault=vault, audit=audit, records=records))
    reference = service.initiate_payment({"amount": 30})["data"]["reference_id"]
    body = json.dumps({"callbackTxnId": "CB-3", "transactionStatus": "EXPIRED", "referenceId": reference}).encode()
    assert processor.receive(body, signature=sign_body(body, SECRET)).http_status == 200

    status = service.get_payment_status(reference)
    late_pending = json.dumps({"callbackTxnId": "CB-4", "transactionStatus": "PENDING", "referenceId": reference}).encode()
    processor.receive(late_pending, signature=sign_body(late_pending, SECRET))

    assert (status["status"], status["error"]["code"]) == ("FAILURE", "PAYMENT_EXPIRED")
    assert status["data"]["transaction_status"] == "EXPIRED"
    assert sent == ["POST"]  # the creation only: a settled payment is not asked about again
    assert records.get_operation(reference).status == "EXPIRED"


def test_a_status_answer_never_contradicts_a_callback_that_settled_the_payment_meanwhile():
    """Decentro's status says FAILED (amount 20) while a SUCCESS callback lands mid-look-up:
    the store keeps SUCCESS, and the very answer of that look-up says SUCCESS too."""
    service, records, reference = _callback_during_status_check(20)  # upstream: FAILED

    answered = service.get_payment_status(reference)

    assert records.get_operation(reference).status == "SUCCESS"
    assert answered["status"] == "SUCCESS" and "error" not in answered
