"""UPI id (VPA) validation: that a UPI id exists, and whose it is, before asking it to pay.

``POST /v2/payments/vpa/validate`` in Decentro's collections API reference (docs.decentro.tech)
and the spec of its Java collections SDK (``decentro-in/decentro-in-collections-sdk-java``).
A read: a retry asks again with a fresh reference id.
"""

from __future__ import annotations

from typing import Any

from marshmallow import fields, validate

from ..envelope import Outcome, classify, data_of, failure, operation_id_of, provider_code_of, succeeded
from ..errors import UpstreamProtocolError
from ..masking import mask_upi
from ..ports import GatewayResponse
from ..retry import RetryMode
from ..validation import VPA_RE, StrictSchema
from .base import Operation, Request

__all__ = ["VPA_VALIDATE", "VpaSchema", "parse_vpa"]

VPA_KEYS = {"success_upi_id_valid": "VALID", "success_upi_id_invalid": "INVALID"}  # responseKey, lowercased


class VpaSchema(StrictSchema):
    upi_id = fields.String(required=True, validate=validate.Regexp(VPA_RE, error="Not a valid UPI id."))


def vpa_body(request: Request, reference_id: str) -> dict[str, Any]:
    return {"reference_id": reference_id, "upi_id": request["upi_id"]}


def parse_vpa(response: GatewayResponse, reference_id: str, request: Request) -> Outcome:
    """Decentro documents ``success_UPI_id_valid`` / ``success_UPI_id_invalid``; an answer
    without those keys is read from ``data.status``."""
    early = classify(response, request_id=reference_id)
    if early:
        return early
    body, data = response.body, data_of(response.body)
    txn = operation_id_of(body)
    keyed = VPA_KEYS.get(str(body.get("responseKey") or body.get("response_key") or "").lower())
    said = str(data.get("status") or "").upper()
    status = keyed or said
    if succeeded(body, request_id=reference_id) and (not status or keyed and said and said != keyed):
        raise UpstreamProtocolError("Decentro's UPI id answer says neither, or both, valid and invalid",
                                    request_id=reference_id)
    found = {"upi_id_status": "VALID" if status == "VALID" else "INVALID",
             "account_holder_name": data.get("name") or None}
    if succeeded(body, request_id=reference_id) and status == "VALID":
        return Outcome("SUCCESS", txn, found)
    return failure("INVALID_DOCUMENT", operation_id=txn, fields=found, provider_code=provider_code_of(body))


VPA_VALIDATE = Operation(
    name="upi_vpa", method="POST", path="/v2/payments/vpa/validate", module="payments", mode=RetryMode.READ,
    schema=VpaSchema(), body=vpa_body, parse=parse_vpa, subject=lambda request: mask_upi(request["upi_id"]),
    cache_fields=("upi_id",), consent=True,
)
