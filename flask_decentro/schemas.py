"""Request bodies of the blueprint, checked for shape before the core checks the values.

Unknown fields are refused (marshmallow's default ``RAISE``). Formats (PAN, IFSC, VPA...)
are the core's job (:mod:`decentro_core.validation`): one rule, one place.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates, validates_schema

from decentro_core.validation import RupeeAmount

__all__ = [
    "AadhaarOtpStartSchema",
    "AadhaarOtpVerifySchema",
    "AadhaarXmlSchema",
    "BankSchema",
    "CkycSchema",
    "PanSchema",
    "PaymentSchema",
    "VpaSchema",
]



def _text(max_length: int = 200, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


class _KycSchema(Schema):
    consent = fields.Raw(required=True)  # checked separately: its errors answer CONSENT_REQUIRED
    user_id = _text(200)


class PanSchema(_KycSchema):
    pan = _text(20, required=True)
    name = _text(200)
    detailed = fields.Boolean(truthy={True}, falsy={False})  # JSON true or false only


class BankSchema(_KycSchema):
    account_number = _text(40, required=True)
    ifsc = _text(20, required=True)
    name = _text(200)
    validation_type = fields.String(validate=validate.OneOf(["penniless", "pennydrop", "hybrid"]))


class CkycSchema(_KycSchema):
    pan = _text(20, required=True)


class AadhaarXmlSchema(_KycSchema):
    """Exactly one of ``xml`` (text), ``xml_base64``, ``zip_base64`` or an uploaded ``file``."""

    xml = fields.String(validate=validate.Length(min=1))
    xml_base64 = fields.String(validate=validate.Length(min=1))
    zip_base64 = fields.String(validate=validate.Length(min=1))
    file = fields.Raw()
    share_code = _text(20, required=True)
    mobile = _text(20)
    email = _text(254)

    @validates("file")
    def _uploaded_bytes(self, value: Any, **_: Any) -> None:
        # Only a multipart upload puts bytes here; JSON cannot, so a JSON "file" is refused.
        if not isinstance(value, bytes) or not value:
            raise ValidationError("Upload the file as multipart/form-data")

    @validates_schema
    def _one_document(self, data: dict[str, Any], **_: Any) -> None:
        given = [name for name in ("xml", "xml_base64", "zip_base64", "file") if name in data]
        if len(given) != 1:
            raise ValidationError("Give exactly one of xml, xml_base64, zip_base64, file", "xml")


class AadhaarOtpStartSchema(_KycSchema):
    aadhaar_number = _text(20, required=True)


class AadhaarOtpVerifySchema(_KycSchema):
    initiation_id = _text(100, required=True)
    otp = _text(10, required=True)
    share_code = _text(20)


class VpaSchema(_KycSchema):
    upi_id = _text(320, required=True)


class CustomerSchema(Schema):
    name = _text(200, required=True)
    email = _text(254, required=True)
    phone = _text(20, required=True)
    upi_id = _text(100)


class PaymentSchema(Schema):
    amount = RupeeAmount(required=True)
    currency = fields.String(load_default="INR", validate=validate.OneOf(["INR"]))
    payment_method = fields.String(load_default="upi", validate=validate.OneOf(["upi"]))
    customer_details = fields.Nested(CustomerSchema, required=True)
    purpose = _text(50)
    expiry_minutes = fields.Integer(strict=True)
    user_id = _text(200)
