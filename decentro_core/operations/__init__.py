"""Every Decentro operation, declared once, grouped by area.

Adding an operation: declare it in its area's module (schema, body, parser, subject...),
add the service method that runs it (:mod:`decentro_core.service`), and, to expose it over
HTTP, one route in :mod:`flask_decentro.routes`.
"""

from __future__ import annotations

from . import aadhaar, kyc, notifications, payments, vpa
from .base import LocalOperation, Operation, Request

__all__ = ["LocalOperation", "Operation", "Request", "aadhaar", "kyc", "notifications", "payments", "vpa"]
