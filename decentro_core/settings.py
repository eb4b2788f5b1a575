"""Settings, read once from the environment (or any mapping) with the guide's names.

Each setting is defined once, in :data:`SETTINGS`, with its variable name, type and default.
:meth:`Settings.from_env` reads ``os.environ``; :meth:`Settings.from_mapping` reads any
mapping, which is how the Flask extension layers constructor arguments over ``app.config``
over the environment. :meth:`Settings.check` refuses a live configuration without
credentials, naming every missing variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .errors import ConfigurationError
from .setting_fields import parse_bool, parse_choice, parse_csv, parse_limits, parse_secrets, read_fields, setting

__all__ = ["SETTINGS", "Settings", "parse_bool", "parse_choice", "parse_csv", "parse_limits", "parse_secrets", "read_fields", "setting"]

STAGING_BASE = "https://in.staging.decentro.tech"
MIN_WEBHOOK_SECRET_LENGTH = 32


ALIASES = {"DECENTRO_USE_MOCKS": "USE_MOCKS", "DATABASE_URL": "DECENTRO_DATABASE_URL"}


@dataclass(frozen=True)
class Settings:
    """Every knob of the library. Secrets never appear in ``repr``."""

    use_mocks: bool = setting("USE_MOCKS", True, parse_bool, "Answer from the in-process mock gateway")
    api_base: str = setting("DECENTRO_API_BASE", STAGING_BASE, str, "Decentro host (staging by default)")
    allow_insecure_api_base: bool = setting(
        "DECENTRO_ALLOW_INSECURE_API_BASE", False, parse_bool,
        "Allow an http:// API base in live mode (a local sandbox only; credentials travel in clear)"
    )
    client_id: str = setting("DECENTRO_CLIENT_ID", "", str, "Decentro client_id header")
    client_secret: str = setting("DECENTRO_CLIENT_SECRET", "", str, "Decentro client_secret header")
    api_key: str = setting("DECENTRO_API_KEY", "", str, "Default module_secret for every module")
    kyc_module_secret: str = setting("DECENTRO_KYC_MODULE_SECRET", "", str, "module_secret for KYC calls")
    banking_module_secret: str = setting(
        "DECENTRO_BANKING_MODULE_SECRET", "", str, "module_secret for bank-account validation"
    )
    payments_module_secret: str = setting(
        "DECENTRO_PAYMENTS_MODULE_SECRET", "", str, "module_secret for UPI payments"
    )
    payments_provider_secret: str = setting(
        "DECENTRO_PAYMENTS_PROVIDER_SECRET", "", str, "provider_secret for UPI payments"
    )
    banking_provider_secret: str = setting(
        "DECENTRO_BANKING_PROVIDER_SECRET", "", str,
        "provider_secret sent to bank-account validation (public integrations send one; unconfirmed by Decentro's docs)"
    )
    kyc_module_secret_optional: bool = setting(
        "DECENTRO_KYC_MODULE_SECRET_OPTIONAL", False, parse_bool,
        "Call KYC with only client_id and client_secret (public integrations do; unconfirmed by Decentro's docs)"
    )
    notifications_module_secret: str = setting(
        "DECENTRO_NOTIFICATIONS_MODULE_SECRET", "", str, "module_secret for SMS and e-mail"
    )
    payee_account: str = setting(
        "DECENTRO_PAYEE_ACCOUNT", "", str, "Your Decentro virtual account that receives UPI payments"
    )
    ckyc_path: str = setting(
        "DECENTRO_CKYC_PATH", "/v2/kyc/ckyc/search", str,
        "CKYC search path (Decentro's staging serves its test PAN at /testbed/v2/kyc/ckyc/search)"
    )
    pan_detailed_document_type: str = setting(
        "DECENTRO_PAN_DETAILED_DOCUMENT_TYPE", "PAN_DETAILED", str,
        "document_type sent for a detailed PAN check (docs.decentro.tech: PAN_DETAILED; Decentro's older Go SDK "
        "spec: PAN-DETAILED)"
    )
    sms_path: str = setting(
        "DECENTRO_SMS_PATH", "/v2/notifications/sms", str, "SMS path (not public: confirm with Decentro)"
    )
    email_path: str = setting(
        "DECENTRO_EMAIL_PATH", "/v2/notifications/email", str, "E-mail path (not public: confirm with Decentro)"
    )
    timeout: float = setting("DECENTRO_TIMEOUT", 10.0, float, "Read timeout per attempt, seconds (cut to the deadline)")
    deadline: float = setting(
        "DECENTRO_DEADLINE", 20.0, float,
        "Longest one call may take (attempts, backoff, single-flight wait); keep it under the worker's timeout"
    )
    connect_timeout: float = setting("DECENTRO_CONNECT_TIMEOUT", 5.0, float, "Connect timeout, seconds")
    aadhaar_otp_timeout: float = setting(
        "DECENTRO_AADHAAR_OTP_TIMEOUT", 60.0, float,
        "Deadline and read timeout of Aadhaar OTP validation only (Decentro was measured at ~45 s); "
        "serve that route with a worker timeout above it"
    )
    breaker_threshold: int = setting(
        "DECENTRO_BREAKER_THRESHOLD", 5, int,
        "Consecutive timeouts/5xx of one module before its calls fail fast (0: never)"
    )
    breaker_cooldown: float = setting(
        "DECENTRO_BREAKER_COOLDOWN", 2.0, float, "Seconds calls fail fast before one trial call is let through"
    )
    breaker_slow_call_seconds: float = setting(
        "DECENTRO_BREAKER_SLOW_CALL_SECONDS", 5.0, float, "An answer this slow or slower is a slow call (0: none is)")
    breaker_slow_call_rate: float = setting(
        "DECENTRO_BREAKER_SLOW_CALL_RATE", 0.5, float, "Share of slow calls among a module's recent ones that opens "
        "its circuit (0: never)")
    breaker_window: int = setting(
        "DECENTRO_BREAKER_WINDOW", 10, int, "How many of a module's most recent calls the slow-call share is taken over")
    breaker_min_calls: int = setting(
        "DECENTRO_BREAKER_MIN_CALLS", 5, int, "Calls a module's window needs before slow calls can open its circuit")
    bulkhead_max: int = setting(
        "DECENTRO_BULKHEAD_MAX", 0, int,
        "Requests of one process that may wait on Decentro at once; more fail fast (503 UPSTREAM_BULKHEAD_FULL, "
        "nothing sent). 0: 6 in the blocking service (under gunicorn's --threads 8: two threads stay free), "
        "DECENTRO_ASYNC_WORKERS in the awaitable one; -1: no bound")
    bulkhead_wait: float = setting(
        "DECENTRO_BULKHEAD_WAIT", 0.25, float, "Longest a request waits for a slot of the bulkhead before it is "
        "refused, seconds (0: at once); never while the module's circuit is open")
    bulkhead_modules: tuple[tuple[str, int], ...] = setting(
        "DECENTRO_BULKHEAD_MODULES", (), parse_limits,
        "Lower bounds for single modules, e.g. kyc=2,payments=2 (a hung KYC leaves slots for payments)")
    async_workers: int = setting(
        "DECENTRO_ASYNC_WORKERS", 32, int, "Threads behind the awaitable DecentroService (calls waiting at once)"
    )
    max_retries: int = setting("DECENTRO_MAX_RETRIES", 3, int, "Retries after the first attempt")
    backoff_base: float = setting("DECENTRO_BACKOFF_BASE", 0.5, float, "First backoff, seconds (doubles)")
    backoff_max: float = setting("DECENTRO_BACKOFF_MAX", 8.0, float, "Longest backoff, seconds")
    background_retries: int = setting(
        "DECENTRO_BACKGROUND_RETRIES", 4, int,
        "Threads sending, off the caller's thread, the retries of collect requests Decentro refused "
        "unprocessed (429, 503, no connection), the caller answered PENDING at once; 0: retry on the caller's thread"
    )
    webhook_secrets: tuple[str, ...] = setting(
        "DECENTRO_WEBHOOK_SECRET", (), parse_secrets,
        "HMAC secret(s) for callbacks, at least 32 characters each in live mode; several (rotation) separated by spaces"
    )
    webhook_signature_header: str = setting(
        "DECENTRO_WEBHOOK_SIGNATURE_HEADER", "X-Decentro-Signature", str,
        "Header with the HMAC-SHA256 hex of the raw body"
    )
    webhook_credential_header: str = setting(
        "DECENTRO_WEBHOOK_CREDENTIAL_HEADER", "X-Decentro-Credential", str, "Header carrying the shared credential"
    )
    webhook_credential: str = setting(
        "DECENTRO_WEBHOOK_CREDENTIAL", "", str, "Shared credential Decentro sends (checked when set)"
    )
    webhook_allowed_ips: tuple[str, ...] = setting(
        "DECENTRO_WEBHOOK_ALLOWED_IPS", (), parse_csv, "Networks allowed to post callbacks, CIDRs, comma-separated"
    )
    webhook_max_bytes: int = setting(
        "DECENTRO_WEBHOOK_MAX_BYTES", 64 * 1024, int, "Largest callback body accepted, bytes"
    )
    webhook_require_signature: bool = setting(
        "DECENTRO_WEBHOOK_REQUIRE_SIGNATURE", True, parse_bool, "Refuse callbacks without a valid signature"
    )
    webhook_stale_after: int = setting(
        "DECENTRO_WEBHOOK_STALE_AFTER", 300, int, "Seconds before an unfinished callback is replayable"
    )
    encryption_keys: tuple[str, ...] = setting(
        "DECENTRO_ENCRYPTION_KEYS", (), parse_csv, "Fernet keys, comma-separated; the first encrypts"
    )
    audit_keys: tuple[str, ...] = setting(
        "DECENTRO_AUDIT_KEYS", (), parse_secrets,
        "Keys (32+ characters each) for the audit chain's HMAC links, separated by spaces; the first signs, "
        "all verify. Required when USE_MOCKS=false"
    )
    audit_anchor_url: str = setting(
        "DECENTRO_AUDIT_ANCHOR_URL", "", str,
        "Where audit anchors are kept, outside the database: a file path (or file://), or an fsspec URL "
        "such as s3://bucket/prefix (the anchors extra); empty: none, and live verify-audit fails"
    )
    audit_anchor_interval: int = setting(
        "DECENTRO_AUDIT_ANCHOR_INTERVAL", 300, int,
        "Seconds between two anchors written by `flask decentro worker` (0: never)"
    )
    database_url: str = setting("DECENTRO_DATABASE_URL", "", str, "sqlite:///... or postgresql://...")
    cache_url: str = setting("DECENTRO_CACHE_URL", "", str, "redis://... (in-memory when empty)")
    cache_ttl: int = setting("DECENTRO_CACHE_TTL", 86400, int, "KYC result cache lifetime, seconds")
    redis_timeout: float = setting(
        "DECENTRO_REDIS_TIMEOUT", 0.25, float,
        "Connect and read timeout of one Redis call (cache and rate-limit storage), seconds; one attempt, no retries"
    )
    redis_cooldown: float = setting(
        "DECENTRO_REDIS_COOLDOWN", 5.0, float,
        "After a failed Redis call, seconds the cache works in this process only before Redis is tried again"
    )
    status_check_interval: int = setting(
        "DECENTRO_STATUS_CHECK_INTERVAL", 15, int,
        "Seconds between two status look-ups of one pending payment at Decentro (0: every read asks)"
    )
    idempotency_window: int = setting(
        "DECENTRO_IDEMPOTENCY_WINDOW", 86400, int,
        "Seconds an Idempotency-Key replays its first payment; reused later it is refused (409)"
    )
    events_dispatch: str = setting(
        "DECENTRO_EVENTS_DISPATCH", "inline", str,
        "inline: deliver outcome events right after the commit in this process; worker: only "
        "`flask decentro worker` delivers them"
    )
    events_max_attempts: int = setting(
        "DECENTRO_EVENTS_MAX_ATTEMPTS", 10, int, "Deliveries of an event to a raising handler before it is dead"
    )
    events_retry_base: float = setting(
        "DECENTRO_EVENTS_RETRY_BASE", 5.0, float, "First wait before an event is retried, seconds (doubles)"
    )
    events_retry_max: float = setting(
        "DECENTRO_EVENTS_RETRY_MAX", 3600.0, float, "Longest wait between two deliveries of an event, seconds"
    )
    events_lease: float = setting(
        "DECENTRO_EVENTS_LEASE", 60.0, float,
        "Seconds a dispatcher holds an event it claimed; handlers must return within it"
    )
    reconcile_grace: int = setting(
        "DECENTRO_RECONCILE_GRACE", 600, int,
        "Seconds after a payment link's expiry before reconciliation settles a payment Decentro cannot"
    )
    cache_fail_open: bool = setting(
        "DECENTRO_CACHE_FAIL_OPEN", True, parse_bool,
        "When the cache fails, call Decentro without it (logged, counted); false: refuse the call (503)"
    )
    uidai_certs: tuple[str, ...] = setting(
        "DECENTRO_UIDAI_CERT", (), parse_csv, "Extra UIDAI certificate/key files (PEM or DER), comma-separated"
    )
    aadhaar_max_age_hours: float = setting(
        "DECENTRO_AADHAAR_MAX_AGE_HOURS", 72.0, float, "Oldest offline e-KYC file accepted, hours"
    )
    aadhaar_max_bytes: int = setting(
        "DECENTRO_AADHAAR_MAX_BYTES", 128 * 1024, int,
        "Largest offline e-KYC XML or ZIP accepted (a genuine one is about 20-40 KB)"
    )
    metrics: str = setting(
        "DECENTRO_METRICS", "", parse_choice("prometheus"),
        "prometheus: count calls, retries, cache, breaker and callbacks with prometheus_client "
        "(the metrics extra); empty: no metrics"
    )
    tracing: str = setting(
        "DECENTRO_TRACING", "", parse_choice("otel"),
        "otel: one OpenTelemetry span per Decentro call, on the global tracer provider (the otel extra); "
        "empty: no spans"
    )

    def __repr__(self) -> str:
        shown = ("use_mocks", "api_base", "timeout", "max_retries", "database_url", "cache_url")
        inner = ", ".join(f"{name}={_redact_url(getattr(self, name))!r}" for name in shown)
        return f"Settings({inner}, ...)"

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], **overrides: Any) -> Settings:
        """Read every setting by its variable name; ``overrides`` are field names."""
        return cls(**{**read_fields(cls, mapping, ALIASES), **overrides})

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        return cls.from_mapping(os.environ, **overrides)

    def module_secret(self, module: str) -> str:
        """The module_secret for ``module``, falling back to ``DECENTRO_API_KEY``."""
        specific = getattr(self, f"{module}_module_secret", "")
        return specific or self.api_key

    def missing_live_settings(self) -> list[str]:
        """Variables a live (``USE_MOCKS=false``) configuration still lacks."""
        missing = [
            env
            for name, env in (("client_id", "DECENTRO_CLIENT_ID"), ("client_secret", "DECENTRO_CLIENT_SECRET"))
            if not getattr(self, name)
        ]
        if not self.api_key and not self.kyc_module_secret and not self.kyc_module_secret_optional:
            missing.append("DECENTRO_API_KEY (or DECENTRO_KYC_MODULE_SECRET)")
        if not self.encryption_keys:
            missing.append("DECENTRO_ENCRYPTION_KEYS")
        if not self.audit_keys:
            missing.append("DECENTRO_AUDIT_KEYS")
        return missing

    def unsafe_live_settings(self) -> list[str]:
        """What a live configuration sets in a way that would put credentials or callbacks at risk."""
        unsafe = []
        if not self.api_base.startswith("https://") and not self.allow_insecure_api_base:
            unsafe.append("DECENTRO_API_BASE must be https:// (set DECENTRO_ALLOW_INSECURE_API_BASE=true "
                          "only for a local sandbox)")
        short = [n for n, s in enumerate(self.webhook_secrets, 1) if len(s) < MIN_WEBHOOK_SECRET_LENGTH]
        if short:
            unsafe.append(f"DECENTRO_WEBHOOK_SECRET: secret(s) number {', '.join(map(str, short))} "
                          f"shorter than {MIN_WEBHOOK_SECRET_LENGTH} characters")
        if any("," in secret for secret in self.webhook_secrets):
            unsafe.append("DECENTRO_WEBHOOK_SECRET: separate secrets with spaces; a comma would be read "
                          "as part of one secret")
        return unsafe

    def check(self) -> Settings:
        """Raise :class:`ConfigurationError` naming every missing or unsafe live variable (never a value)."""
        if not self.use_mocks:
            problems = self.missing_live_settings()
            if problems:
                raise ConfigurationError(
                    "USE_MOCKS=false needs these settings: " + ", ".join(problems)
                )
            unsafe = self.unsafe_live_settings()
            if unsafe:
                raise ConfigurationError("Unsafe live settings: " + "; ".join(unsafe))
        if self.max_retries < 0 or self.timeout <= 0 or self.connect_timeout <= 0 or self.deadline <= 0:
            raise ConfigurationError("DECENTRO_MAX_RETRIES must be >= 0, timeouts and DECENTRO_DEADLINE > 0")
        if self.redis_timeout <= 0 or self.redis_cooldown <= 0:
            raise ConfigurationError("DECENTRO_REDIS_TIMEOUT and DECENTRO_REDIS_COOLDOWN must be > 0")
        if self.background_retries < 0:
            raise ConfigurationError("DECENTRO_BACKGROUND_RETRIES must be >= 0")
        if self.bulkhead_max < -1 or self.bulkhead_wait < 0 or not 0 <= self.breaker_slow_call_rate <= 1 or self.breaker_slow_call_seconds < 0 \
                or self.breaker_window < 1 or self.breaker_min_calls < 1:
            raise ConfigurationError("DECENTRO_BULKHEAD_MAX must be >= -1, DECENTRO_BULKHEAD_WAIT >= 0, "
                                     "DECENTRO_BREAKER_SLOW_CALL_RATE 0 to 1, DECENTRO_BREAKER_SLOW_CALL_SECONDS "
                                     ">= 0, DECENTRO_BREAKER_WINDOW and DECENTRO_BREAKER_MIN_CALLS at least 1")
        if self.async_workers < 1:
            raise ConfigurationError("DECENTRO_ASYNC_WORKERS must be at least 1")
        if self.audit_anchor_interval < 0:
            raise ConfigurationError("DECENTRO_AUDIT_ANCHOR_INTERVAL must be >= 0")
        if self.aadhaar_otp_timeout <= 0:
            raise ConfigurationError("DECENTRO_AADHAAR_OTP_TIMEOUT must be > 0")
        if self.events_dispatch not in ("inline", "worker"):
            raise ConfigurationError("DECENTRO_EVENTS_DISPATCH must be inline or worker")
        if self.events_max_attempts < 1 or self.events_retry_base <= 0 or self.events_retry_max <= 0 \
                or self.events_lease <= 0 or self.reconcile_grace < 0:
            raise ConfigurationError("DECENTRO_EVENTS_* must be positive (MAX_ATTEMPTS at least 1), "
                                     "DECENTRO_RECONCILE_GRACE >= 0")
        return self


SETTINGS: tuple[tuple[str, Any, str], ...] = tuple(
    (f.metadata["env"], f.default, f.metadata["doc"]) for f in fields(Settings)
)
"""(variable, default, description) for every setting: the README's table is made from it."""


def _redact_url(value: Any) -> Any:
    if isinstance(value, str) and "@" in value and "://" in value:
        scheme, rest = value.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return value
