"""The HTTP bodies of the blueprint: the core's schemas, plus only what HTTP carries.

Every field rule (PAN, IFSC, VPA, amounts, consent text and purpose...) is the core's, declared
once in :mod:`decentro_core.validation` and beside each operation in
:mod:`decentro_core.operations`. A body schema here is the operation's own schema with the
fields a request adds around it: ``consent`` (the core's consent rules, less what the server
records itself), ``user_id`` (demo mode), and the ways an offline e-KYC file travels (text,
base64 or an upload). The same classes validate requests and generate the OpenAPI document
(:mod:`flask_decentro.openapi`), so the two cannot drift apart. Unknown fields are refused.

The answer schemas (the envelope, the error body, the callback acknowledgement) describe what
the routes send; they document, they validate nothing at run time.
"""

from __future__ import annotations

import copy
from typing import Any

from marshmallow import INCLUDE, RAISE, Schema, ValidationError, fields, missing, validate, validates, validates_schema

from decentro_core.operations.aadhaar import AadhaarFileOptions, AadhaarNumberSchema, AadhaarOtpVerifySchema
from decentro_core.operations.kyc import BankSchema, CkycSchema, PanSchema
from decentro_core.operations.payments import CustomerSchema, PaymentSchema
from decentro_core.operations.vpa import VpaSchema
from decentro_core.validation import USER_ID_MAX, ConsentSchema

__all__ = [
    "AadhaarOtpStartBody",
    "AadhaarOtpVerifyBody",
    "AadhaarXmlBody",
    "AckSchema",
    "BankBody",
    "CkycBody",
    "ConsentBody",
    "EnvelopeSchema",
    "ErrorSchema",
    "PanBody",
    "PaymentBody",
    "VpaBody",
]


def required(schema: type[Schema], name: str) -> Any:
    """The core schema's field ``name``, same rules, but required (and never null) here."""
    copied = copy.copy(schema._declared_fields[name])
    copied.required, copied.load_default, copied.allow_none = True, missing, False
    return copied


# -- requests ---------------------------------------------------------------------------------


class ConsentBody(ConsentSchema):
    """Consent as the client sends it: the core's rules, less ``client_ip`` and ``user_agent``
    (where it was asked from is the server's to record, never the client's to claim)."""

    class Meta:
        unknown = RAISE
        exclude = ("client_ip", "user_agent")


class HttpFields(Schema):
    """What every KYC route's body adds to its operation's fields."""

    consent = fields.Nested(ConsentBody, required=True, metadata={
        "description": "The consent the user gave: checked before anything else (400 CONSENT_REQUIRED)."})
    user_id = fields.String(validate=validate.Length(min=1, max=USER_ID_MAX), metadata={
        "description": "Demo mode only (no identity callable): the user the call is for. "
                       "With an identity callable the signed-in user is used and this is ignored."})


class PanBody(PanSchema, HttpFields):
    """``POST /kyc/pan``."""


class BankBody(BankSchema, HttpFields):
    """``POST /kyc/bank``."""


class CkycBody(CkycSchema, HttpFields):
    """``POST /kyc/ckyc``."""


class AadhaarOtpStartBody(AadhaarNumberSchema, HttpFields):
    """``POST /kyc/aadhaar/otp``."""


class AadhaarOtpVerifyBody(AadhaarOtpVerifySchema, HttpFields):
    """``POST /kyc/aadhaar/otp/verify``."""


class VpaBody(VpaSchema, HttpFields):
    """``POST /upi/vpa``."""


DOCUMENT_FIELDS = ("xml", "xml_base64", "zip_base64", "file")


class AadhaarXmlBody(AadhaarFileOptions, HttpFields):
    """``POST /kyc/aadhaar-xml``: exactly one of ``xml`` (text), ``xml_base64``, ``zip_base64``
    (JSON) or ``file`` (a multipart upload, with ``consent`` as a JSON string)."""

    xml = fields.String(validate=validate.Length(min=1), metadata={"description": "The offline e-KYC XML as text."})
    xml_base64 = fields.String(validate=validate.Length(min=1), metadata={"description": "The XML, base64."})
    zip_base64 = fields.String(validate=validate.Length(min=1),
                               metadata={"description": "UIDAI's share-code ZIP, base64."})
    file = fields.Raw(metadata={"description": "multipart/form-data only: the XML or ZIP file.",
                                "type": "string", "format": "binary"})

    @validates("file")
    def _uploaded_bytes(self, value: Any, **_: Any) -> None:
        # Only a multipart upload puts bytes here; JSON cannot, so a JSON "file" is refused.
        if not isinstance(value, bytes) or not value:
            raise ValidationError("Upload the file as multipart/form-data")

    @validates_schema
    def _one_document(self, data: dict[str, Any], **_: Any) -> None:
        given = [name for name in DOCUMENT_FIELDS if name in data]
        if len(given) != 1:
            raise ValidationError("Give exactly one of xml, xml_base64, zip_base64, file", "xml")


class CustomerBody(CustomerSchema):
    """Over HTTP a payment names its customer: name, e-mail and phone (the core's rules)."""

    class Meta:
        unknown = RAISE

    name = required(CustomerSchema, "name")
    email = required(CustomerSchema, "email")
    phone = required(CustomerSchema, "phone")


class PaymentBody(PaymentSchema):
    """``POST /payments``: the core's payment, its customer required."""

    customer_details = fields.Nested(CustomerBody, required=True)
    user_id = HttpFields._declared_fields["user_id"]


# -- answers (documentation only) -------------------------------------------------------------


class ErrorDetail(Schema):
    code = fields.String(required=True, metadata={"description": "Stable machine-readable code."})
    message = fields.String(required=True, metadata={"description": "Written by the library; never echoes input."})
    provider_code = fields.String(metadata={"description": "Decentro's responseCode or responseKey, if any."})
    fields_ = fields.Dict(
        data_key="fields", keys=fields.String(), values=fields.List(fields.String()),
        metadata={"description": "400 only: each refused field (dotted names) and why."},
    )


class ErrorSchema(Schema):
    """Every error answer of the routes (``flask_decentro.errors``)."""

    status = fields.String(required=True, validate=validate.Equal("FAILURE"))
    error = fields.Nested(ErrorDetail, required=True)


class EnvelopeData(Schema):
    class Meta:
        unknown = INCLUDE  # documented as open: each operation adds its own fields

    reference_id = fields.String(required=True, metadata={"description": "The unique id this library sent (ours)."})
    operation_id = fields.String(required=True, allow_none=True, metadata={"description": "Decentro's decentroTxnId."})


class EnvelopeSchema(Schema):
    """A completed call: HTTP 200 whatever the business outcome (``status`` says it)."""

    status = fields.String(required=True, validate=validate.OneOf(["SUCCESS", "FAILURE", "PENDING"]))
    data = fields.Nested(EnvelopeData, required=True)
    error = fields.Nested(ErrorDetail, metadata={"description": "Only when status is FAILURE."})


class AckSchema(Schema):
    """The answer to Decentro's callback delivery."""

    response_code = fields.String(
        required=True, validate=validate.OneOf(["CB_S00000", "CB_E00009", "CB_E00013", "CB_E00000"]),
        metadata={"description": "CB_S00000 accepted; CB_E00009 bad request; CB_E00013 unauthorised; "
                                 "CB_E00000 not stored, retry."},
    )
