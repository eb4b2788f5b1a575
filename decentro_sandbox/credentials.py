"""The emulator's credential check: Decentro's static headers and its documented refusals.

Decentro authenticates every call with ``client_id``, ``client_secret`` and a per-module
``module_secret`` header; collections also send ``provider_secret`` (Decentro's API docs and
the ``decentro-in/decentro-in-collections-sdk-java`` spec). The refusals use Decentro's
documented response keys (docs.decentro.tech, "Collections Response keys"):
``error_empty_module_secret``, ``error_unauthorized_module``, ``error_module_access_expired``
and ``unauthorized_provider``. Their HTTP status (401) and ``responseCode`` (``E00013``) are
our guess: Decentro does not publish them.

Two options stand for what public integrations do but Decentro's docs do not confirm:
``optional_module_secret`` (modules, e.g. ``"kyc"``, callable with only ``client_id`` and
``client_secret``) and ``provider_secrets["banking"]`` (a ``provider_secret`` required on
``validate_account``).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .wire import Reply, failure

__all__ = ["MODULES", "Credentials", "check_credentials"]

MODULES = ("kyc", "banking", "payments", "notifications")
AUTH_CODE = "E00013"  # our guess: Decentro publishes no code for credential refusals


@dataclass(frozen=True)
class Credentials:
    """The headers the emulator expects.

    ``module_secrets`` maps module name to secret; ``provider_secret`` is the payments
    (collections) provider secret; ``provider_secrets`` adds one for other modules (e.g.
    ``{"banking": ...}``); ``expired_modules`` answer ``error_module_access_expired``;
    ``optional_module_secret`` modules accept a request without ``module_secret``.
    """

    client_id: str
    client_secret: str
    module_secrets: Mapping[str, str]
    provider_secret: str | None = None
    provider_secrets: Mapping[str, str] = field(default_factory=dict)
    expired_modules: frozenset[str] = frozenset()
    optional_module_secret: frozenset[str] = frozenset()

    @classmethod
    def same_for_every_module(
        cls, *, client_id: str, client_secret: str, module_secret: str, provider_secret: str | None = None,
        **options: Any,
    ) -> Credentials:
        return cls(client_id, client_secret, {m: module_secret for m in MODULES}, provider_secret, **options)

    def provider_secret_for(self, module: str) -> str | None:
        """The ``provider_secret`` this module requires, if any."""
        if module in self.provider_secrets:
            return self.provider_secrets[module]
        return self.provider_secret if module == "payments" else None


def check_credentials(
    creds: Credentials, module: str, headers: Mapping[str, str], new_id: Callable[[], str]
) -> Reply | None:
    """Decentro's refusal for these headers, or ``None`` when they are accepted."""
    sent = {name.lower(): value for name, value in headers.items()}
    expected = {"client_id": creds.client_id, "client_secret": creds.client_secret}
    if module not in creds.optional_module_secret or sent.get("module_secret"):
        expected["module_secret"] = creds.module_secrets.get(module, "")
    missing = sorted(name for name in expected if not sent.get(name))
    if missing:
        return _refusal(new_id, f"Missing header(s): {', '.join(missing)}.", "error_empty_module_secret")
    if not all(_same(sent[name], value) for name, value in expected.items()):
        return _refusal(new_id, "Authentication failed for this module.", "error_unauthorized_module")
    if module in creds.expired_modules:
        return _refusal(new_id, "The module subscription has expired.", "error_module_access_expired")
    provider = creds.provider_secret_for(module)
    if provider and not _same(sent.get("provider_secret", ""), provider):
        return _refusal(new_id, "The Provider is not authorized for the company.", "unauthorized_provider")
    return None


def _same(sent: str, expected: str) -> bool:
    return hmac.compare_digest(sent.encode(), expected.encode())


def _refusal(new_id: Callable[[], str], message: str, key: str) -> Reply:
    return 401, failure(new_id(), message, code=AUTH_CODE, key=key)
