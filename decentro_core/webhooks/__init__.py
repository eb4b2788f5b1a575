"""Decentro's callbacks (webhooks): the wire format and the framework-free processor.

:mod:`.wire` holds what a callback looks like on the wire (HMAC signatures, the fields we read,
acknowledgements), shared by the processor, the sandbox that sends callbacks and tests that sign
them. :mod:`.processor` authenticates, stores and applies them exactly once.
"""

from __future__ import annotations

from .processor import DEMO_WEBHOOK_SECRET, CallbackMismatch, OperationNotFound, ReplayReport, WebhookProcessor
from .wire import (
    ACK_ACCEPTED,
    ACK_BAD_REQUEST,
    ACK_UNAUTHORIZED,
    ACK_UNAVAILABLE,
    TERMINAL_STATUSES,
    Callback,
    WebhookAck,
    parse_callback,
    sign_body,
    validate_signature,
)

__all__ = [
    "ACK_ACCEPTED",
    "ACK_BAD_REQUEST",
    "ACK_UNAUTHORIZED",
    "ACK_UNAVAILABLE",
    "Callback",
    "CallbackMismatch",
    "DEMO_WEBHOOK_SECRET",
    "OperationNotFound",
    "ReplayReport",
    "TERMINAL_STATUSES",
    "WebhookAck",
    "WebhookProcessor",
    "parse_callback",
    "sign_body",
    "validate_signature",
]
