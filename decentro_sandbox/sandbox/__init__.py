"""Offline Decentro sandbox server: Decentro's paths over HTTP, answered by the emulator.

``start_sandbox(port=0)`` starts one in a thread (tests); ``decentro-sandbox`` or
``python -m decentro_sandbox.sandbox`` runs one in the foreground. See ``docs/sandbox.md``.
"""

from __future__ import annotations

from .webhooks import CallbackDeliverer
from .faults import FAULT_KINDS, FaultPlan, FaultRule, Latency
from .server import DEFAULT_CREDENTIALS, SandboxServer, start_sandbox

__all__ = [
    "DEFAULT_CREDENTIALS",
    "FAULT_KINDS",
    "CallbackDeliverer",
    "FaultPlan",
    "FaultRule",
    "Latency",
    "SandboxServer",
    "start_sandbox",
]
