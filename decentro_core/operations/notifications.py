"""SMS and e-mail. No public Decentro reference documents these endpoints: their paths come
from settings (``DECENTRO_SMS_PATH``, ``DECENTRO_EMAIL_PATH``) and must be confirmed with
Decentro. Sending is a write: a message is never sent twice on a retry."""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from ..envelope import Outcome, classify, data_of, failure, operation_id_of, provider_code_of, succeeded
from ..errors import UpstreamProtocolError
from ..masking import mask_email, mask_phone
from ..ports import GatewayResponse
from ..retry import RetryMode
from ..validation import MobileField, StrictSchema
from .base import Operation, Request

__all__ = ["EMAIL", "EmailSchema", "SMS", "SmsSchema"]


class SmsSchema(StrictSchema):
    phone = MobileField(required=True)
    message = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class EmailSchema(StrictSchema):
    email = fields.Email(required=True)
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    body = fields.String(required=True, validate=validate.Length(min=1, max=100_000))


def sms_body(request: Request, reference_id: str) -> dict[str, Any]:
    return {"reference_id": reference_id, "to": request["phone"], "message": request["message"]}


def email_body(request: Request, reference_id: str) -> dict[str, Any]:
    return {"reference_id": reference_id, "to": request["email"], "subject": request["subject"],
            "body": request["body"]}


def parse_notification(response: GatewayResponse, reference_id: str, request: Request) -> Outcome:
    early = classify(response, request_id=reference_id)
    if early:
        return early
    body = response.body
    txn = operation_id_of(body)
    if succeeded(body, request_id=reference_id):
        message_id = data_of(body).get("messageId") or txn
        if not message_id:  # accepted, but nothing to trace the message by
            raise UpstreamProtocolError("Decentro's message answer lacks its id", request_id=reference_id)
        return Outcome("SUCCESS", txn, {"message_id": message_id})
    return failure("DELIVERY_FAILED", operation_id=txn, provider_code=provider_code_of(body))


SMS = Operation(
    name="sms", method="POST", path="{settings.sms_path}", module="notifications", mode=RetryMode.WRITE,
    schema=SmsSchema(), body=sms_body, parse=parse_notification, subject=lambda request: mask_phone(request["phone"]),
)
EMAIL = Operation(
    name="email", method="POST", path="{settings.email_path}", module="notifications", mode=RetryMode.WRITE,
    schema=EmailSchema(), body=email_body, parse=parse_notification,
    subject=lambda request: mask_email(request["email"]),
)
