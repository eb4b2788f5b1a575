"""Who asks, and with what consent: values callers pass alongside an operation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConsentRequired, ValidationError
from .validation import ConsentSchema, load

__all__ = ["ASSERTED_CONSENT_TEXT", "CallContext", "Consent"]

ASSERTED_CONSENT_TEXT = "Consent asserted by the calling application; no consent text was supplied."
_CONSENT_SCHEMA = ConsentSchema()  # built once: a marshmallow schema deep-copies its fields when built


@dataclass(frozen=True)
class Consent:
    """The consent a user gave: the text they were shown and the purpose of the check.

    ``asserted`` marks consent the calling code vouches for without passing the text (the
    guide's bare ``verify_pan(pan, name)``); the record says so.
    """

    text: str
    purpose: str
    given: bool = True
    client_ip: str | None = None
    user_agent: str | None = None
    asserted: bool = False
    _checked: bool = field(default=False, init=False, repr=False, compare=False)
    """Made by :meth:`coerce`: validated already, so coercing it again returns it as it is (not
    an ``__init__`` argument, so neither a hand-built nor a ``dataclasses.replace``-d one has it)."""

    @classmethod
    def coerce(cls, value: Consent | Mapping[str, Any]) -> Consent:
        """Validate a consent given as a mapping or built by hand (raises ``ConsentRequired`` if
        not given); one :meth:`coerce` made is returned unchecked (a route checked it)."""
        if not isinstance(value, (Consent, Mapping)):
            raise ConsentRequired({"consent": ["Consent must be an object with given, text and purpose."]})
        if isinstance(value, Consent):
            if value._checked:
                return value
            value = {"given": value.given, "text": value.text, "purpose": value.purpose,
                     "client_ip": value.client_ip, "user_agent": value.user_agent}
        try:
            data = load(_CONSENT_SCHEMA, value)
        except ValidationError as exc:
            raise ConsentRequired(exc.fields, message="Explicit consent (given, text, purpose) is required") from None
        checked = cls(**data)
        object.__setattr__(checked, "_checked", True)  # frozen: set once, here
        return checked

    @classmethod
    def asserted_by_caller(cls, purpose: str, context: CallContext | None = None) -> Consent:
        return cls(text=ASSERTED_CONSENT_TEXT, purpose=purpose, asserted=True,
                   client_ip=context.client_ip if context else None,
                   user_agent=context.user_agent if context else None)


@dataclass(frozen=True)
class CallContext:
    """Who is calling: recorded in audit events (``actor``) and consent records."""

    actor: str = "system"
    client_ip: str | None = None
    user_agent: str | None = None
