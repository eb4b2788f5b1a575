"""Warnings about demo-only defaults (an ephemeral key, the public webhook secret, in-memory
rate limits): each given once per process, on the ``decentro.demo`` logger.

A second app built in the same process adds nothing to read, and a maintenance command (the
Flask CLI quiets ``decentro.demo``) is not the place for them: serving is.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["DEMO_LOG", "forget_warnings", "warn_once"]

DEMO_LOG = logging.getLogger("decentro.demo")
_given: set[tuple[str, str]] = set()
_guard = threading.Lock()


def warn_once(key: str, message: str, *args: object, logger: logging.Logger = DEMO_LOG) -> None:
    """Log ``message`` at WARNING on ``logger``, unless this process already did or nobody listens."""
    if not logger.isEnabledFor(logging.WARNING):
        return
    with _guard:
        if (logger.name, key) in _given:
            return
        _given.add((logger.name, key))
    logger.warning(message, *args)


def forget_warnings() -> None:
    """Let every warning be given again (tests)."""
    with _guard:
        _given.clear()
