"""The extension's configuration: each Flask-level key defined once, and the layering.

Precedence for every ``DECENTRO_*`` key (and the core's settings in
:mod:`decentro_core.settings`): constructor argument > ``app.config`` > environment > default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from decentro_core.errors import ConfigurationError
from decentro_core.webhooks import DEMO_WEBHOOK_SECRET
from decentro_core.settings import ALIASES, SETTINGS, Settings, parse_bool, read_fields, setting

__all__ = ["DEMO_WEBHOOK_SECRET", "FLASK_OPTIONS", "FlaskOptions", "merged_mapping"]

@dataclass(frozen=True)
class FlaskOptions:
    """Options of the Flask layer only (mount point, rate limits); the core's settings, the
    webhook options among them, live in :class:`Settings`."""

    url_prefix: str = setting("DECENTRO_URL_PREFIX", "/api", str, "Where the blueprint is mounted")
    ratelimit: str = setting(
        "DECENTRO_RATELIMIT",
        "10 per minute", str,
        "Per DECENTRO_RATELIMIT_KEY (client IP by default): KYC routes share one count, POST /payments another"
    )
    status_ratelimit: str = setting(
        "DECENTRO_STATUS_RATELIMIT",
        "60 per minute", str, "GET /payments/<reference_id>, per signed-in user (per client IP in demo mode)"
    )
    ratelimit_storage_uri: str = setting(
        "DECENTRO_RATELIMIT_STORAGE_URI",
        "memory://", str, "Limiter storage; redis://... when several processes serve"
    )
    ratelimit_on_storage_error: str = setting(
        "DECENTRO_RATELIMIT_ON_STORAGE_ERROR",
        "memory", str, "When the limiter storage fails: memory (count in this process until it is back) or refuse "
        "(503 with Retry-After); never off"
    )
    ratelimit_allow_memory: bool = setting(
        "DECENTRO_RATELIMIT_ALLOW_MEMORY",
        False, parse_bool, "Let live mode start with memory:// limiter storage although several processes serve "
        "(each counts the whole limit)"
    )
    ratelimit_key: str = setting(
        "DECENTRO_RATELIMIT_KEY",
        "ip", str, "What a limit counts per: ip, user (the identity callable's id) or user_or_ip (per IP when "
        "nobody is signed in)"
    )
    ratelimit_key_prefix: str = setting(
        "DECENTRO_RATELIMIT_KEY_PREFIX",
        "flask-decentro", str, "Limiter key prefix; instances sharing a count share it"
    )
    ratelimit_headers: bool = setting(
        "DECENTRO_RATELIMIT_HEADERS",
        True, parse_bool, "Send X-RateLimit-* headers; false saves a limiter storage read per request"
    )
    payments_enabled: bool = setting(
        "DECENTRO_PAYMENTS_ENABLED",
        True, parse_bool, "Mount the payment routes; live mode then needs DECENTRO_PAYEE_ACCOUNT at start-up"
    )
    console_prefix: str = setting(
        "DECENTRO_CONSOLE_PREFIX",
        "/decentro/console", str, "Where the operator console is mounted (only with Decentro(operator=...))"
    )
    console_page_size: int = setting(
        "DECENTRO_CONSOLE_PAGE_SIZE",
        50, int, "Rows per page in the operator console (1-500)"
    )
    metrics_endpoint: str = setting(
        "DECENTRO_METRICS_ENDPOINT",
        "", str, "Path of a Prometheus scrape endpoint on the app (e.g. /metrics; needs DECENTRO_METRICS=prometheus); "
        "closed unless Decentro(metrics_access=...) says who may scrape (live mode: 403; mock mode: loopback only); "
        "empty: none"
    )

    openapi_enabled: bool = setting(
        "DECENTRO_OPENAPI_ENABLED",
        True, parse_bool, "Serve the OpenAPI 3.1 document at <prefix>/openapi.json"
    )
    docs_enabled: bool = setting(
        "DECENTRO_DOCS_ENABLED",
        True, parse_bool, "Serve Swagger UI at <prefix>/docs (with the OpenAPI document; needs the docs extra)"
    )

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> FlaskOptions:
        return cls(**read_fields(cls, mapping))


FLASK_OPTIONS: tuple[tuple[str, Any, str], ...] = tuple(
    (f.metadata["env"], f.default, f.metadata["doc"]) for f in fields(FlaskOptions)
)
"""(key, default, description) of every Flask-level option: docs/flask.md's table."""

_KNOWN_KEYS = frozenset(key for key, _, _ in SETTINGS + FLASK_OPTIONS)
_ALIASES = ALIASES
_FIELD_TO_KEY = {f.name: f.metadata["env"] for f in fields(Settings)} | {
    f.name: f.metadata["env"] for f in fields(FlaskOptions)
}


def _layer(source: Mapping[str, Any]) -> dict[str, Any]:
    """The known keys of one source, aliases folded onto their canonical names."""
    layer = {k: v for k, v in source.items() if k in _KNOWN_KEYS and v is not None}
    for alias, canonical in _ALIASES.items():
        if source.get(alias) is not None and canonical not in layer:
            layer[canonical] = source[alias]
    return layer


def overrides_to_keys(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments by field name (``use_mocks=``) or key (``DECENTRO_...=``)."""
    out: dict[str, Any] = {}
    for name, value in overrides.items():
        key = _FIELD_TO_KEY.get(name, name)
        if key not in _KNOWN_KEYS and key not in _ALIASES:
            raise ConfigurationError(f"Unknown Decentro option: {name}")
        out[key] = value
    return _layer(out)


def merged_mapping(
    overrides: Mapping[str, Any], config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Constructor arguments over ``app.config`` over the environment."""
    merged = _layer(os.environ if environ is None else environ)
    merged.update(_layer(config))
    merged.update(overrides_to_keys(overrides))
    return merged
