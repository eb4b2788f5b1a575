"""SMS and e-mail: WRITE operations with the emulator's failure values."""

from __future__ import annotations

import pytest
from fakes import Harness, ScriptedGateway, answer, build

from decentro_core.errors import RateLimited, UpstreamUnavailable

SMS = "/v2/notifications/sms"
EMAIL = "/v2/notifications/email"


@pytest.fixture
def h() -> Harness:
    return build()


def test_send_sms_normalises_a_plus_91_number_and_returns_a_message_id(h: Harness) -> None:
    result = h.service.send_sms("+91 98765 43210", "Your code is 1234")
    assert result["status"] == "SUCCESS"
    assert result["data"]["message_id"] == result["data"]["operation_id"]
    request = h.gateway.requests[0]
    assert (request.path, request.module) == (SMS, "notifications")
    assert request.body == {"reference_id": result["data"]["reference_id"], "to": "9876543210",
                            "message": "Your code is 1234"}


def test_an_sms_to_a_number_ending_0000_is_a_delivery_failure(h: Harness) -> None:
    result = h.service.send_sms("9876540000", "hello")
    assert (result["status"], result["error"]["code"]) == ("FAILURE", "DELIVERY_FAILED")
    assert result["data"]["reference_id"] == h.gateway.requests[0].body["reference_id"]


@pytest.mark.parametrize("last4", ["0500", "0408"])
def test_an_sms_with_unknown_outcome_is_pending_and_sent_once(h: Harness, last4: str) -> None:
    result = h.service.send_sms("987654" + last4, "hello")
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "OUTCOME_UNKNOWN")
    assert h.gateway.emulator.stats()["requests"][SMS] == 1


def test_an_sms_answered_503_is_retried_with_the_same_reference_then_raises(h: Harness) -> None:
    with pytest.raises(UpstreamUnavailable):
        h.service.send_sms("9876540503", "hello")
    assert len(h.gateway.requests) == 4
    assert len({r.reference_id for r in h.gateway.requests}) == 1


def test_an_sms_answered_429_is_retried_then_raises_rate_limited(h: Harness) -> None:
    with pytest.raises(RateLimited):
        h.service.send_sms("9876540429", "hello")
    assert len(h.gateway.requests) == 4


def test_send_email_returns_success_with_the_reference_it_sent(h: Harness) -> None:
    result = h.service.send_email("jane@example.com", "Welcome", "Hello there")
    assert result["status"] == "SUCCESS"
    assert h.gateway.requests[0].path == EMAIL
    assert h.gateway.requests[0].body["to"] == "jane@example.com"
    assert result["data"]["reference_id"] == h.gateway.requests[0].body["reference_id"]


def test_an_email_to_the_fail_local_part_is_a_delivery_failure(h: Harness) -> None:
    result = h.service.send_email("fail@example.com", "Subject", "Body")
    assert (result["status"], result["error"]["code"]) == ("FAILURE", "DELIVERY_FAILED")


@pytest.mark.parametrize("local", ["timeout", "error500"])
def test_an_email_with_unknown_outcome_is_pending_and_sent_once(h: Harness, local: str) -> None:
    result = h.service.send_email(f"{local}@example.com", "Subject", "Body")
    assert (result["status"], result["data"]["reconciliation"]) == ("PENDING", "OUTCOME_UNKNOWN")
    assert len(h.gateway.requests) == 1


def test_the_notification_paths_come_from_settings() -> None:
    ok = answer(200, {"decentroTxnId": "T1", "status": "SUCCESS", "data": {"messageId": "M1"}})
    gateway = ScriptedGateway([ok])
    h = build(gateway, sms_path="/custom/sms", email_path="/custom/mail")
    assert h.service.send_sms("9876543210", "hi")["data"]["message_id"] == "M1"
    h.service.send_email("jane@example.com", "s", "b")
    assert [r.path for r in gateway.requests] == ["/custom/sms", "/custom/mail"]
