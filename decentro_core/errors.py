"""The one exception hierarchy of the library.

::

    DecentroError
    ├── ConfigurationError          settings missing or inconsistent at start-up
    ├── ValidationError             bad input, refused before anything leaves the process
    │   ├── ConsentRequired         a KYC call without explicit, recorded consent
    │   ├── DuplicateKey            a JSON object naming one key twice
    │   └── PayloadTooLarge         a request body larger than the route accepts
    ├── Unauthenticated             the host's identity check found no signed-in user
    ├── CrossSiteRequest            a browser form posted from another site (no CSRF token to check)
    ├── UnknownReference            no operation with this reference id
    ├── IdempotencyConflict         an idempotency key reused with another body, or after its window
    ├── FailureReplayed             a repeat of a key whose first call failed: that failure again
    ├── VerificationFailed          the document was checked and is not acceptable
    │   └── AadhaarFileRejected     an offline e-KYC file failed a local check
    ├── UpstreamError               Decentro (or the path to it) failed
    │   ├── GatewayConnectionError  nothing reached Decentro; safe to retry
    │   ├── GatewayTimeout          sent, no answer in time; the outcome is unknown
    │   ├── DeadlineExceeded        the call's time budget ran out before a request could be sent
    │   ├── CircuitOpen             Decentro stopped answering: calls paused briefly, nothing sent
    │   ├── BulkheadFull            too many calls already wait on Decentro in this process: nothing sent
    │   ├── RateLimited             Decentro answered 429
    │   ├── UpstreamUnavailable     Decentro answered 5xx
    │   ├── UpstreamProtocolError   an answer that is not Decentro's JSON
    │   ├── AuthenticationFailed    credentials refused (401/403, error_unauthorized_module, ...)
    │   ├── DuplicateReference      a reference_id Decentro has already seen
    │   └── OtpError                an Aadhaar OTP step refused (invalid OTP, limit, session)
    ├── WebhookError                a callback that must not be processed
    │   ├── WebhookSignatureError   bad or missing signature, credential or source IP
    │   └── WebhookPayloadError     not JSON, too large, or missing fields
    └── StoreError                  an adapter behind a port failed (database, cache, vault)
        ├── CacheUnavailable        the cache failed (bypassed unless DECENTRO_CACHE_FAIL_OPEN=false)
        └── RateLimitUnavailable    the rate-limit storage is down and limits refuse (not fail open)

Every error carries ``http_status`` (what an HTTP front end should answer), ``code`` (a
stable machine-readable string), ``provider_code`` (Decentro's ``responseCode`` or
``responseKey``, if any), ``request_id`` (Decentro's ``decentroTxnId`` or our reference id) and
``retryable``. Messages are written by this library, never copied from a response body, so
they cannot carry personal data.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any

__all__ = [
    "AadhaarFileRejected",
    "AuthenticationFailed",
    "BulkheadFull",
    "CacheUnavailable",
    "CircuitOpen",
    "ConfigurationError",
    "ConsentRequired",
    "CrossSiteRequest",
    "DeadlineExceeded",
    "DecentroError",
    "DuplicateKey",
    "DuplicateReference",
    "FailureReplayed",
    "GatewayConnectionError",
    "GatewayTimeout",
    "IdempotencyConflict",
    "OtpError",
    "PayloadTooLarge",
    "RateLimitUnavailable",
    "RateLimited",
    "StoreError",
    "Unauthenticated",
    "UnknownReference",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamUnavailable",
    "ValidationError",
    "VerificationFailed",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookSignatureError",
    "safe_reason",
    "safe_traceback",
]


class DecentroError(Exception):
    """Base class of every error this library raises."""

    http_status: int = 500
    code: str = "DECENTRO_ERROR"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        provider_code: str | None = None,
        request_id: str | None = None,
        http_status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status
        if retryable is not None:
            self.retryable = retryable
        self.provider_code = provider_code
        self.request_id = request_id

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, provider_code={self.provider_code!r}, "
            f"request_id={self.request_id!r})"
        )

    def to_dict(self) -> dict[str, str]:
        """The ``error`` member of an envelope."""
        return {"code": self.code, "message": self.message}


class ConfigurationError(DecentroError):
    """Settings are missing or inconsistent; raised at start-up, never on first use."""

    code = "CONFIGURATION_ERROR"


class ValidationError(DecentroError):
    """Input was refused before anything left the process; ``fields`` names what is wrong."""

    http_status = 400
    code = "VALIDATION_ERROR"

    def __init__(self, fields: Mapping[str, list[str]], *, message: str | None = None) -> None:
        self.fields = {name: list(msgs) for name, msgs in fields.items()}
        names = ", ".join(sorted(self.fields)) or "input"
        super().__init__(message or f"Invalid input: {names}")

    def to_dict(self) -> dict[str, object]:  # type: ignore[override]
        return {"code": self.code, "message": self.message, "fields": self.fields}


class ConsentRequired(ValidationError):
    """A KYC call without explicit consent (given, text and purpose)."""

    code = "CONSENT_REQUIRED"


class PayloadTooLarge(ValidationError):
    """The request body is larger than this route accepts."""

    http_status = 413
    code = "PAYLOAD_TOO_LARGE"


class Unauthenticated(DecentroError):
    """The host's ``identity`` callable found no signed-in user for this request."""

    http_status = 401
    code = "UNAUTHENTICATED"


class CrossSiteRequest(DecentroError):
    """A form upload a browser sent from another site: refused, as a CSRF token check would."""

    http_status = 403
    code = "CROSS_SITE_REQUEST"


class DuplicateKey(ValidationError):
    """A JSON object names one key twice: Python keeps the last, a proxy or log reader in front
    may keep the first, so the one request would mean two things. Refused, never resolved."""

    code = "DUPLICATE_KEY"


class UnknownReference(DecentroError):
    """No operation with this reference id is known to this library."""

    http_status = 404
    code = "UNKNOWN_REFERENCE"


class IdempotencyConflict(DecentroError):
    """An idempotency key was reused with a different request, or after its window ran out."""

    http_status = 409
    code = "IDEMPOTENCY_KEY_REUSED"


class FailureReplayed(DecentroError):
    """A repeat of a key whose first call failed: the first call's error, replayed (its
    ``code`` and ``http_status``), so a repeat never makes a second call. Retry with a new key."""

    code = "FAILURE_REPLAYED"


class VerificationFailed(DecentroError):
    """The document was checked and is not acceptable (not an outage)."""

    http_status = 422
    code = "VERIFICATION_FAILED"


class AadhaarFileRejected(VerificationFailed):
    """An offline e-KYC file failed a local check (signature, age, share code, format)."""

    code = "AADHAAR_FILE_REJECTED"


class UpstreamError(DecentroError):
    """Decentro, or the path to it, failed.

    ``upstream_status`` is the HTTP status Decentro answered (if any); ``retry_after`` the
    seconds it asked us to wait (429).
    """

    http_status = 502
    code = "UPSTREAM_ERROR"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.upstream_status = upstream_status
        self.retry_after = retry_after


class GatewayConnectionError(UpstreamError):
    """No request reached Decentro (DNS, refused, reset before sending); safe to retry."""

    http_status = 503
    code = "UPSTREAM_UNREACHABLE"
    retryable = True


class GatewayTimeout(UpstreamError):
    """The request was sent but no answer came in time: Decentro may have acted on it."""

    http_status = 504
    code = "UPSTREAM_TIMEOUT"
    retryable = True


class DeadlineExceeded(UpstreamError):
    """The call's deadline (``DECENTRO_DEADLINE``) ran out before another request could be sent."""

    http_status = 504
    code = "DEADLINE_EXCEEDED"
    retryable = True


class CircuitOpen(UpstreamError):
    """Decentro stopped answering; calls to it are paused for ``DECENTRO_BREAKER_COOLDOWN`` seconds.
    Nothing was sent, so a payment refused this way was not made."""

    http_status = 503
    code = "UPSTREAM_CIRCUIT_OPEN"
    retryable = True


class BulkheadFull(UpstreamError):
    """Too many calls already wait on Decentro (or on this module) in this process; nothing was sent."""

    http_status = 503
    code = "UPSTREAM_BULKHEAD_FULL"
    retryable = True


class RateLimited(UpstreamError):
    """Decentro answered 429."""

    http_status = 503
    code = "UPSTREAM_RATE_LIMITED"
    retryable = True


class UpstreamUnavailable(UpstreamError):
    """Decentro answered with a 5xx status."""

    http_status = 503
    code = "UPSTREAM_UNAVAILABLE"
    retryable = True


class UpstreamProtocolError(UpstreamError):
    """Decentro's answer was not the JSON it documents."""

    code = "UPSTREAM_PROTOCOL_ERROR"


class AuthenticationFailed(UpstreamError):
    """Decentro refused our credentials or the module is not subscribed."""

    code = "UPSTREAM_AUTHENTICATION_FAILED"


class DuplicateReference(UpstreamError):
    """Decentro has already seen this reference_id."""

    http_status = 409
    code = "DUPLICATE_REFERENCE"


class OtpError(UpstreamError):
    """An Aadhaar OTP step was refused; ``code`` says why (invalid OTP, limit, session...)."""

    http_status = 422
    code = "AADHAAR_OTP_ERROR"


class WebhookError(DecentroError):
    """A callback that must not be processed."""

    http_status = 400
    code = "WEBHOOK_ERROR"


class WebhookSignatureError(WebhookError):
    """Bad or missing signature, shared credential or source IP."""

    http_status = 401
    code = "WEBHOOK_SIGNATURE_INVALID"


class WebhookPayloadError(WebhookError):
    """The callback body is not JSON, too large, or lacks required fields."""

    http_status = 400
    code = "WEBHOOK_PAYLOAD_INVALID"


class StoreError(DecentroError):
    """An adapter behind a port (database, cache, vault) failed."""

    http_status = 503
    code = "STORE_ERROR"


class CacheUnavailable(StoreError):
    """The cache (Redis, a flask-caching backend) failed; KYC calls go ahead without it by default."""

    code = "CACHE_UNAVAILABLE"


class RateLimitUnavailable(StoreError):
    """The rate-limit storage is down and ``DECENTRO_RATELIMIT_ON_STORAGE_ERROR=refuse``."""

    code = "RATE_LIMIT_UNAVAILABLE"
    retryable = True


def safe_reason(exc: BaseException, *ours: type[BaseException]) -> str:
    """An error as text without personal data: our own exceptions (and ``ours``) with their
    messages, which never hold any; any other by its type's name only."""
    if isinstance(exc, (DecentroError, *ours)):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__


def safe_traceback(exc: BaseException) -> str:
    """A traceback without personal data: every frame (file, line, function, source line: code,
    never values), and each exception of the chain as :func:`safe_reason` writes it."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    chain: list[BaseException] = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    for position, error in enumerate(reversed(chain)):
        if position:
            lines.append("\nDuring or because of the error above, another occurred:\n")
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_tb(error.__traceback__))
        lines.append(safe_reason(error) + "\n")
    return "".join(lines)
