"""A JSON log formatter for the library's log lines (standard library only).

The library's lines carry structured fields as ``extra`` (:data:`decentro_core.observability.LOG_FIELDS`:
operation, reference_id, status, attempt, duration_ms, error_code). :class:`JsonFormatter`
writes each record as one JSON object with those fields beside the time, level, logger and
message; it also masks, as a safety net, anything shaped like a PAN, an e-mail address or a
long number (Aadhaar, account, phone) in the message and the traceback, although the
library never logs one in clear. Use it from ``logging.config.dictConfig``
(``"()": "decentro_adapters.observability.JsonFormatter"``) or with :func:`install_json_logging`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any, TextIO

from decentro_core.masking import mask_account, mask_email, mask_pan
from decentro_core.observability import LOG_FIELDS

__all__ = ["JsonFormatter", "install_json_logging", "scrub"]

_PAN = re.compile(r"\b[A-Z]{5}[0-9]{4}[A-Z]\b")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_LONG_NUMBER = re.compile(r"(?<![\w-])\d{9,18}(?![\w-])")


def scrub(text: str) -> str:
    """``text`` with PAN-, e-mail- and long-number-shaped parts masked (``ABCDE****F``, last four)."""
    text = _PAN.sub(lambda m: mask_pan(m.group()), text)
    text = _EMAIL.sub(lambda m: mask_email(m.group()), text)
    return _LONG_NUMBER.sub(lambda m: mask_account(m.group()), text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, the
    structured fields present on the record, and ``exception`` when there is one."""

    def __init__(self, fields: tuple[str, ...] = LOG_FIELDS) -> None:
        super().__init__()
        self.fields = fields

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        for name in self.fields:
            value = getattr(record, name, None)
            if value is not None:
                out[name] = scrub(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(out, default=str)


def install_json_logging(logger: str = "decentro", *, level: int = logging.INFO,
                         stream: TextIO | None = None) -> logging.Handler:
    """Send ``logger``'s lines (the library's: ``decentro``, ``decentro.webhooks``...) as JSON
    to ``stream`` (stderr by default), not also to the root logger's handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    target = logging.getLogger(logger)
    target.addHandler(handler)
    target.setLevel(level)
    target.propagate = False
    return handler
