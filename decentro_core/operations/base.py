"""How a Decentro operation is declared: one :class:`Operation` value per endpoint.

A declaration says everything that differs between operations: where the request goes, how
its input is validated, how the body is built and the answer read, what the audit log may
name (a masked subject), which fields make the KYC cache key, whether consent is recorded,
and how a failed attempt may be retried. :class:`~decentro_core.runner.OperationRunner` runs
any declaration and knows none of them by name.

The functions a declaration names receive the *request*: the validated input plus what the
service adds (``consent_purpose``, the payee account), and the reference id of the attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from marshmallow import Schema

from ..envelope import Outcome
from ..ports import GatewayResponse, Module
from ..retry import RetryMode
from ..validation import load

if TYPE_CHECKING:
    from ..runner import OperationRunner

__all__ = ["LocalOperation", "Operation", "Request", "validated_input"]

Request = Mapping[str, Any]
"""The validated input of one call, plus what the service adds (``consent_purpose``...)."""


def validated_input(operation: Operation | LocalOperation, request: Request) -> dict[str, Any]:
    """The part of ``request`` the caller gave (the schema's fields): what a record seals."""
    return {name: request[name] for name in operation.schema.fields if name in request}


@dataclass(frozen=True)
class Operation:
    """One Decentro endpoint, declared once.

    ``name`` is the word used in records, consent records, cache keys and audit actions.
    ``path`` is a ``str.format`` template over the request and ``settings`` (e.g.
    ``"/v2/payments/transaction/{transaction_id}/status"`` or ``"{settings.sms_path}"``).
    ``cache_fields`` make the cache document key (empty: never cached).
    """

    name: str
    method: Literal["GET", "POST"]
    path: str
    module: Module
    mode: RetryMode
    schema: Schema
    body: Callable[[Request, str], Mapping[str, Any] | None]
    parse: Callable[[GatewayResponse, str, Request], Outcome]
    subject: Callable[[Request], str]
    sealed_input: Callable[[Operation, Request], Mapping[str, Any]] = validated_input
    cache_fields: tuple[str, ...] = ()
    consent: bool = False
    envelope_fields: Callable[[Request], Mapping[str, Any]] | None = None
    complete: Callable[[OperationRunner, Outcome, Request], Outcome] | None = None
    """A step after a successful answer is parsed, over the ports (the OTP flow's signed file)."""
    recorded: bool = True
    """Whether each call writes its own operation record and audit event. A status look-up
    does not: the payment's own record changes, and is audited, only when its status does."""
    retry_in_background: bool = False
    """Whether a retry that must wait (a WRITE Decentro refused unprocessed: 429, 503, no
    connection) runs off the caller's thread, the caller answered ``PENDING`` at once
    (``DECENTRO_BACKGROUND_RETRIES``). Only for operations whose answer is ``PENDING`` whatever
    Decentro says (a collect request waits for the payer): the caller loses nothing by not waiting."""
    from_settings: Mapping[str, str] | None = None
    """Request keys the service fills from settings before the call, ``{key: setting attribute}``
    (the PAN-Detailed ``document_type`` spelling): the body reads them like the caller's input."""
    budget: str | None = None
    """The setting holding this operation's own deadline and read timeout, seconds (Aadhaar
    OTP validation's ``aadhaar_otp_timeout``); ``None``: ``DECENTRO_DEADLINE`` and ``DECENTRO_TIMEOUT``."""

    def load(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the caller's input with this operation's schema (typed errors)."""
        return load(self.schema, raw)

    def cache_document(self, request: Request) -> str:
        """The request's identity for the KYC cache: its ``cache_fields``, joined."""
        return "|".join(str(request.get(name) or "") for name in self.cache_fields)


@dataclass(frozen=True)
class LocalOperation:
    """An operation checked here, not at Decentro (the offline Aadhaar file): it has a name,
    a schema and consent like any other, and is recorded and audited the same way."""

    name: str
    schema: Schema
    consent: bool = True

    def load(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        return load(self.schema, raw)
