"""Emulated SMS and e-mail sending.

Decentro publishes no notification API: the paths and bodies (``{reference_id, to, message}``
and ``{reference_id, to, subject, body}``) are this project's guess, configurable on the
emulator, and must be confirmed with Decentro before going live.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .scenarios import MAGIC_DIGITS, MAGIC_EMAIL_LOCAL_PARTS
from .wire import Fault, Reply, Runtime, digits_fault, failure, fault_reply, require_str, success

__all__ = ["send_email", "send_sms"]

PHONE_PATTERN = r"(\+?91)?[6-9][0-9]{9}"
EMAIL_PATTERN = r"[^@\s]{1,64}@[^@\s]+\.[A-Za-z]{2,}"


def send_sms(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    require_str(body, "reference_id", max_len=100)
    phone = require_str(body, "to", pattern=PHONE_PATTERN, max_len=13)
    require_str(body, "message", max_len=2000)
    txn = rt.new_id()
    fault = digits_fault(phone[-4:], txn)
    if fault is not None:
        return fault
    if MAGIC_DIGITS.get(phone[-4:]) == "invalid":
        return 200, failure(txn, "The SMS could not be delivered.", code="E00000", key="error_sms_failed")
    return 200, success(txn, "SMS sent.", key="success_sms_sent", data={"messageId": txn})


def send_email(rt: Runtime, body: Mapping[str, Any]) -> Reply | Fault:
    require_str(body, "reference_id", max_len=100)
    address = require_str(body, "to", pattern=EMAIL_PATTERN, max_len=254)
    require_str(body, "subject", max_len=255)
    require_str(body, "body", max_len=100_000)
    txn = rt.new_id()
    outcome = MAGIC_EMAIL_LOCAL_PARTS.get(address.split("@", 1)[0].lower())
    if outcome == "failure":
        return 200, failure(txn, "The e-mail could not be delivered.", code="E00000", key="error_email_failed")
    if outcome is not None:
        return fault_reply(outcome, txn)
    return 200, success(txn, "E-mail sent.", key="success_email_sent", data={"messageId": txn})
