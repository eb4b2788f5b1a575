"""Every error the blueprint can meet, mapped to a JSON answer in this one place.

Bodies are ``{"status": "FAILURE", "error": {"code", "message"[, "fields"]}}``. Messages come
from the library's own error classes (which never carry personal data) or are fixed strings
here; request bodies are never echoed and unexpected exceptions are logged by type only.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Blueprint, Flask, Response, current_app, got_request_exception, jsonify
from flask_limiter import RateLimitExceeded
from limits.errors import StorageError as LimitsStorageError
from marshmallow import ValidationError as SchemaError
from werkzeug.exceptions import HTTPException

from decentro_core.errors import (
    BulkheadFull,
    CircuitOpen,
    ConfigurationError,
    DecentroError,
    FailureReplayed,
    PayloadTooLarge,
    Unauthenticated,
    UpstreamError,
    ValidationError,
    safe_traceback,
)

from .limiting import RateLimitUnavailable, rate_limit_unavailable

__all__ = ["OUTAGE_RETRY_AFTER", "PayloadTooLarge", "Unauthenticated", "failure", "register_error_handlers", "schema_fields"]

log = logging.getLogger("flask_decentro")
OUTAGE_RETRY_AFTER = 5
"""Seconds a 503 for our own outage (a store down, a callback not stored) asks a client to wait:
RFC 9110 section 10.2.3 lets a 503 say when to come back, and a client told nothing retries at once."""


def failure(status: int, error: dict[str, Any]) -> tuple[Response, int]:
    return jsonify({"status": "FAILURE", "error": error}), status


def schema_fields(messages: Any) -> dict[str, list[str]]:
    """marshmallow's nested messages flattened to ``name -> [messages]`` (dotted names)."""
    if not isinstance(messages, dict):
        return {"_schema": [str(m) for m in (messages if isinstance(messages, list) else [messages])]}
    flat: dict[str, list[str]] = {}
    for name, value in messages.items():
        if isinstance(value, dict):
            for sub, msgs in schema_fields(value).items():
                flat[f"{name}.{sub}"] = msgs
        else:
            flat[str(name)] = [str(m) for m in (value if isinstance(value, list) else [value])]
    return flat


def _decentro_error(exc: DecentroError) -> tuple[Response, int]:
    if isinstance(exc, ConfigurationError):
        # A hand-built service missing a setting (the extension checks its own at init_app):
        # the server's fault and fixable, so 503; the variable is named in the log, not to the client.
        log.error("Decentro is not configured for this call: %s", exc)
        return failure(503, {"code": exc.code, "message": "This operation is not configured on this server"})
    if not isinstance(exc, UpstreamError):
        response, status = failure(exc.http_status, exc.to_dict())
        if status == 503 and not isinstance(exc, FailureReplayed):  # a replay never succeeds: no invitation
            response.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER)
        return response, status
    log.warning("Decentro call failed: %s (request %s)", exc.code, exc.request_id)
    response, status = failure(exc.http_status, exc.to_dict())
    if isinstance(exc, (BulkheadFull, CircuitOpen)) and exc.retry_after is not None:
        # Nothing was sent: the client may repeat the call once a slot frees or the circuit tries again.
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response, status


def _schema_error(exc: SchemaError) -> tuple[Response, int]:
    error = ValidationError(schema_fields(exc.messages))
    return failure(400, error.to_dict())


def _rate_limited(exc: RateLimitExceeded) -> tuple[Response, int]:
    message = f"Too many requests: at most {exc.description}. Retry later."
    response, status = failure(429, {"code": "RATE_LIMITED", "message": message})
    if "Retry-After" not in response.headers:  # X-RateLimit headers off: the window's length, at most
        response.headers["Retry-After"] = str(int(exc.limit.limit.get_expiry()))
    return response, status


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    code = (exc.name or "HTTP error").upper().replace(" ", "_")
    response, status = failure(exc.code or 500, {"code": code, "message": exc.name or "HTTP error"})
    allow = getattr(exc, "valid_methods", None)
    if allow:
        response.headers["Allow"] = ", ".join(allow)
    return response, status


def _unexpected(exc: Exception) -> tuple[Response, int]:
    """An error nothing here expected (a bug, or the host's ``identity`` callable failing): the
    host app sees it as it sees its own. With ``PROPAGATE_EXCEPTIONS`` (or testing/debug, Flask's
    rule) it is re-raised, so Flask's own handling runs (the signal, the debugger, the test
    client); otherwise ``got_request_exception`` fires (Sentry's Flask integration, the host's
    own receivers) and the client gets the JSON 500."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    if _propagates(app):
        raise exc
    got_request_exception.send(app, _async_wrapper=app.ensure_sync, exception=exc)
    # Frames and exception types, no messages: a message could carry the request's personal data.
    log.error("Unexpected %s in a Decentro route\n%s", type(exc).__name__, safe_traceback(exc))
    return failure(500, {"code": "INTERNAL_ERROR", "message": "Internal error"})


def _propagates(app: Flask) -> bool:
    configured = app.config.get("PROPAGATE_EXCEPTIONS")
    return bool(configured) if configured is not None else app.testing or app.debug


def register_error_handlers(blueprint: Blueprint) -> None:
    """Install the handlers on ``blueprint`` only: the host app's other routes keep theirs."""
    blueprint.register_error_handler(DecentroError, _decentro_error)
    blueprint.register_error_handler(SchemaError, _schema_error)
    blueprint.register_error_handler(RateLimitExceeded, _rate_limited)
    blueprint.register_error_handler(RateLimitUnavailable, rate_limit_unavailable)
    blueprint.register_error_handler(LimitsStorageError, rate_limit_unavailable)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(Exception, _unexpected)
