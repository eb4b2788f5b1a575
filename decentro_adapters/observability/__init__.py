"""Observability adapters: Prometheus metrics (``prometheus``), OpenTelemetry spans (``otel``),
and a JSON log formatter (``logs``). The first two need their extras (``flask-decentro[metrics]``,
``flask-decentro[otel]``) and are imported only when settings ask for them."""

from __future__ import annotations

from .logs import JsonFormatter, install_json_logging

__all__ = ["JsonFormatter", "install_json_logging"]
