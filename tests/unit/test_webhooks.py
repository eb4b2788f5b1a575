"""The framework-free webhook processor, with the in-memory ports as fakes."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from decentro_core.errors import ConfigurationError, StoreError
from decentro_core.memory import MemoryAuditSink, MemoryRecordStore, MemoryVault
from decentro_core.ports import AuditEvent, OperationRecord, WebhookEvent
from decentro_core.webhooks import (
    WebhookProcessor,
    parse_callback,
    sign_body,
    validate_signature,
)

SECRET = "whsec-test-one"
START = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
PAYER_NAME = "Testa Synthetica"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class FlakyAudit(MemoryAuditSink):
    """An audit sink that fails the first ``failures`` appends, with personal data in the message."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def append(self, event: AuditEvent) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError(f"disk full while writing {PAYER_NAME} ABCDE1234F")
        super().append(event)


class BrokenStore(MemoryRecordStore):
    def add_webhook_event(self, event: WebhookEvent) -> bool:
        raise StoreError("database unavailable")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def records() -> MemoryRecordStore:
    store = MemoryRecordStore()
    store.save_operation(
        OperationRecord(
            reference_id="ref-1", operation="upi_payment", status="PENDING",
            created_at=START, updated_at=START, operation_id="DCTR-1",
        )
    )
    return store


def make(records, clock, *, audit=None, **options) -> WebhookProcessor:
    options.setdefault("secrets", [SECRET])
    return WebhookProcessor(records, MemoryVault(), audit or MemoryAuditSink(), clock=clock, **options)


def body(**fields) -> bytes:
    payload = {
        "attempt": 1, "timestamp": "2024-05-01 12:00:00", "callbackTxnId": "CB-1",
        "originalCallbackTxnId": None, "transactionStatus": "SUCCESS", "referenceId": "ref-1",
        "decentroTxnId": "DCTR-1", "beneficiaryName": PAYER_NAME, "transactionAmount": 10.0,
    }
    payload.update(fields)
    return json.dumps(payload).encode()


def deliver(processor: WebhookProcessor, raw: bytes, **extra):
    extra.setdefault("signature", sign_body(raw, SECRET))
    return processor.receive(raw, **extra)


# -- signatures -----------------------------------------------------------------------------


def test_signature_is_hmac_sha256_hex_of_the_raw_body_in_any_case_or_prefixed():
    raw = body()
    good = sign_body(raw, SECRET)
    assert validate_signature(raw, good, SECRET)
    assert validate_signature(raw, good.upper(), [SECRET])
    assert validate_signature(raw, "sha256=" + good, [SECRET])


def test_signature_check_refuses_forged_truncated_and_reserialised_bodies():
    raw = body()
    good = sign_body(raw, SECRET)
    assert not validate_signature(raw, sign_body(raw, "other-secret"), SECRET)
    assert not validate_signature(raw[:-1], good, SECRET)
    reserialised = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    assert reserialised != raw
    assert not validate_signature(reserialised, good, SECRET)
    assert not validate_signature(raw, "", SECRET)
    assert not validate_signature(raw, None, SECRET)
    assert not validate_signature(raw, "é" * 64, SECRET)


def test_signature_check_accepts_any_of_several_secrets_for_rotation():
    raw = body()
    assert validate_signature(raw, sign_body(raw, "old"), ["new", "old"])
    assert not validate_signature(raw, sign_body(raw, "older"), ["new", "old"])


# -- receiving ------------------------------------------------------------------------------


def test_a_signed_callback_is_stored_sealed_and_moves_the_payment_to_success(records, clock):
    audit = MemoryAuditSink()
    processor = make(records, clock, audit=audit)
    raw = body()
    ack = deliver(processor, raw)
    assert (ack.http_status, dict(ack.body)) == (200, {"response_code": "CB_S00000"})
    assert records.get_operation("ref-1").status == "SUCCESS"
    event = records.get_webhook_event("CB-1")
    assert (event.state, event.attempts, event.reference_id) == ("processed", 1, "ref-1")
    assert PAYER_NAME not in event.sealed_body
    assert processor.vault.open(event.sealed_body) == raw
    assert [(e.action, e.outcome, e.reference_id) for e in audit.events] == [
        ("upi_payment.callback", "SUCCESS", "ref-1")
    ]


def test_a_forged_signature_is_refused_with_cb_e00013_and_nothing_is_stored(records, clock):
    ack = make(records, clock).receive(body(), signature=sign_body(body(), "guess"))
    assert (ack.http_status, ack.body["response_code"]) == (401, "CB_E00013")
    assert list(records.webhook_events()) == []
    assert records.get_operation("ref-1").status == "PENDING"


def test_a_missing_signature_is_refused_when_signatures_are_required(records, clock):
    ack = make(records, clock).receive(body(), signature=None)
    assert ack.http_status == 401


def test_signatures_cannot_be_required_without_a_secret(records, clock):
    with pytest.raises(ConfigurationError):
        make(records, clock, secrets=[])


def test_the_shared_credential_header_is_checked_when_configured(records, clock):
    processor = make(records, clock, secrets=[], require_signature=False, credential="s3cret-header")
    assert processor.receive(body(), signature=None, credential="wrong").http_status == 401
    assert processor.receive(body(), signature=None, credential=None).http_status == 401
    assert processor.receive(body(), signature=None, credential="s3cret-header").http_status == 200


def test_the_source_ip_allow_list_accepts_only_its_networks(records, clock):
    processor = make(records, clock, allowed_ips=["10.1.0.0/16", "2001:db8::/32"])
    assert deliver(processor, body(), remote_addr="192.0.2.7").http_status == 401
    assert deliver(processor, body(), remote_addr=None).http_status == 401
    assert deliver(processor, body(), remote_addr="not-an-ip").http_status == 401
    assert deliver(processor, body(), remote_addr="10.1.4.2").http_status == 200


def test_a_bad_allow_list_is_a_configuration_error(records, clock):
    with pytest.raises(ConfigurationError):
        make(records, clock, allowed_ips=["10.0.0.0/33"])


def test_a_body_over_the_size_cap_is_refused_before_anything_else(records, clock):
    processor = make(records, clock, max_bytes=100)
    ack = deliver(processor, body(transactionMessage="x" * 200))
    assert (ack.http_status, ack.body["response_code"]) == (413, "CB_E00009")
    assert list(records.webhook_events()) == []


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"[1, 2]", b"\xff\xfe", b"[" * 5000 + b"]" * 5000,
     body(transactionStatus="MAYBE"), body(referenceId=None, decentroTxnId=None)],
)
def test_a_malformed_callback_is_refused_with_cb_e00009(records, clock, raw):
    ack = deliver(make(records, clock, max_bytes=20000), raw)
    assert (ack.http_status, ack.body["response_code"]) == (400, "CB_E00009")
    assert list(records.webhook_events()) == []


def test_a_store_outage_answers_503_so_decentro_retries(clock):
    processor = make(BrokenStore(), clock)
    assert deliver(processor, body()).http_status == 503


# -- deduplication and ordering -------------------------------------------------------------


def test_a_redelivered_callback_is_acknowledged_and_processed_once(records, clock):
    audit = MemoryAuditSink()
    processor = make(records, clock, audit=audit)
    first, second = deliver(processor, body()), deliver(processor, body())
    assert (first.outcome, second.outcome, second.http_status) == ("SUCCESS", "duplicate", 200)
    assert len(audit.events) == 1
    assert records.get_webhook_event("CB-1").attempts == 1


def test_a_decentro_retry_is_folded_into_the_first_delivery_by_original_callback_id(records, clock):
    processor = make(records, clock)
    deliver(processor, body())
    retry = deliver(processor, body(callbackTxnId="CB-2", originalCallbackTxnId="CB-1", attempt=2))
    assert retry.outcome == "duplicate"
    assert [e.dedupe_key for e in records.webhook_events()] == ["CB-1"]


def test_without_callback_ids_the_key_is_a_hash_of_transaction_and_status():
    plain = parse_callback(body(callbackTxnId=None))
    assert plain.dedupe_key.startswith("sha256:")
    assert parse_callback(body(callbackTxnId=None, attempt=3)).dedupe_key == plain.dedupe_key
    assert parse_callback(body(callbackTxnId=None, transactionStatus="FAILURE")).dedupe_key != plain.dedupe_key


@pytest.mark.parametrize("field", ["callbackTxnId", "referenceId", "transactionStatus"])
@pytest.mark.parametrize("value", [{"a": 1}, ["CB-1"], True, 1.5])
def test_an_id_or_status_that_is_not_a_string_is_a_bad_payload(field, value):
    """Found by schemathesis: an object's str() was taken as the id and the callback stored."""
    from decentro_core.errors import WebhookPayloadError

    with pytest.raises(WebhookPayloadError):
        parse_callback(body(**{field: value}))


def test_a_late_pending_never_regresses_a_successful_payment(records, clock):
    processor = make(records, clock)
    deliver(processor, body())
    late = deliver(processor, body(callbackTxnId="CB-0", transactionStatus="pending"))
    assert late.outcome == "ignored:PENDING"
    assert records.get_operation("ref-1").status == "SUCCESS"


def test_an_expired_callback_moves_a_pending_payment_to_expired(records, clock):
    deliver(make(records, clock), body(transactionStatus="EXPIRED"))
    assert records.get_operation("ref-1").status == "EXPIRED"


def test_the_operation_is_found_by_decentro_txn_id_when_reference_id_is_absent(records, clock):
    deliver(make(records, clock), body(referenceId=None, transactionStatus="FAILED"))
    assert records.get_operation("ref-1").status == "FAILURE"


# -- failures and replay --------------------------------------------------------------------


def test_a_processing_failure_is_acknowledged_stored_as_failed_without_personal_data(records, clock, caplog):
    caplog.set_level(logging.DEBUG)
    processor = make(records, clock, audit=FlakyAudit(failures=1))
    ack = deliver(processor, body())
    assert (ack.http_status, ack.outcome) == (200, "failed")
    event = records.get_webhook_event("CB-1")
    assert (event.state, event.last_error) == ("failed", "RuntimeError")
    assert PAYER_NAME not in caplog.text and "ABCDE1234F" not in caplog.text


def test_a_redelivery_of_a_failed_callback_processes_it_again(records, clock):
    audit = FlakyAudit(failures=1)
    processor = make(records, clock, audit=audit)
    deliver(processor, body())
    again = deliver(processor, body())
    assert again.outcome == "SUCCESS"
    event = records.get_webhook_event("CB-1")
    assert (event.state, event.attempts, event.last_error) == ("processed", 2, None)
    assert len(audit.events) == 1


def test_a_callback_for_an_unknown_operation_waits_and_replays_once_the_operation_exists(records, clock):
    processor = make(records, clock)
    deliver(processor, body(referenceId="ref-2", decentroTxnId="DCTR-2", callbackTxnId="CB-9"))
    assert records.get_webhook_event("CB-9").last_error.startswith("OperationNotFound")
    assert processor.replay_failed().failed == ("CB-9",)
    records.save_operation(
        OperationRecord(reference_id="ref-2", operation="upi_payment", status="PENDING",
                        created_at=START, updated_at=START)
    )
    report = processor.replay_failed()
    assert (report.processed, report.failed) == (("CB-9",), ())
    assert records.get_operation("ref-2").status == "SUCCESS"
    assert records.get_operation("ref-2").operation_id == "DCTR-2"
    assert processor.replay_failed().processed == ()


def test_an_event_stuck_in_received_after_a_crash_is_replayed_once_stale(records, clock):
    processor = make(records, clock)
    raw = body()
    records.add_webhook_event(
        WebhookEvent(dedupe_key="CB-1", sealed_body=processor.vault.seal(raw), received_at=clock.now)
    )
    assert processor.replay_failed().processed == ()  # maybe still in flight elsewhere
    clock.now += timedelta(minutes=6)
    assert processor.replay_failed().processed == ("CB-1",)
    assert records.get_webhook_event("CB-1").state == "processed"
    assert records.get_operation("ref-1").status == "SUCCESS"


def test_a_redelivery_of_an_unfinished_event_applies_it_instead_of_acknowledging_a_duplicate(records, clock):
    """Decentro delivers again only when it did not get our 200: the event stored ``received``
    may never be applied (its worker died, or the database went away before it could even be
    marked failed). Applying it again is safe: the store checks, under the operation's lock,
    whether another processor applied it meanwhile."""
    processor = make(records, clock)
    raw = body()
    records.add_webhook_event(
        WebhookEvent(dedupe_key="CB-1", sealed_body=processor.vault.seal(raw), received_at=clock.now)
    )
    assert deliver(processor, raw).outcome == "SUCCESS"
    assert records.get_operation("ref-1").status == "SUCCESS"
    assert deliver(processor, raw).outcome == "duplicate"


class VanishingStore(MemoryRecordStore):
    """The database goes away right after the event is stored: applying it and marking it failed
    both fail, so the event stays ``received`` (what PostgreSQL stopping mid-callback does)."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def add_webhook_event(self, event: WebhookEvent) -> bool:
        added = super().add_webhook_event(event)
        self.down = added and not self.down and event.dedupe_key == "CB-1"
        return added

    def apply_callback(self, dedupe_key, **options):
        if self.down:
            raise StoreError("connection lost")
        return super().apply_callback(dedupe_key, **options)

    def update_webhook_event(self, dedupe_key, **changes):
        if self.down:
            self.down = False  # back for the next delivery
            raise StoreError("connection lost")
        return super().update_webhook_event(dedupe_key, **changes)


def test_a_callback_whose_failure_could_not_be_recorded_is_applied_at_decentros_next_delivery(clock):
    records = VanishingStore()
    records.save_operation(OperationRecord(reference_id="ref-1", operation="upi_payment", status="PENDING",
                                           created_at=START, updated_at=START, operation_id="DCTR-1"))
    audit = MemoryAuditSink()
    processor = make(records, clock, audit=audit)
    first = deliver(processor, body())
    assert first.http_status == 503  # Decentro will deliver again
    assert records.get_webhook_event("CB-1").state == "received"
    clock.now += timedelta(seconds=30)  # Decentro's retry, well inside DECENTRO_WEBHOOK_STALE_AFTER
    again = deliver(processor, body(attempt=2, callbackTxnId="CB-2", originalCallbackTxnId="CB-1"))
    assert (again.http_status, again.outcome) == (200, "SUCCESS")
    assert records.get_operation("ref-1").status == "SUCCESS"
    assert [e.outcome for e in audit.events] == ["SUCCESS"]


def test_replaying_an_unknown_key_raises_key_error(records, clock):
    with pytest.raises(KeyError):
        make(records, clock).replay("nope")


class CrashingStore(MemoryRecordStore):
    """Fails inside the callback transaction ``crashes`` times (a worker dying mid-apply)."""

    def __init__(self, crashes: int) -> None:
        super().__init__()
        self.crashes = crashes

    def apply_callback(self, dedupe_key, **options):
        if self.crashes:
            self.crashes -= 1
            raise StoreError("connection lost")
        return super().apply_callback(dedupe_key, **options)


def test_a_crash_while_applying_neither_audits_nor_marks_so_the_replay_audits_exactly_once(clock):
    records = CrashingStore(crashes=1)
    records.save_operation(OperationRecord(reference_id="ref-1", operation="upi_payment", status="PENDING",
                                           created_at=START, updated_at=START, operation_id="DCTR-1"))
    audit = MemoryAuditSink()
    processor = make(records, clock, audit=audit)
    assert deliver(processor, body()).outcome == "failed"
    assert (audit.events, records.get_operation("ref-1").status) == ([], "PENDING")
    assert processor.replay_failed().processed == ("CB-1",)
    assert [e.outcome for e in audit.events] == ["SUCCESS"]
    assert records.get_webhook_event("CB-1").state == "processed"


def test_a_configured_secret_is_checked_even_when_signatures_are_not_required(records, clock):
    processor = make(records, clock, require_signature=False, credential="shared-credential")
    forged = body(callbackTxnId="EVIL", transactionStatus="SUCCESS")
    ack = processor.receive(forged, signature=None, credential="shared-credential")
    assert ack.http_status == 401
    assert records.get_operation("ref-1").status == "PENDING"


def test_a_processor_with_no_way_to_authenticate_callbacks_refuses_to_start(records, clock):
    from decentro_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        make(records, clock, secrets=[], require_signature=False)


@pytest.mark.parametrize(("source", "status"), [("203.0.113.5", 200), ("::ffff:203.0.113.5", 200),
                                                 ("::ffff:198.51.100.7", 401), ("2001:db8::1", 401)])
def test_the_ip_allow_list_reads_ipv4_mapped_addresses_as_ipv4(records, clock, source, status):
    processor = make(records, clock, allowed_ips=["203.0.113.0/24"])
    raw = body()
    assert processor.receive(raw, signature=sign_body(raw, SECRET), remote_addr=source).http_status == status
