"""The opt-in Prometheus scrape endpoint (``DECENTRO_METRICS_ENDPOINT``, off by default).

Mounted on the app itself (not under ``DECENTRO_URL_PREFIX``) at the configured path, outside
the rate limits. It serves the registry the service's Prometheus instruments write to, or,
under ``PROMETHEUS_MULTIPROC_DIR`` (gunicorn with several workers), every worker's values.
``metrics_access`` is the host app's check (``lambda: request.remote_addr in ...``, a token
header...): a refused scrape is a 403. Without one the endpoint is closed, not open: in live
mode every scrape is a 403; in mock mode (a demo on a developer's machine, no real customer's
volumes behind it) only a loopback peer is answered. ``metrics_access=lambda: True`` opens it
on purpose (say, when the proxy in front already restricts the path). prometheus_client is
imported only here, only when the endpoint is on.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from decentro_core.errors import ConfigurationError
from decentro_core.observability import FanOut, Instruments
from decentro_core.settings import Settings

__all__ = ["MetricsAccess", "check_metrics_endpoint", "mount_metrics"]

log = logging.getLogger("flask_decentro")

MetricsAccess = Callable[[], bool]


def check_metrics_endpoint(path: str, settings: Settings) -> None:
    """At ``init_app``, before anything is built: an endpoint needs Prometheus metrics and a path."""
    if not path:
        return
    if settings.metrics != "prometheus":
        raise ConfigurationError("DECENTRO_METRICS_ENDPOINT serves Prometheus metrics: set DECENTRO_METRICS=prometheus")
    if not path.startswith("/"):
        raise ConfigurationError("DECENTRO_METRICS_ENDPOINT must be a path starting with /, e.g. /metrics")


def mount_metrics(app: Flask, path: str, *, settings: Settings, instruments: Instruments,
                  access: MetricsAccess | None) -> None:
    """Serve the metrics at ``path`` (checked by :func:`check_metrics_endpoint`)."""
    from decentro_adapters.observability.prometheus import collect

    registry = _registry_of(instruments)
    if access is None:
        if settings.use_mocks:
            access = _loopback_peer
        else:
            access = _nobody
            log.warning("Decentro metrics at %s refuse every scrape (403): pass Decentro(metrics_access=...) "
                        "to say who may read them", path)

    def metrics() -> Response:
        if not access():
            return Response("Forbidden\n", status=403, content_type="text/plain")
        body, content_type = collect(registry)
        return Response(body, content_type=content_type)

    app.add_url_rule(path, "decentro_metrics", metrics, methods=["GET"])


def _nobody() -> bool:
    return False


def _loopback_peer() -> bool:
    """Mock mode's default check: the scrape comes from this machine (127.0.0.0/8, ::1)."""
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback  # a dual-stack socket's ::ffff:127.0.0.1
    return address.is_loopback


def _registry_of(instruments: Instruments) -> Any:
    """The registry of the service's Prometheus instruments (``None``: the default registry)."""
    from decentro_adapters.observability.prometheus import PrometheusInstruments

    members = instruments.members if isinstance(instruments, FanOut) else (instruments,)
    return next((m.registry for m in members if isinstance(m, PrometheusInstruments)), None)
