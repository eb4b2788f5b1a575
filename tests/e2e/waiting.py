"""Waiting on state in the end-to-end tests: a limit, never a duration."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

WAIT = 120.0  # seconds: the limit for any one state to be reached on a busy machine


def wait_for(condition: Callable[[], Any], *, what: str, limit: float = WAIT) -> Any:
    """Poll ``condition`` until it returns something true (returned), or fail after ``limit``."""
    deadline = time.monotonic() + limit
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit}s waiting for {what}")
        time.sleep(0.05)
    return value
