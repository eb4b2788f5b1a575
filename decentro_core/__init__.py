"""Framework-free core of Flask-Decentro: Decentro's KYC, payments and notifications.

>>> from decentro_core import DecentroService
>>> decentro = DecentroService()           # reads the environment; mock mode by default
>>> # result = await decentro.verify_pan("ABCDE1234F", "Asha Verma")
"""

from __future__ import annotations

from .async_service import DecentroService
from .context import CallContext, Consent
from .errors import (
    AadhaarFileRejected,
    AuthenticationFailed,
    BulkheadFull,
    CacheUnavailable,
    CircuitOpen,
    ConfigurationError,
    ConsentRequired,
    CrossSiteRequest,
    DeadlineExceeded,
    DecentroError,
    DuplicateKey,
    DuplicateReference,
    FailureReplayed,
    GatewayConnectionError,
    GatewayTimeout,
    IdempotencyConflict,
    OtpError,
    PayloadTooLarge,
    RateLimitUnavailable,
    RateLimited,
    StoreError,
    Unauthenticated,
    UnknownReference,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamUnavailable,
    ValidationError,
    VerificationFailed,
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
)
from .ports import Ports
from .service import BlockingDecentroService
from .settings import Settings
from .webhooks import ReplayReport, WebhookAck, WebhookProcessor, sign_body, validate_signature

__all__ = [
    "AadhaarFileRejected",
    "AuthenticationFailed",
    "BlockingDecentroService",
    "BulkheadFull",
    "CacheUnavailable",
    "CallContext",
    "CircuitOpen",
    "ConfigurationError",
    "Consent",
    "ConsentRequired",
    "CrossSiteRequest",
    "DeadlineExceeded",
    "DecentroError",
    "DecentroService",
    "DuplicateKey",
    "DuplicateReference",
    "FailureReplayed",
    "GatewayConnectionError",
    "GatewayTimeout",
    "IdempotencyConflict",
    "OtpError",
    "PayloadTooLarge",
    "Ports",
    "RateLimitUnavailable",
    "RateLimited",
    "ReplayReport",
    "Settings",
    "StoreError",
    "Unauthenticated",
    "UnknownReference",
    "UpstreamError",
    "UpstreamProtocolError",
    "UpstreamUnavailable",
    "ValidationError",
    "VerificationFailed",
    "WebhookAck",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookProcessor",
    "WebhookSignatureError",
    "sign_body",
    "validate_signature",
]
__version__ = "0.1.0"
