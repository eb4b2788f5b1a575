"""Outcome events as Flask-style signals (blinker, as Flask's own signals).

Connect a receiver the way Flask's signals are used::

    from flask_decentro import signals

    @signals.payment_succeeded.connect_via(app)      # or .connect(fn) for every app
    def paid(sender, event):
        loans.mark_paid(event.reference_id)

``signals.outcome`` carries every event; each type has its own signal (``payment_failed``,
``kyc_completed``, ``aadhaar_verified``...; ``by_type["payment.succeeded"]``). Receivers are
called through the service's :class:`~decentro_core.events.EventDispatcher`, each as its own
handler: a receiver that raises is retried with backoff, and one that returned is not called
again for that event. They run inside an application context. Keep receivers connected for the
life of the app (blinker holds them weakly unless ``weak=False``), with stable names: delivery
is recorded by the receiver's module and qualified name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from blinker import Namespace, Signal
from flask import Flask

from decentro_core.events import EVENT_TYPES, EventDispatcher, Handler
from decentro_core.ports import OutcomeEvent

__all__ = ["by_type", "connect_dispatcher", "outcome"]

_signals = Namespace()

outcome: Signal = _signals.signal("decentro.outcome", doc="Every outcome event (``event=`` keyword).")
by_type: dict[str, Signal] = {kind: _signals.signal(f"decentro.{kind}") for kind in EVENT_TYPES}

payment_succeeded = by_type["payment.succeeded"]
payment_failed = by_type["payment.failed"]
payment_expired = by_type["payment.expired"]
payment_outcome_unknown = by_type["payment.outcome_unknown"]
kyc_completed = by_type["kyc.completed"]
aadhaar_verified = by_type["aadhaar.verified"]
aadhaar_failed = by_type["aadhaar.failed"]

_CONNECTED = "_flask_decentro_signals"


def connect_dispatcher(dispatcher: EventDispatcher, app: Flask) -> None:
    """Deliver ``dispatcher``'s events to this module's signals, with ``app`` as the sender
    and inside its application context (once per dispatcher)."""
    dispatcher.context = app.app_context
    if getattr(dispatcher, _CONNECTED, False):
        return
    setattr(dispatcher, _CONNECTED, True)

    def receivers(event: OutcomeEvent) -> Iterator[tuple[str, Handler]]:
        for signal in (by_type[event.type], outcome):
            for receiver in signal.receivers_for(app):
                name = f"signal:{getattr(signal, 'name', 'decentro')}:{_name(receiver)}"
                yield name, _caller(receiver, app)

    def types() -> list[str]:
        if outcome.receivers:
            return list(EVENT_TYPES)
        return [kind for kind, signal in by_type.items() if signal.receivers]

    dispatcher.add_source(receivers, types)


def _caller(receiver: Any, app: Flask) -> Handler:
    def call(event: OutcomeEvent) -> object:
        return receiver(app, event=event)

    return call


def _name(receiver: Any) -> str:
    return f"{getattr(receiver, '__module__', '?')}.{getattr(receiver, '__qualname__', type(receiver).__name__)}"
