"""Outcome events: written with the status change, once per transition, delivered to handlers
once each, retried with backoff when a handler raises, and free of personal data."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from decentro_core import WebhookProcessor, sign_body
from decentro_core.errors import FailureReplayed, GatewayTimeout, OtpError
from decentro_core.events import EVENT_TYPES, event_type
from decentro_core.ports import OperationRecord, OutcomeEvent

from fakes import Harness, ScriptedGateway, aadhaar_ending, answer, build, pan_found, payment_created

SECRET = "test-webhook-secret"
PAN, NAME = "ABCDE1234F", "Testa Synthetica"


def processor(h: Harness) -> WebhookProcessor:
    return WebhookProcessor(h.records, h.vault, h.audit, secrets=[SECRET], clock=h.clock,
                            events=h.service.events)


def callback(h: Harness, reference: str, status: str, key: str = "CB-1") -> int:
    body = json.dumps({"callbackTxnId": key, "transactionStatus": status, "referenceId": reference}).encode()
    return processor(h).receive(body, signature=sign_body(body, SECRET)).http_status


def pending_payment(h: Harness) -> str:
    """A payment link Decentro's sandbox leaves PENDING (amount 30)."""
    created = h.service.initiate_payment({"amount": 30}, user_id="user-1")
    assert created["status"] == "PENDING"
    return str(created["data"]["reference_id"])


class Inbox:
    """A handler that keeps what it got, and raises for its first ``fail`` calls."""

    def __init__(self, fail: int = 0) -> None:
        self.got: list[OutcomeEvent] = []
        self.calls = 0
        self.fail = fail

    def __call__(self, event: OutcomeEvent) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise RuntimeError("the application's database is down")
        self.got.append(event)


# -- what is emitted --------------------------------------------------------------------------


def test_a_callback_settling_a_payment_emits_one_payment_succeeded_with_ids_and_statuses() -> None:
    h = build()
    inbox = Inbox()
    h.service.on("payment.succeeded", inbox)
    reference = pending_payment(h)

    assert callback(h, reference, "SUCCESS") == 200
    assert callback(h, reference, "SUCCESS", key="CB-2") == 200  # Decentro's retry: a new callback id

    assert [(e.type, e.reference_id, e.old_status, e.new_status) for e in inbox.got] == [
        ("payment.succeeded", reference, "PENDING", "SUCCESS")]
    event = inbox.got[0]
    assert event.operation == "upi_payment" and event.user_id == "user-1"
    assert event.operation_id == h.record(reference).operation_id
    stored = h.records.outbox.get(event.key)
    assert stored is not None and stored.state == "delivered" and stored.attempts == 1


def test_an_event_carries_no_personal_data() -> None:
    h = build()
    inbox = Inbox()
    h.service.on("*", inbox)
    h.service.verify_pan(PAN, NAME, user_id="user-1")
    reference = h.service.initiate_payment(
        {"amount": 30, "customer_details": {"name": NAME, "upi_id": "charles.babbage@okhdfc",
                                            "phone": "9876543210", "email": "testa@example.com"}},
        user_id="user-1")["data"]["reference_id"]
    callback(h, reference, "FAILURE")

    assert [e.type for e in inbox.got] == ["kyc.completed", "payment.failed"]
    text = json.dumps([e.as_dict() for e in inbox.got]) + repr(inbox.got)
    for personal in (PAN, NAME, "charles.babbage", "9876543210", "testa@example.com"):
        assert personal not in text


def test_each_outcome_has_its_event_type_and_non_outcomes_emit_nothing() -> None:
    h = build()
    inbox = Inbox()
    h.service.on("*", inbox)
    h.service.verify_bank("123456789011", "SBIN0001077")        # kyc.completed SUCCESS
    h.service.verify_aadhaar_xml(b"<x/>", "1234")               # the mock verifier accepts it
    started = h.service.start_aadhaar_otp(aadhaar_ending("1234"))  # not an outcome
    h.service.verify_aadhaar_otp(started["data"]["initiation_id"], "123456", share_code="1234")
    h.service.initiate_payment({"amount": 30})                  # PENDING: not an outcome
    h.service.send_sms("9876543210", "hello")                   # notifications: not an outcome

    assert [(e.type, e.new_status) for e in inbox.got] == [
        ("kyc.completed", "SUCCESS"), ("aadhaar.verified", "SUCCESS"), ("aadhaar.verified", "SUCCESS")]
    assert event_type("sms", "SUCCESS") is None and event_type("upi_payment", "PENDING") is None
    assert set(EVENT_TYPES) >= {"payment.succeeded", "payment.failed", "payment.expired", "payment.outcome_unknown"}


def test_a_call_that_fails_before_decentro_answers_emits_nothing() -> None:
    h = build(ScriptedGateway([GatewayTimeout("no answer", request_id="x")]))
    inbox = Inbox()
    h.service.on("*", inbox)
    with pytest.raises(GatewayTimeout):
        h.service.verify_pan(PAN)
    assert inbox.got == [] and h.records.outbox.events() == []


def test_a_status_check_and_a_callback_settling_one_payment_emit_one_event() -> None:
    h = build()
    inbox = Inbox()
    h.service.on("payment.*", inbox)
    reference = pending_payment(h)
    h.gateway.emulator.settle_payment(h.record(reference).operation_id or "", "SUCCESS")

    assert h.service.get_payment_status(reference)["status"] == "SUCCESS"  # asks Decentro: settles
    assert callback(h, reference, "SUCCESS") == 200                      # the callback finds it settled

    assert [e.type for e in inbox.got] == ["payment.succeeded"]
    assert len(h.records.outbox.events()) == 1


# -- delivery ---------------------------------------------------------------------------------


def test_a_raising_handler_is_retried_with_backoff_and_a_returning_one_is_not_called_again() -> None:
    h = build()
    flaky, steady = Inbox(fail=2), Inbox()
    h.service.events.mode = "worker"  # delivery driven by the test, not a thread
    h.service.on("payment.succeeded", flaky, name="flaky")
    h.service.on("payment.succeeded", steady, name="steady")
    reference = pending_payment(h)
    callback(h, reference, "SUCCESS")
    key = f"{reference}:payment.succeeded"

    first = h.service.events.dispatch_due()
    stored = h.records.outbox.get(key)
    assert first.retrying == (key,) and stored is not None
    assert (stored.state, stored.attempts, stored.delivered_to) == ("retrying", 1, ("steady",))
    assert stored.next_attempt_at == h.clock() + timedelta(seconds=5)
    assert stored.last_error == "RuntimeError"  # the type only: an app's message may hold anything

    assert h.service.events.dispatch_due() == type(first)()  # not due yet: nothing happens
    h.clock.advance(seconds=5)
    h.service.events.dispatch_due()                          # second failure: waits 10 s now
    assert h.records.outbox.get(key).next_attempt_at == h.clock() + timedelta(seconds=10)  # type: ignore[union-attr]
    h.clock.advance(seconds=10)
    assert h.service.events.dispatch_due().delivered == (key,)

    assert (len(flaky.got), len(steady.got), flaky.calls) == (1, 1, 3)
    done = h.records.outbox.get(key)
    assert done is not None and done.state == "delivered" and set(done.delivered_to) == {"flaky", "steady"}


def test_an_event_is_dead_after_its_last_attempt_and_a_replay_delivers_it() -> None:
    h = build(events_max_attempts=2)
    broken = Inbox(fail=2)
    h.service.events.mode = "worker"
    h.service.on("payment.failed", broken)
    reference = pending_payment(h)
    callback(h, reference, "FAILURE")
    key = f"{reference}:payment.failed"

    h.service.events.dispatch_due()
    h.clock.advance(seconds=60)
    assert h.service.events.dispatch_due().dead == (key,)
    h.clock.advance(hours=2)
    assert h.service.events.dispatch_due().delivered == ()  # dead: not retried by itself

    assert h.service.events.replay(key).delivered == (key,)
    assert [e.key for e in broken.got] == [key]
    with pytest.raises(KeyError):
        h.service.events.replay("no-such-event")


def test_inline_mode_delivers_in_the_committing_call_and_worker_mode_leaves_it_to_the_worker() -> None:
    inline, worker = build(), build(events_dispatch="worker")
    for h in (inline, worker):
        h.service.on("payment.succeeded", Inbox(), name="inbox")
        callback(h, pending_payment(h), "SUCCESS")
    assert [e.state for e in inline.records.outbox.events()] == ["delivered"]
    assert [e.state for e in worker.records.outbox.events()] == ["pending"]
    assert len(worker.service.events.dispatch_due().delivered) == 1


def test_an_event_nobody_here_listens_to_waits_for_a_process_that_does() -> None:
    h = build()
    callback(h, pending_payment(h), "SUCCESS")  # no handler registered yet
    assert [e.state for e in h.records.outbox.events()] == ["pending"]
    late = Inbox()
    h.service.on("payment.succeeded", late)
    assert len(h.service.events.dispatch_due().delivered) == 1 and len(late.got) == 1


def test_handlers_subscribe_by_type_family_or_everything_and_names_are_unique() -> None:
    h = build()
    exact, family, everything = Inbox(), Inbox(), Inbox()
    h.service.on("kyc.completed", exact, name="exact")
    h.service.on("payment.*", family, name="family")

    @h.service.on("*", name="everything")
    def all_of_them(event: OutcomeEvent) -> None:
        everything(event)

    h.service.verify_pan(PAN)
    callback(h, pending_payment(h), "EXPIRED")
    assert ([e.type for e in exact.got], [e.type for e in family.got], [e.type for e in everything.got]) == (
        ["kyc.completed"], ["payment.expired"], ["kyc.completed", "payment.expired"])
    with pytest.raises(ValueError, match="unknown event type"):
        h.service.on("payment.settled", exact)
    with pytest.raises(ValueError, match="pass name="):
        h.service.on("*", Inbox(), name="exact")


def test_a_claimed_event_is_not_claimed_again_until_its_lease_runs_out() -> None:
    h = build(events_dispatch="worker")
    callback(h, pending_payment(h), "SUCCESS")
    outbox, now = h.records.outbox, h.clock()
    assert len(outbox.claim(now, limit=10, lease=60)) == 1
    assert outbox.claim(now + timedelta(seconds=59), limit=10, lease=60) == []
    assert len(outbox.claim(now + timedelta(seconds=61), limit=10, lease=60)) == 1  # its dispatcher died


# -- reconciliation ---------------------------------------------------------------------------


def _old(h: Harness, minutes: float) -> None:
    h.clock.advance(minutes=minutes)
    h.monotonic.advance(minutes * 60)


def test_reconcile_settles_a_pending_payment_decentro_has_settled_and_emits_its_event() -> None:
    h = build()
    inbox = Inbox()
    h.service.on("payment.*", inbox)
    reference = pending_payment(h)
    h.gateway.emulator.settle_payment(h.record(reference).operation_id or "", "SUCCESS")  # its callback is lost
    young = h.service.reconcile_payments(older_than=timedelta(minutes=15))
    _old(h, 16)

    report = h.service.reconcile_payments(older_than=timedelta(minutes=15))

    assert young.examined == 0
    assert (report.examined, report.settled) == (1, 1)
    assert h.record(reference).status == "SUCCESS" and [e.type for e in inbox.got] == ["payment.succeeded"]
    again = h.service.reconcile_payments(older_than=timedelta(minutes=15))
    assert again.examined == 0 and len(inbox.got) == 1  # idempotent: nothing left, nothing emitted


def test_a_payment_whose_creation_never_answered_becomes_outcome_unknown_after_its_link_expires() -> None:
    h = build(ScriptedGateway([GatewayTimeout("no answer", request_id="x")]), reconcile_grace=600)
    inbox = Inbox()
    h.service.on("payment.*", inbox)
    created = h.service.initiate_payment({"amount": 30, "expiry_minutes": 30}, user_id="user-1")
    reference = created["data"]["reference_id"]
    assert created["data"]["reconciliation"] == "OUTCOME_UNKNOWN"

    _old(h, 20)
    before_expiry = h.service.reconcile_payments(older_than=timedelta(minutes=15))
    _old(h, 25)  # 45 minutes: past the link's 30 and the 10-minute grace
    after_expiry = h.service.reconcile_payments(older_than=timedelta(minutes=15))

    assert (before_expiry.examined, before_expiry.pending) == (1, 1)
    assert (after_expiry.examined, after_expiry.unresolved) == (1, 1)
    assert h.record(reference).status == "OUTCOME_UNKNOWN"
    assert [(e.type, e.old_status) for e in inbox.got] == [("payment.outcome_unknown", "PENDING")]
    status = h.service.get_payment_status(reference)
    assert (status["status"], status["data"]["reconciliation"], status["data"]["link_expired"]) == (
        "PENDING", "OUTCOME_UNKNOWN", True)
    assert h.service.reconcile_payments(older_than=timedelta(minutes=15)).examined == 0

    # The customer had paid after all: Decentro's late callback still settles it, a PENDING never.
    assert callback(h, reference, "PENDING", key="CB-late-pending") == 200
    assert h.record(reference).status == "OUTCOME_UNKNOWN"
    assert callback(h, reference, "SUCCESS", key="CB-late") == 200
    assert h.record(reference).status == "SUCCESS"
    assert [e.type for e in inbox.got] == ["payment.outcome_unknown", "payment.succeeded"]


def test_a_payment_decentro_no_longer_finds_after_its_expiry_is_expired() -> None:
    not_found = answer(400, {"decentroTxnId": "T", "status": "FAILURE", "responseCode": "E00009",
                             "message": "Transaction not found"})
    h = build(ScriptedGateway([payment_created(txn="TXN-GONE"), not_found]))
    inbox = Inbox()
    h.service.on("payment.*", inbox)
    reference = h.service.initiate_payment({"amount": 30, "expiry_minutes": 5})["data"]["reference_id"]
    _old(h, 16)

    report = h.service.reconcile_payments(older_than=timedelta(minutes=15))

    assert (report.examined, report.expired) == (1, 1)
    assert h.record(reference).status == "EXPIRED" and [e.type for e in inbox.got] == ["payment.expired"]
    assert h.service.get_payment_status(reference)["error"]["code"] == "PAYMENT_EXPIRED"


def test_reconcile_examines_at_most_its_limit_oldest_first_and_counts_errors() -> None:
    h = build(ScriptedGateway([payment_created(txn=f"TXN-{i}") for i in range(3)]
                              + [GatewayTimeout("down", request_id="x")]), max_retries=0)
    references = []
    for _ in range(3):
        references.append(h.service.initiate_payment({"amount": 30})["data"]["reference_id"])
        h.clock.advance(seconds=1)
    _old(h, 16)

    first = h.service.reconcile_payments(older_than=timedelta(minutes=15), limit=2)

    assert (first.examined, first.errors) == (2, 2)
    asked = [r.path for r in h.gateway.requests if r.method == "GET"]
    assert asked == ["/v2/payments/transaction/TXN-0/status", "/v2/payments/transaction/TXN-1/status"]
    assert all(h.record(r).status == "PENDING" for r in references)


# -- Aadhaar OTP validation's own budget ------------------------------------------------------


def test_otp_validation_waits_its_own_budget_and_a_repeat_answers_the_first_result() -> None:
    h = build(aadhaar_otp_timeout=60.0)
    started = h.service.start_aadhaar_otp(aadhaar_ending("1234"), user_id="user-1")
    initiation = started["data"]["initiation_id"]

    first = h.service.verify_aadhaar_otp(initiation, "123456", share_code="1234", user_id="user-1")
    again = h.service.verify_aadhaar_otp(initiation, "123456", share_code="1234", user_id="user-1")

    validations = [r for r in h.gateway.requests if r.path.endswith("/otp/validate")]
    assert len(validations) == 1 and validations[0].timeout == 60.0  # not DECENTRO_TIMEOUT's 10 s
    assert first["status"] == "SUCCESS" and "idempotent_replay" not in first["data"]
    assert again["data"].pop("idempotent_replay") is True and again == first


def test_a_wrong_otp_fails_again_without_a_call_and_a_different_otp_is_a_new_validation() -> None:
    h = build()
    initiation = h.service.start_aadhaar_otp(aadhaar_ending("1234"))["data"]["initiation_id"]
    with pytest.raises(OtpError) as first:
        h.service.verify_aadhaar_otp(initiation, "000000")
    with pytest.raises(FailureReplayed) as again:
        h.service.verify_aadhaar_otp(initiation, "000000")
    assert (again.value.code, again.value.http_status) == (first.value.code, first.value.http_status)
    assert h.service.verify_aadhaar_otp(initiation, "123456")["status"] == "SUCCESS"
    assert len([r for r in h.gateway.requests if r.path.endswith("/otp/validate")]) == 2


def test_a_validation_still_in_flight_answers_pending_instead_of_spending_the_otp_again() -> None:
    h = build()
    initiation = h.service.start_aadhaar_otp(aadhaar_ending("1234"))["data"]["initiation_id"]
    # What another worker's validation of this same submission leaves while Decentro thinks:
    # its write-ahead record, no answer yet.
    reference = "otpv-" + h.vault.fingerprint(f"aadhaar-otp||{initiation}|123456")[:32]
    h.records.save_operation(OperationRecord(reference, "aadhaar_otp_verify", "PENDING", h.clock(), h.clock()))

    second = h.service.verify_aadhaar_otp(initiation, "123456")

    assert (second["status"], second["data"]["reconciliation"]) == ("PENDING", "IN_FLIGHT")
    assert second["data"]["reference_id"] == reference
    assert [r for r in h.gateway.requests if r.path.endswith("/otp/validate")] == []


def test_pan_verification_keeps_the_general_read_timeout() -> None:
    h = build(ScriptedGateway([pan_found()]))
    h.service.verify_pan(PAN)
    assert h.gateway.requests[0].timeout == 10.0


def test_inline_delivery_needs_no_second_transaction_to_claim_the_event() -> None:
    h = build()
    inbox = Inbox()
    h.service.on("payment.succeeded", inbox)
    claims: list[Any] = []
    claim = h.records.outbox.claim
    h.records.outbox.claim = lambda *a, **k: claims.append(k) or claim(*a, **k)  # type: ignore[method-assign]
    reference = pending_payment(h)
    callback(h, reference, "SUCCESS")
    per_event = [k for k in claims if k.get("key") is not None]  # not the process's periodic sweep
    assert len(inbox.got) == 1 and per_event == []  # inserted already leased to this process
    other = h.records.outbox.claim(h.clock(), limit=10, lease=60)  # no other dispatcher can take it meanwhile
    assert other == [] and h.records.outbox.get(inbox.got[0].key).state == "delivered"  # type: ignore[union-attr]


def test_each_delivery_outcome_is_reported_to_the_instruments() -> None:
    from decentro_core.observability import NoInstruments

    class Recording(NoInstruments):
        def __init__(self) -> None:
            self.dispatched: list[tuple[str, str]] = []

        def event_dispatch(self, event_type: str, outcome: str) -> None:
            self.dispatched.append((event_type, outcome))

    instruments = Recording()
    h = build(instruments=instruments, events_max_attempts=2)
    h.service.events.mode = "worker"
    h.service.on("payment.failed", Inbox(fail=5))
    callback(h, pending_payment(h), "FAILURE")
    h.service.events.dispatch_due()
    h.clock.advance(seconds=60)
    h.service.events.dispatch_due()
    assert instruments.dispatched == [("payment.failed", "retrying"), ("payment.failed", "dead")]


def _wait_for(predicate: Any, limit: float = 30.0) -> bool:
    import threading
    import time

    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            return False
        threading.Event().wait(0.02)
    return True


def test_an_event_a_process_died_before_delivering_inline_is_delivered_by_the_next_process() -> None:
    """Inline mode inserts the event leased to the committing process; if that process dies
    before delivering it (a worker killed after the commit), another inline process must find
    it once the lease has run out, not leave it pending until someone runs a replay."""
    from decentro_core.memory import MemoryRecordStore

    records = MemoryRecordStore()
    died = build(records=records)
    died.service.on("payment.succeeded", Inbox(), name="inbox")
    died.service.events.committed = lambda events: None  # type: ignore[method-assign]  # killed after the commit
    stranded = pending_payment(died)
    callback(died, stranded, "SUCCESS", key="CB-A")
    key = f"{stranded}:payment.succeeded"
    assert records.outbox.get(key).state == "pending"  # type: ignore[union-attr]

    alive = build(records=records)  # the restarted process: same handler, its own dispatcher
    inbox = Inbox()
    alive.service.on("payment.succeeded", inbox, name="inbox")
    alive.ids.prefix = "after-restart"
    alive.clock.advance(seconds=alive.service.events.lease + 1)
    try:
        callback(alive, pending_payment(alive), "SUCCESS", key="CB-B")  # life goes on in this process
        assert _wait_for(lambda: records.outbox.get(key).state == "delivered"), records.outbox.get(key)  # type: ignore[union-attr]
        assert sorted(e.reference_id for e in inbox.got).count(stranded) == 1
    finally:
        alive.service.close()


def test_a_replay_where_no_handler_takes_the_event_is_refused_and_leaves_it_undelivered() -> None:
    """``flask decentro events replay`` from an app that registers no handler for the event's
    type (another FLASK_APP, a handler since renamed) must not mark it delivered unheard."""
    h = build(events_dispatch="worker", events_max_attempts=1)
    broken = Inbox(fail=1)
    h.service.on("payment.succeeded", broken, name="loans.mark_paid")
    reference = pending_payment(h)
    callback(h, reference, "SUCCESS")
    key = f"{reference}:payment.succeeded"
    assert h.service.events.dispatch_due().dead == (key,)

    elsewhere = build(records=h.records, events_dispatch="worker")  # an app without that handler
    elsewhere.service.on("kyc.completed", Inbox(), name="kyc-only")
    with pytest.raises(LookupError, match="no handler here takes payment.succeeded") as refused:
        elsewhere.service.events.replay(key)
    assert not isinstance(refused.value, KeyError)  # the event exists: not "no such event"
    stored = h.records.outbox.get(key)
    assert stored is not None and stored.state == "dead" and stored.delivered_to == ()
    assert h.service.events.replay(key).delivered == (key,) and len(broken.got) == 1


def test_the_memory_store_purge_forgets_row_ids_and_leases_with_the_rows() -> None:
    """A long-lived memory store must not keep what it purged: ids and event leases go too."""
    from datetime import timedelta

    h = build()
    h.service.events.on("payment.*", lambda event: None, name="noop")
    reference = pending_payment(h)
    assert callback(h, reference, "SUCCESS") == 200
    records = h.records
    assert records._ids and records._outbox.rows
    assert records.purge_before(h.clock() + timedelta(days=1)) >= 2
    assert records._ids == {} and records._outbox.rows == {} and records._outbox._leased == {}
