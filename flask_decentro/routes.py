"""The blueprint: parse the request, call the service, answer its envelope.

Every answer of a completed call is HTTP 200 with the service's envelope; ``status`` says the
outcome (a PAN Decentro calls invalid is ``FAILURE``, not an HTTP error). Errors are mapped in
:mod:`flask_decentro.errors`. Views log nothing about the people involved.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import MapAdapter
from marshmallow import Schema

from decentro_core.context import CallContext, Consent
from decentro_core.errors import ConsentRequired, CrossSiteRequest, ValidationError
from decentro_core.service import BlockingDecentroService
from decentro_core.validation import load, loads_json

from .errors import OUTAGE_RETRY_AFTER, PayloadTooLarge, Unauthenticated, failure, register_error_handlers
from .limiting import signed_in_user, user_or_ip_key
from .openapi import DOCS_ASSETS, build_spec, docs_assets_dir, docs_headers, docs_page, spec_json
from .schemas import (
    AadhaarOtpStartBody,
    AadhaarOtpVerifyBody,
    AadhaarXmlBody,
    BankBody,
    CkycBody,
    ConsentBody,
    PanBody,
    PaymentBody,
    VpaBody,
)
from .state import DecentroState

__all__ = ["create_blueprint"]


# -- request helpers ------------------------------------------------------------------------


JSON_LIMIT = 16 * 1024  # every JSON route but the Aadhaar file's


def _bounded_body(limit: int) -> bytes:
    """The raw body, refused before it is read past ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge({"_body": [f"Larger than {limit} bytes"]})
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge({"_body": [f"Larger than {limit} bytes"]})
    return raw


def _json_body(limit: int = JSON_LIMIT) -> dict[str, Any]:
    expected = ValidationError({"_body": ["Send a JSON object with Content-Type: application/json"]})
    if not request.is_json:
        raise expected
    raw = _bounded_body(limit)
    try:
        body = loads_json(raw)  # a key given twice, at any depth: 400 DUPLICATE_KEY
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        raise expected from None
    if not isinstance(body, dict):
        raise expected
    return body


def _user_agent() -> str | None:
    return (request.user_agent.string or None) and request.user_agent.string[:512]


CONSENT_MISSING = 'Explicit consent is required: {"given": true, "text": ..., "purpose": ...}'


_CONSENT_BODY = ConsentBody()  # marshmallow schemas are reusable: built once, not per request
_PAYMENT_BODY = PaymentBody()


def _consent(body: dict[str, Any]) -> Consent:
    """Explicit consent or ``ConsentRequired``, checked before anything else happens: the
    core's rules (:class:`~flask_decentro.schemas.ConsentBody`), field names under ``consent.``."""
    raw = body.get("consent")
    if not isinstance(raw, dict):
        raise ConsentRequired({"consent": [CONSENT_MISSING]}, message="Explicit consent is required")
    try:
        given = load(_CONSENT_BODY, raw)
    except ValidationError as exc:
        fields = {f"consent.{name}": msgs for name, msgs in exc.fields.items()}
        raise ConsentRequired(fields, message="Explicit consent is required") from None
    # The client gives what it showed and why; where it asked from is ours to record.
    return Consent.coerce({**given, "client_ip": request.remote_addr, "user_agent": _user_agent()})


def _identity(state: DecentroState) -> str | None:
    """The signed-in user, asked of the host app once per request (the limiter asks too)."""
    return signed_in_user(state.identity)


def _signed_in(state: DecentroState) -> str:
    user_id = _identity(state)
    if not user_id:
        raise Unauthenticated("Sign in to use this endpoint")
    return user_id


def _reader_key(state: DecentroState) -> Callable[[], str]:
    """Status reads are counted per signed-in user (one user, many devices), else per address."""
    return user_or_ip_key(state.identity)


def _caller(state: DecentroState, data: dict[str, Any]) -> tuple[str | None, CallContext]:
    """The user id (from ``identity``, else the body in demo mode) and the call context."""
    body_user = data.pop("user_id", None)
    user_id = _signed_in(state) if state.identity is not None else body_user
    actor = f"user:{user_id}" if user_id else "api"
    return user_id, CallContext(actor=actor, client_ip=request.remote_addr, user_agent=_user_agent())


# -- KYC ------------------------------------------------------------------------------------

KycCall = Callable[[BlockingDecentroService, dict[str, Any], dict[str, Any]], dict[str, Any]]


def _kyc_view(
    state: DecentroState, schema_class: type[Schema], call: KycCall,
    *, body: Callable[[DecentroState], dict[str, Any]] | None = None,
) -> Callable[[], Response]:
    schema = schema_class()  # built once: marshmallow deep-copies every field per instance

    def view() -> Response:
        raw = body(state) if body is not None else _json_body()
        consent = _consent(raw)
        data = load(schema, raw)
        data.pop("consent", None)
        user_id, context = _caller(state, data)
        result = call(state.service, data, {"user_id": user_id, "consent": consent, "context": context})
        return jsonify(result)

    view.__name__ = f"kyc_{schema_class.__name__.removesuffix('Body').lower()}"
    return view


def _pan(svc: BlockingDecentroService, d: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    return svc.verify_pan(d["pan"], d.get("name"), detailed=d.get("detailed", False), **kw)


def _bank(svc: BlockingDecentroService, d: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    extra = {"validation_type": d["validation_type"]} if "validation_type" in d else {}
    return svc.verify_bank(
        d["account_number"], d["ifsc"], d.get("name"), **extra, **kw
    )


def _ckyc(svc: BlockingDecentroService, d: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    return svc.fetch_ckyc(d["pan"], **kw)


def _aadhaar_xml(svc: BlockingDecentroService, d: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    content = _document(d)
    return svc.verify_aadhaar_xml(
        content, d["share_code"], mobile=d.get("mobile"), email=d.get("email"), **kw
    )


def _otp_start(svc: BlockingDecentroService, d: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    return svc.start_aadhaar_otp(d["aadhaar_number"], **kw)


def _vpa(svc: BlockingDecentroService, d: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    return svc.validate_upi_handle(d["upi_id"], **kw)


def _otp_verify(svc: BlockingDecentroService, d: dict[str, Any], kw: dict[str, Any]) -> dict[str, Any]:
    return svc.verify_aadhaar_otp(
        d["initiation_id"], d["otp"], share_code=d.get("share_code"), **kw
    )


def _document(data: dict[str, Any]) -> str | bytes:
    """The offline e-KYC file from ``xml``, ``xml_base64``, ``zip_base64`` or an upload."""
    if "file" in data:
        return data["file"]  # type: ignore[no-any-return]
    if "xml" in data:
        return data["xml"]  # type: ignore[no-any-return]
    name = "xml_base64" if "xml_base64" in data else "zip_base64"
    try:
        return base64.b64decode(data[name], validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError({name: ["Not valid base64"]}) from None


def _refuse_cross_site() -> None:
    """A multipart form is what a browser may post from any site, cookies included, with no
    preflight; the blueprint is exempt from the host's CSRF token check (its JSON routes need a
    Content-Type no cross-site form can send). So a form upload is refused when the browser says
    it came from another site: Fetch Metadata's ``Sec-Fetch-Site``, which current browsers send,
    or else an ``Origin`` naming another host (the scheme is not compared: a proxy terminating
    TLS changes it). Non-browser clients send neither header."""
    site = request.headers.get("Sec-Fetch-Site", "").lower()
    if site:
        if site == "cross-site":
            raise CrossSiteRequest("A form upload from another site is refused")
        return
    origin = request.headers.get("Origin")
    if origin is not None and (origin == "null" or urlsplit(origin).netloc.lower() != request.host.lower()):
        raise CrossSiteRequest("A form upload from another origin is refused")


def _aadhaar_body(state: DecentroState) -> dict[str, Any]:
    """JSON, or multipart with the file in ``file`` and ``consent`` as a JSON string."""
    limit = state.settings.aadhaar_max_bytes
    # base64 grows the file by a third; the rest of the body is small.
    request_limit = limit * 4 // 3 + JSON_LIMIT
    if request.mimetype != "multipart/form-data":
        return _json_body(request_limit)
    _refuse_cross_site()
    if request.content_length is not None and request.content_length > request_limit:
        raise PayloadTooLarge({"_body": [f"Larger than {request_limit} bytes"]})
    request.max_content_length = request_limit  # werkzeug stops reading a longer stream (413)
    uploads = request.files.getlist("file")
    if len(uploads) != 1:
        raise ValidationError({"file": ["Upload exactly one offline e-KYC XML or ZIP as 'file'"]})
    content = uploads[0].stream.read(limit + 1)
    if len(content) > limit:
        raise PayloadTooLarge({"file": [f"Larger than {limit} bytes"]})
    if not content:
        raise ValidationError({"file": ["The uploaded file is empty"]})
    if not all(isinstance(name, str) and name for name in request.form):  # name="" parses as None
        raise ValidationError({"_body": ["Every form field needs a name"]})
    repeated = sorted(k for k in request.form if len(request.form.getlist(k)) > 1)
    if repeated:
        raise ValidationError({k: ["Give this field once"] for k in repeated})
    body: dict[str, Any] = {k: v for k, v in request.form.items() if k != "consent"}
    try:
        body["consent"] = loads_json(request.form.get("consent", "null"))
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        body["consent"] = None
    body["file"] = content
    return body


# -- payments and callbacks: views over one app's state --------------------------------------


def _payment_views(state: DecentroState) -> tuple[Callable[[], Response], Callable[[str], Response]]:
    def create_payment() -> Response:
        data = load(_PAYMENT_BODY, _json_body())
        user_id, context = _caller(state, data)
        key = request.headers.get("Idempotency-Key")  # per user; a repeat answers the first payment
        return jsonify(state.service.initiate_payment(data, user_id=user_id, context=context, idempotency_key=key))

    def payment_status(reference_id: str) -> Response:
        # Signed in: a payment is visible to the user who opened it only (the core checks).
        user_id = _signed_in(state) if state.identity is not None else None
        context = CallContext(actor=f"user:{user_id}" if user_id else "api", client_ip=request.remote_addr,
                              user_agent=_user_agent())
        return jsonify(state.service.get_payment_status(reference_id, user_id=user_id, context=context))

    return create_payment, payment_status


def _callback_view(state: DecentroState) -> Callable[[], Response]:
    def receive_callback() -> Response:
        """Decentro's callback: raw body first (the signature covers its exact bytes)."""
        raw = request.stream.read(state.webhooks.max_bytes + 1)
        ack = state.webhooks.receive_request(raw, request.headers, remote_addr=request.remote_addr)
        answer = Response(json.dumps(dict(ack.body)), status=ack.http_status, mimetype="application/json")
        if ack.http_status == 503:  # not stored: Decentro's next delivery is welcome once the store is back
            answer.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER)
        return answer

    return receive_callback


def _documentation_views(state: DecentroState) -> tuple[Callable[[], Response], Callable[..., Any]]:
    """``/openapi.json`` (built once, on first use) and the Swagger UI page with its files."""
    built: list[str] = []

    def openapi_json() -> Response:
        if not built:
            built.append(spec_json(build_spec(state.settings, state.options)))
        return Response(built[0], mimetype="application/json")

    def docs(asset: str | None = None) -> Any:
        assets = docs_assets_dir()
        if assets is None:
            return failure(404, {"code": "DOCS_NOT_INSTALLED",
                                 "message": "The docs page needs the docs extra: pip install 'flask-decentro[docs]'"})
        if asset is None:
            prefix = request.script_root + (state.options.url_prefix or "").rstrip("/")
            return Response(docs_page(prefix), mimetype="text/html", headers=docs_headers(prefix))
        if asset not in DOCS_ASSETS:
            raise NotFound()
        return send_from_directory(assets, asset, max_age=86400)

    return openapi_json, docs


# -- the blueprint --------------------------------------------------------------------------


def create_blueprint(state: DecentroState) -> Blueprint:
    """A fresh blueprint for one app, its KYC routes sharing one rate-limit count per IP."""
    bp = Blueprint("decentro", __name__)
    kyc_limit = state.limiter.shared_limit(state.options.ratelimit, scope="decentro-kyc")
    payment_limit = state.limiter.shared_limit(state.options.ratelimit, scope="decentro-payments")
    kyc_routes = {
        "/kyc/pan": _kyc_view(state, PanBody, _pan),
        "/kyc/bank": _kyc_view(state, BankBody, _bank),
        "/kyc/ckyc": _kyc_view(state, CkycBody, _ckyc),
        "/kyc/aadhaar-xml": _kyc_view(state, AadhaarXmlBody, _aadhaar_xml, body=_aadhaar_body),
        "/kyc/aadhaar/otp": _kyc_view(state, AadhaarOtpStartBody, _otp_start),
        "/kyc/aadhaar/otp/verify": _kyc_view(state, AadhaarOtpVerifyBody, _otp_verify),
        "/upi/vpa": _kyc_view(state, VpaBody, _vpa),
    }
    for rule, view in kyc_routes.items():
        bp.add_url_rule(rule, view_func=kyc_limit(view), methods=["POST"], provide_automatic_options=False)
    if state.options.payments_enabled:  # off: /payments is an unknown path (JSON 404)
        create_payment, payment_status = _payment_views(state)
        bp.add_url_rule("/payments", view_func=payment_limit(create_payment), methods=["POST"],
                       provide_automatic_options=False)
        status_limit = state.limiter.limit(state.options.status_ratelimit, key_func=_reader_key(state),
                                           scope="decentro-payment-status")
        bp.add_url_rule("/payments/<reference_id>", view_func=status_limit(payment_status), methods=["GET"],
                       provide_automatic_options=False)
    # Not rate limited by IP: Decentro's retries come from few addresses and must get through.
    bp.add_url_rule("/webhooks/decentro", view_func=_callback_view(state), methods=["POST"],
                   provide_automatic_options=False)
    if state.options.openapi_enabled:
        openapi_json, docs = _documentation_views(state)
        bp.add_url_rule("/openapi.json", view_func=openapi_json, methods=["GET"], provide_automatic_options=False)
        if state.options.docs_enabled:
            bp.add_url_rule("/docs", view_func=docs, methods=["GET"], provide_automatic_options=False)
            bp.add_url_rule("/docs/<asset>", view_func=docs, methods=["GET"], provide_automatic_options=False)
    # Anything else under the prefix is answered here, so its 404 or 405 is our JSON too
    # (Flask routes unknown paths before any blueprint is chosen; OPTIONS included, since the
    # routes above do not take Flask's automatic, empty OPTIONS answer).
    bp.add_url_rule("/", "unrouted_root", _unrouted, methods=ANY_METHOD, defaults={"path": ""}, strict_slashes=False)
    bp.add_url_rule("/<path:path>", "unrouted", _unrouted, methods=ANY_METHOD)
    register_error_handlers(bp)
    return bp


ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def _unrouted(path: str) -> Response:
    """No route of ours has this path (404), or not with this method (405)."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = sorted(method for method in ANY_METHOD if _routed(adapter, method))
    if allowed:
        raise MethodNotAllowed(valid_methods=allowed)
    raise NotFound()


def _routed(adapter: MapAdapter, method: str) -> bool:
    """Whether a real route (not the catch-all) takes this request's path with ``method``."""
    try:
        endpoint, _ = adapter.match(request.path, method=method)
    except HTTPException:
        return False
    return not str(endpoint).endswith((".unrouted", ".unrouted_root"))
