"""Settings, read once from the environment (or any mapping) with the guide's names.

Each setting is defined once, in :data:`SETTINGS`, with its variable name, type and default.
:meth:`Settings.from_env` reads ``os.environ``; :meth:`Settings.from_mapping` reads any
mapping, which is how the Flask extension layers constructor arguments over ``app.config``
over the environment. :meth:`Settings.check` refuses a live configuration without
credentials, naming every missing variable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigurationError

__all__ = ["SETTINGS", "Settings", "parse_bool"]

STAGING_BASE = "https://in.staging.decentro.tech"


def parse_bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _csv(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _setting(env: str, default: Any, parse: Callable[[Any], Any] = str, doc: str = "") -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "doc": doc})


@dataclass(frozen=True)
class Settings:
    """Every knob of the library. Secrets never appear in ``repr``."""

    use_mocks: bool = _setting("USE_MOCKS", True, parse_bool, "Answer from the in-process mock gateway")
    api_base: str = _setting("DECENTRO_API_BASE", STAGING_BASE, str, "Decentro host (staging by default)")
    client_id: str = _setting("DECENTRO_CLIENT_ID", "", str, "Decentro client_id header")
    client_secret: str = _setting("DECENTRO_CLIENT_SECRET", "", str, "Decentro client_secret header")
    api_key: str = _setting("DECENTRO_API_KEY", "", str, "Default module_secret for every module")
    kyc_module_secret: str = _setting("DECENTRO_KYC_MODULE_SECRET", "", str, "module_secret for KYC calls")
    banking_module_secret: str = _setting(
        "DECENTRO_BANKING_MODULE_SECRET", "", str, "module_secret for bank-account validation"
    )
    payments_module_secret: str = _setting(
        "DECENTRO_PAYMENTS_MODULE_SECRET", "", str, "module_secret for UPI payments"
    )
    payments_provider_secret: str = _setting(
        "DECENTRO_PAYMENTS_PROVIDER_SECRET", "", str, "provider_secret for UPI payments"
    )
    notifications_module_secret: str = _setting(
        "DECENTRO_NOTIFICATIONS_MODULE_SECRET", "", str, "module_secret for SMS and e-mail"
    )
    payee_account: str = _setting(
        "DECENTRO_PAYEE_ACCOUNT", "", str, "Your Decentro virtual account that receives UPI payments"
    )
    sms_path: str = _setting(
        "DECENTRO_SMS_PATH", "/v2/notifications/sms", str, "SMS path (not public: confirm with Decentro)"
    )
    email_path: str = _setting(
        "DECENTRO_EMAIL_PATH", "/v2/notifications/email", str, "E-mail path (not public: confirm with Decentro)"
    )
    timeout: float = _setting("DECENTRO_TIMEOUT", 30.0, float, "Read timeout per attempt, seconds")
    connect_timeout: float = _setting("DECENTRO_CONNECT_TIMEOUT", 5.0, float, "Connect timeout, seconds")
    max_retries: int = _setting("DECENTRO_MAX_RETRIES", 3, int, "Retries after the first attempt")
    backoff_base: float = _setting("DECENTRO_BACKOFF_BASE", 0.5, float, "First backoff, seconds (doubles)")
    backoff_max: float = _setting("DECENTRO_BACKOFF_MAX", 8.0, float, "Longest backoff, seconds")
    webhook_secrets: tuple[str, ...] = _setting(
        "DECENTRO_WEBHOOK_SECRET", (), _csv, "HMAC secret(s) for callbacks, comma-separated (rotation)"
    )
    encryption_keys: tuple[str, ...] = _setting(
        "DECENTRO_ENCRYPTION_KEYS", (), _csv, "Fernet keys, comma-separated; the first encrypts"
    )
    database_url: str = _setting("DECENTRO_DATABASE_URL", "", str, "sqlite:///... or postgresql://...")
    cache_url: str = _setting("DECENTRO_CACHE_URL", "", str, "redis://... (in-memory when empty)")
    cache_ttl: int = _setting("DECENTRO_CACHE_TTL", 86400, int, "KYC result cache lifetime, seconds")
    uidai_certs: tuple[str, ...] = _setting(
        "DECENTRO_UIDAI_CERT", (), _csv, "Extra UIDAI certificate/key files (PEM or DER), comma-separated"
    )
    aadhaar_max_age_hours: float = _setting(
        "DECENTRO_AADHAAR_MAX_AGE_HOURS", 72.0, float, "Oldest offline e-KYC file accepted, hours"
    )
    aadhaar_max_bytes: int = _setting(
        "DECENTRO_AADHAAR_MAX_BYTES", 5 * 1024 * 1024, int, "Largest offline e-KYC XML or ZIP accepted"
    )

    def __repr__(self) -> str:
        shown = ("use_mocks", "api_base", "timeout", "max_retries", "database_url", "cache_url")
        inner = ", ".join(f"{name}={_redact_url(getattr(self, name))!r}" for name in shown)
        return f"Settings({inner}, ...)"

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], **overrides: Any) -> Settings:
        """Read every setting by its variable name; ``overrides`` are field names."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            env = f.metadata["env"]
            raw = mapping.get(env)
            if raw is None and env == "USE_MOCKS":
                raw = mapping.get("DECENTRO_USE_MOCKS")
            if raw is None and env == "DECENTRO_DATABASE_URL":
                raw = mapping.get("DATABASE_URL")
            if raw is None:
                continue
            try:
                values[f.name] = f.metadata["parse"](raw)
            except (TypeError, ValueError) as exc:
                raise ConfigurationError(f"{env} is not valid: {exc}") from None
        values.update(overrides)
        return cls(**values)

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
        if not self.api_key and not self.kyc_module_secret:
            missing.append("DECENTRO_API_KEY (or DECENTRO_KYC_MODULE_SECRET)")
        if not self.encryption_keys:
            missing.append("DECENTRO_ENCRYPTION_KEYS")
        return missing

    def check(self) -> Settings:
        """Raise :class:`ConfigurationError` naming every missing live variable."""
        if not self.use_mocks:
            missing = self.missing_live_settings()
            if missing:
                raise ConfigurationError(
                    "USE_MOCKS=false needs these settings: " + ", ".join(missing)
                )
        if self.max_retries < 0 or self.timeout <= 0 or self.connect_timeout <= 0:
            raise ConfigurationError("DECENTRO_MAX_RETRIES must be >= 0 and timeouts > 0")
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
