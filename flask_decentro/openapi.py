"""The OpenAPI 3.1 document of the blueprint, generated from the schemas the routes validate with.

:func:`build_spec` reads the request bodies from :mod:`flask_decentro.schemas` (the core's
schemas plus the HTTP-only fields) through apispec's marshmallow plugin, and the routes, their
headers and their error answers from the table below, which follows :mod:`flask_decentro.routes`
and :mod:`flask_decentro.errors` (a test checks that every rule the blueprint registers is in
the document, and schemathesis checks the live answers against it). The same app always gives
the same document, byte for byte: ``flask decentro openapi`` writes it, the blueprint serves it
at ``<prefix>/openapi.json``, and the checked-in ``docs/openapi.json`` is compared with it.

The docs page (``<prefix>/docs``) is Swagger UI from the ``flask-swagger-ui`` package (the
``docs`` extra): its files are served from the installed package, never from a CDN.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from decentro_core.operations.payments import IDEMPOTENCY_KEY_RE
from decentro_core.settings import Settings
from decentro_core.validation import MOBILE_RE, MobileField, RupeeAmount

from .config import FlaskOptions
from .schemas import (
    AadhaarOtpStartBody,
    AadhaarOtpVerifyBody,
    AadhaarXmlBody,
    AckSchema,
    BankBody,
    CkycBody,
    EnvelopeSchema,
    ErrorSchema,
    PanBody,
    PaymentBody,
    VpaBody,
)

__all__ = ["DOCS_ASSETS", "build_spec", "docs_assets_dir", "docs_page", "spec_json"]

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"


def _package_version() -> str:
    try:
        return version("flask-decentro")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without metadata
        return "0.0.0"


# -- answers --------------------------------------------------------------------------------

ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Refused input: `VALIDATION_ERROR`, `CONSENT_REQUIRED` or `DUPLICATE_KEY` (a JSON "
                        "object naming one key twice, at any depth), with `error.fields` naming each refused "
                        "field (dotted names) and why; nothing was sent to Decentro."),
    401: ("Unauthenticated", "`UNAUTHENTICATED`: the app has an identity callable and nobody is signed in."),
    404: ("NotFound", "`UNKNOWN_REFERENCE`: no such payment or OTP session for this caller."),
    409: ("Conflict", "`DUPLICATE_REFERENCE` (Decentro has seen this reference id) or "
                      "`IDEMPOTENCY_KEY_REUSED` (this Idempotency-Key was used with another payment)."),
    413: ("PayloadTooLarge", "`PAYLOAD_TOO_LARGE`: the body is over the route's limit."),
    422: ("Unprocessable", "Understood but refused: an Aadhaar OTP step (`AADHAAR_OTP_INVALID`, "
                           "`AADHAAR_OTP_SESSION_EXPIRED`, ...) or `IDEMPOTENCY_KEY_EXPIRED`."),
    429: ("RateLimited", "`RATE_LIMITED`: too many requests from this client; see `Retry-After`."),
    502: ("UpstreamError", "Decentro answered something unusable: `UPSTREAM_PROTOCOL_ERROR`, "
                           "`UPSTREAM_AUTHENTICATION_FAILED`, ..."),
    503: ("Unavailable", "Try again later: Decentro unreachable, failing or rate limiting us "
                         "(`UPSTREAM_UNAVAILABLE`, `UPSTREAM_CIRCUIT_OPEN`, ...), too many calls already "
                         "waiting on it (`UPSTREAM_BULKHEAD_FULL`, nothing sent; see `Retry-After`), a store down "
                         "(`STORE_ERROR`), or the operation not configured here."),
    504: ("UpstreamTimeout", "`UPSTREAM_TIMEOUT` or `DEADLINE_EXCEEDED`: no answer in time; a payment's "
                             "outcome is then reconciled by its status."),
}
UPSTREAM = (409, 502, 503, 504)
RATE_HEADERS = {
    "X-RateLimit-Limit": "Requests allowed in the window.",
    "X-RateLimit-Remaining": "Requests left in the window.",
    "X-RateLimit-Reset": "When the window resets (Unix time).",
}


@dataclass(frozen=True)
class Route:
    """One operation of the blueprint as the document describes it."""

    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    body: str | None = None  # a component schema name
    errors: tuple[int, ...] = ()
    limited: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


KYC_ERRORS = (400, 401, 413, 429, *UPSTREAM)


def _routes(settings: Settings, options: FlaskOptions) -> list[Route]:
    routes = [
        Route("post", "/kyc/pan", "verifyPan", "Verify a PAN with the Income Tax registry", "KYC", "PanRequest",
              KYC_ERRORS, True),
        Route("post", "/kyc/bank", "verifyBank", "Verify a bank account (penniless by default)", "KYC",
              "BankRequest", KYC_ERRORS, True),
        Route("post", "/kyc/ckyc", "fetchCkyc", "Search the Central KYC registry by PAN", "KYC", "CkycRequest",
              KYC_ERRORS, True),
        Route("post", "/kyc/aadhaar-xml", "verifyAadhaarXml",
              "Verify UIDAI's offline e-KYC file locally (signature, age, share code)", "Aadhaar",
              "AadhaarXmlRequest", (400, 401, 413, 429, 503), True),
        Route("post", "/kyc/aadhaar/otp", "startAadhaarOtp", "Start Decentro's Aadhaar OTP e-KYC", "Aadhaar",
              "AadhaarOtpStartRequest", (*KYC_ERRORS, 422), True, {"links": {"VerifyAadhaarOtp": {
                  "operationId": "verifyAadhaarOtp",
                  "requestBody": {"initiation_id": "$response.body#/data/initiation_id"},
                  "description": "Submit the OTP the holder received, for this initiation id (same user).",
              }}}),
        Route("post", "/kyc/aadhaar/otp/verify", "verifyAadhaarOtp", "Submit the Aadhaar OTP", "Aadhaar",
              "AadhaarOtpVerifyRequest", (*KYC_ERRORS, 404, 422), True),
        Route("post", "/upi/vpa", "validateVpa", "Check that a UPI id (VPA) exists, and whose it is", "Payments",
              "VpaRequest", KYC_ERRORS, True),
    ]
    if options.payments_enabled:
        routes += [
            Route("post", "/payments", "createPayment", "Open a UPI payment (collect request or link)", "Payments",
                  "PaymentRequest", (400, 401, 413, 422, 429, *UPSTREAM), True, {
                      "parameters": [{
                          "name": "Idempotency-Key", "in": "header", "required": False,
                          "description": "Per user: a repeat with the same body answers the first payment "
                                         "(`data.idempotent_replay: true`) without a new call; another body "
                                         "is 409, a key past DECENTRO_IDEMPOTENCY_WINDOW 422.",
                          "schema": {"type": "string", "pattern": _ecma(IDEMPOTENCY_KEY_RE.pattern)},
                      }],
                      "links": {
                          "GetPaymentStatus": {
                              "operationId": "getPaymentStatus",
                              "parameters": {"reference_id": "$response.body#/data/reference_id"},
                              "description": "The payment's status, by the reference id this answer gives.",
                          },
                          "SettleByCallback": {
                              "operationId": "receiveDecentroCallback",
                              "requestBody": {"referenceId": "$response.body#/data/reference_id",
                                              "transactionStatus": "SUCCESS"},
                              "description": "Decentro's callback for this payment (signed by Decentro).",
                          },
                      },
                  }),
            Route("get", "/payments/{reference_id}", "getPaymentStatus", "A payment's status by its reference id",
                  "Payments", None, (401, 404, 429, *UPSTREAM), True, {
                      "parameters": [{"name": "reference_id", "in": "path", "required": True,
                                      "description": "`data.reference_id` of POST /payments.",
                                      "schema": {"type": "string"}}],
                  }),
        ]
    return routes


def _callback_path(settings: Settings) -> dict[str, Any]:
    headers = [{
        "name": settings.webhook_signature_header, "in": "header", "required": settings.webhook_require_signature,
        "description": "HMAC-SHA256 of the raw body under DECENTRO_WEBHOOK_SECRET, lowercase hex "
                       "(`sha256=` prefix and upper case accepted). Sign the exact bytes sent.",
        "schema": {"type": "string"},
    }]
    if settings.webhook_credential:
        headers.append({"name": settings.webhook_credential_header, "in": "header", "required": True,
                        "description": "The shared credential Decentro sends.", "schema": {"type": "string"}})
    ack = {"content": {JSON: {"schema": {"$ref": "#/components/schemas/Ack"}}}}
    return {"post": {
        "operationId": "receiveDecentroCallback", "tags": ["Callbacks"],
        "summary": "Decentro's callback: authenticated, stored, then applied once",
        "description": "The raw body is checked (size, signature, credential, source address), stored, "
                       "then applied to its operation; a duplicate is acknowledged and ignored. Not rate "
                       "limited: Decentro's retries must get through.",
        "parameters": headers,
        "requestBody": {"required": True, "content": {JSON: {"schema": {"$ref": "#/components/schemas/Callback"},
                                                             "example": EXAMPLES["Callback"]}}},
        "responses": {
            "200": {"description": "Stored (and applied, or kept to replay): `CB_S00000`.", **ack},
            "400": {"description": "Not JSON, a key named twice, or no known status or reference: "
                             "`CB_E00009`; nothing is stored or applied.", **ack},
            "401": {"description": "Signature, credential or source address refused: `CB_E00013`.", **ack},
            "413": {"description": "Over DECENTRO_WEBHOOK_MAX_BYTES: `CB_E00009`.", **ack},
            "503": {"description": "Could not be stored: `CB_E00000`; Decentro retries.", **ack},
        },
    }}


CALLBACK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Decentro's callback (camelCase or snake_case); fields not listed are kept, unread.",
    "properties": {
        "transactionStatus": {"type": "string", "enum": ["SUCCESS", "SUCCESSFUL", "FAILURE", "FAILED", "PENDING",
                                                          "EXPIRED"],
                              "description": "The payment's new status (any case)."},
        "referenceId": {"type": "string", "maxLength": 128, "description": "`data.reference_id` of the payment."},
        "decentroTxnId": {"type": "string", "maxLength": 128},
        "callbackTxnId": {"type": "string", "maxLength": 128, "description": "Deduplicates deliveries."},
        "originalCallbackTxnId": {"type": ["string", "null"], "maxLength": 128,
                                  "description": "Set on a retry: the first delivery's callbackTxnId."},
    },
    "required": ["transactionStatus"],
    "anyOf": [{"required": ["referenceId"]}, {"required": ["decentroTxnId"]}],
}

# One valid body per route, with Decentro's sandbox values and synthetic people: the docs page
# shows them, and schemathesis sends them first.
CONSENT_EXAMPLE = {"given": True, "text": "I agree that my documents are verified through Decentro.",
                   "purpose": "Customer onboarding identity verification (KYC)"}
EXAMPLES: dict[str, dict[str, Any]] = {
    "PanRequest": {"pan": "ABCDE1234F", "name": "Testa Synthetica", "consent": CONSENT_EXAMPLE},
    "BankRequest": {"account_number": "123456789011", "ifsc": "SBIN0001077", "consent": CONSENT_EXAMPLE},
    "CkycRequest": {"pan": "ABCDE1234F", "consent": CONSENT_EXAMPLE},
    "AadhaarXmlRequest": {"xml_base64": "PE9mZmxpbmVQYXBlcmxlc3NLeWMvPg==", "share_code": "1234",
                          "consent": CONSENT_EXAMPLE},
    "AadhaarOtpStartRequest": {"aadhaar_number": "234567890124", "consent": CONSENT_EXAMPLE},
    "AadhaarOtpVerifyRequest": {"initiation_id": "<data.initiation_id of the OTP start>", "otp": "123456",
                                "consent": CONSENT_EXAMPLE},
    "VpaRequest": {"upi_id": "charles.babbage@okhdfc", "consent": CONSENT_EXAMPLE},
    "PaymentRequest": {"amount": 30, "purpose": "Order 42", "customer_details": {
        "name": "Testa Synthetica", "email": "testa@example.com", "phone": "9876500011"}},
    "Callback": {"callbackTxnId": "CB-example-1", "transactionStatus": "SUCCESS",
                 "referenceId": "<data.reference_id of POST /payments>"},
}

REQUEST_SCHEMAS: dict[str, type[Schema]] = {
    "PanRequest": PanBody, "BankRequest": BankBody, "CkycRequest": CkycBody,
    "AadhaarOtpStartRequest": AadhaarOtpStartBody, "AadhaarOtpVerifyRequest": AadhaarOtpVerifyBody,
    "VpaRequest": VpaBody, "PaymentRequest": PaymentBody,
}


# -- marshmallow to JSON Schema, where the plugin needs help ---------------------------------

def _ecma(pattern: str) -> str:
    r"""A Python pattern as JSON Schema (ECMA-262) reads it: ``\Z`` (end of text) is ``$`` there."""
    return re.sub(r"\\Z$", "$", pattern).replace("\\\"", "\"")


def _custom_fields(_converter: Any, field: fields.Field[Any], **_: Any) -> dict[str, Any]:
    """The core's own field types, which the plugin cannot know."""
    if isinstance(field, RupeeAmount):
        return {"anyOf": [
            {"type": "integer", "minimum": 1, "maximum": 500000},
            {"type": "number", "minimum": 0.01, "maximum": 500000, "multipleOf": 0.01},
            {"type": "string", "pattern": _ecma(RupeeAmount.PATTERN.pattern.join("^$"))},
        ], "description": "Rupees, at most two decimals: a JSON number or a string of ASCII digits."}
    if isinstance(field, MobileField):
        return {"pattern": _ecma(MOBILE_RE.pattern),
                "description": "An Indian mobile number (+91 or 0 optional; spaces and hyphens are ignored)."}
    return {}


def _json_ready(value: Any) -> Any:
    """Decimals from validators as JSON numbers, patterns as ECMA-262, vendor min/max dropped
    where the anyOf above says it."""
    if isinstance(value, Mapping):
        out = {str(k): _json_ready(v) for k, v in value.items()}
        if "pattern" in out and isinstance(out["pattern"], str):
            out["pattern"] = _ecma(out["pattern"])
        if "anyOf" in out:
            out.pop("x-minimum", None), out.pop("x-maximum", None)
        return out
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# -- the document ---------------------------------------------------------------------------

def build_spec(settings: Settings, options: FlaskOptions) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the blueprint as ``settings`` and ``options`` mount it."""
    plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Flask-Decentro", version=_package_version(), openapi_version=OPENAPI_VERSION, plugins=[plugin],
        info={"description": _DESCRIPTION, "license": {"name": "MIT", "identifier": "MIT"}},
    )
    plugin.converter.add_attribute_function(_custom_fields)  # type: ignore[union-attr]
    for name, schema in REQUEST_SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    spec.components.schema("AadhaarXmlRequest", schema=AadhaarXmlBody(exclude=("file",)))
    spec.components.schema("Envelope", schema=EnvelopeSchema)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.schema("Ack", schema=AckSchema)
    spec.components.schema("Callback", CALLBACK_SCHEMA)
    for status, (name, description) in ERRORS.items():
        response: dict[str, Any] = {"description": description,
                                    "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
        if status == 429:
            response["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
        spec.components.response(name, response)

    prefix = (options.url_prefix or "").rstrip("/")
    for route in _routes(settings, options):
        spec.path(path=prefix + route.path, operations={route.method: _operation(route, settings)})
    spec.path(path=prefix + "/webhooks/decentro", operations=_callback_path(settings))
    if options.openapi_enabled:
        spec.path(path=prefix + "/openapi.json", operations={"get": {
            "operationId": "getOpenApi", "tags": ["Documentation"], "summary": "This document",
            "responses": {"200": {"description": "The OpenAPI document.",
                                  "content": {JSON: {"schema": {"type": "object"}}}}}}})
        if options.docs_enabled:
            spec.path(path=prefix + "/docs", operations={"get": {
                "operationId": "getDocs", "tags": ["Documentation"], "summary": "Swagger UI over this document",
                "responses": {
                    "200": {"description": "The page.", "content": {"text/html": {"schema": {"type": "string"}}}},
                    "404": {"description": "`DOCS_NOT_INSTALLED`: install the `docs` extra.",
                            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}},
                }}})
            spec.path(path=prefix + "/docs/{asset}", operations={"get": {
                "operationId": "getDocsAsset", "tags": ["Documentation"], "summary": "A file of the docs page",
                "parameters": [{"name": "asset", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": sorted(DOCS_ASSETS)}}],
                "responses": {
                    "200": {"description": "The file, from the installed package.",
                            "content": {"text/css": {}, "text/javascript": {}, "image/png": {}}},
                    "404": {"description": "No such file, or the `docs` extra is not installed.",
                            "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}},
                }}})
    document: dict[str, Any] = _json_ready(spec.to_dict())
    _one_document_of(document["components"]["schemas"]["AadhaarXmlRequest"])
    first = ("openapi", "info", "paths", "components")  # the usual reading order
    return {**{key: document[key] for key in first if key in document}, **document}


def _operation(route: Route, settings: Settings) -> dict[str, Any]:
    envelope = {"content": {JSON: {"schema": {"$ref": "#/components/schemas/Envelope"}}}}
    ok: dict[str, Any] = {"description": "The call completed: `status` says how (a PAN Decentro calls "
                                         "invalid is a 200 with `status: FAILURE`).", **envelope}
    if route.limited:
        ok["headers"] = {name: {"description": text, "schema": {"type": "integer"}}
                         for name, text in RATE_HEADERS.items()}
    if "links" in route.extra:
        ok["links"] = route.extra["links"]
    operation: dict[str, Any] = {
        "operationId": route.operation_id, "summary": route.summary, "tags": [route.tag],
        "responses": {"200": ok, **{str(status): {"$ref": f"#/components/responses/{ERRORS[status][0]}"}
                                     for status in sorted(route.errors)}},
    }
    if "parameters" in route.extra:
        operation["parameters"] = route.extra["parameters"]
    if route.body is not None:
        content: dict[str, Any] = {JSON: {"schema": {"$ref": f"#/components/schemas/{route.body}"},
                                          "example": EXAMPLES[route.body]}}
        if route.body == "AadhaarXmlRequest":
            content["multipart/form-data"] = {"schema": _multipart_schema(settings)}
        operation["requestBody"] = {"required": True, "content": content}
    return operation


def _multipart_schema(settings: Settings) -> dict[str, Any]:
    return {
        "type": "object", "required": ["file", "share_code", "consent"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": f"The XML or ZIP, at most {settings.aadhaar_max_bytes} bytes."},
            "share_code": {"type": "string"}, "mobile": {"type": "string"}, "email": {"type": "string"},
            "user_id": {"type": "string"},
            "consent": {"type": "string", "contentMediaType": JSON,
                        "description": "The consent object, as a JSON string."},
        },
    }


def _one_document_of(schema: dict[str, Any]) -> None:
    """The Aadhaar body carries exactly one of its three JSON document fields."""
    schema["oneOf"] = [{"required": [name]} for name in ("xml", "xml_base64", "zip_base64")]


def spec_json(document: Mapping[str, Any]) -> str:
    """The document as the command writes and the route serves it: stable, indented, one newline."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


_DESCRIPTION = """\
KYC, UPI payments and Decentro's callbacks, behind consent, rate limits and an audit log.

A completed call is HTTP 200 with an envelope: `status` is `SUCCESS`, `FAILURE` or `PENDING`;
`data.reference_id` is the unique id this library sent, `data.operation_id` Decentro's
`decentroTxnId`; a `FAILURE` carries `error: {code, message}`. Errors are
`{"status": "FAILURE", "error": {"code", "message", "fields"?}}` with the HTTP status of the
error. Every KYC body carries `consent: {"given": true, "text", "purpose"}`, checked first.
Answers never echo the documents or names sent.
"""


# -- the docs page --------------------------------------------------------------------------

DOCS_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "index.css", "favicon-32x32.png",
                         "favicon-16x16.png"})


def docs_assets_dir() -> Path | None:
    """Swagger UI's files in the installed ``flask-swagger-ui`` package, or ``None``."""
    found = importlib.util.find_spec("flask_swagger_ui")
    if found is None or found.origin is None:
        return None
    dist = Path(found.origin).parent / "dist"
    return dist if (dist / "swagger-ui-bundle.js").is_file() else None


def docs_page(prefix: str) -> str:
    """Swagger UI over ``<prefix>/openapi.json``, every file from this server."""
    return _PAGE.replace("{prefix}", prefix).replace("{init}", _init_script(prefix))


def docs_headers(prefix: str) -> dict[str, str]:
    """The page's own headers: a Content-Security-Policy that lets in this server's files and the
    one inline start-up script (by its SHA-256, CSP Level 2) and nothing else, and no framing
    (``frame-ancestors 'none'``, ``X-Frame-Options: DENY`` for older browsers): "Try it out"
    sends real requests, so another site must not overlay the page (clickjacking)."""
    digest = base64.b64encode(hashlib.sha256(_init_script(prefix).encode()).digest()).decode()
    policy = (f"default-src 'none'; script-src 'self' 'sha256-{digest}'; style-src 'self'; "
              "img-src 'self' data:; connect-src 'self'; font-src 'self'; form-action 'none'; "
              "frame-ancestors 'none'; base-uri 'none'")
    return {"Content-Security-Policy": policy, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}


def _init_script(prefix: str) -> str:
    # json.dumps: the prefix is configuration, still never spliced into script text raw.
    url = json.dumps(prefix + "/openapi.json").replace("<", "\\u003c")
    return ("\n    window.onload = function () {\n"
            f"      window.ui = SwaggerUIBundle({{url: {url}, dom_id: \"#swagger-ui\", deepLinking: true}});\n"
            "    };\n  ")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Flask-Decentro API</title>
  <link rel="stylesheet" href="{prefix}/docs/swagger-ui.css">
  <link rel="stylesheet" href="{prefix}/docs/index.css">
  <link rel="icon" type="image/png" href="{prefix}/docs/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{prefix}/docs/swagger-ui-bundle.js"></script>
  <script>{init}</script>
</body>
</html>
"""
