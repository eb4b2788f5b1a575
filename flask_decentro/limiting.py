"""Rate limiting of the KYC and payment routes with flask-limiter, per client IP.

The key is ``request.remote_addr`` and nothing else: ``X-Forwarded-For`` is set by the client
and would let anyone pick their own bucket. Behind a reverse proxy, wrap the app in
``werkzeug.middleware.proxy_fix.ProxyFix`` with the exact number of proxies you run.
"""

from __future__ import annotations


from flask import Flask, request
from flask_limiter import Limiter

from decentro_core.demo import warn_once

from .config import FlaskOptions

__all__ = ["build_limiter", "client_ip"]

# Demo warnings share one logger, so a command that does not serve can quiet them all at once.


def client_ip() -> str:
    """The limiter key: the peer address as the WSGI server (or ProxyFix) saw it."""
    return request.remote_addr or "unknown"


def _never() -> bool:
    return True


def _warn_in_memory_storage() -> None:
    warn_once(
        "in-memory-rate-limits",
        "Decentro rate limits use IN-MEMORY storage: each process counts on its own. "
        "Set DECENTRO_RATELIMIT_STORAGE_URI=redis://... when several processes serve."
    )


def build_limiter(app: Flask, options: FlaskOptions) -> Limiter:
    """A limiter of our own, so the host app's ``RATELIMIT_*`` defaults do not leak into it.

    Storage errors fail open (logged by flask-limiter): a Redis outage must not turn every
    KYC call into a 500.
    """
    if options.ratelimit_storage_uri.startswith("memory://"):
        _warn_in_memory_storage()
    uri = options.ratelimit_storage_uri
    # Redis keys start with our prefix too (not limits' "LIMITS"), so one prefix names them all.
    storage_options: dict[str, str | int] = {}
    if uri.startswith("redis"):
        storage_options["key_prefix"] = options.ratelimit_key_prefix
    limiter = Limiter(
        client_ip,
        storage_uri=uri,
        storage_options=storage_options,
        key_prefix=options.ratelimit_key_prefix,
        # The headers cost a window read from the storage after every hit (a Redis round trip).
        headers_enabled=options.ratelimit_headers,
        swallow_errors=True,
        strategy="fixed-window",
        # Our limiter applies only where we decorate: never the app's RATELIMIT_DEFAULT.
        default_limits_exempt_when=_never,
        application_limits_exempt_when=_never,
    )
    limiter.init_app(app)
    return limiter
