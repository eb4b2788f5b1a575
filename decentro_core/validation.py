"""The rules every input is checked by before anything leaves the process.

Field rules shared by the operations (PAN, IFSC, mobile, rupee amounts...) and consent live
here; each operation's own schema sits beside its declaration in
:mod:`decentro_core.operations`. :func:`load` runs a schema and converts marshmallow's error
into :class:`~decentro_core.errors.ValidationError`, whose ``fields`` name what is wrong
without echoing the values (they may be personal data).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate
from marshmallow import ValidationError as MarshmallowError

from .errors import DuplicateKey, ValidationError

__all__ = [
    "AADHAAR_RE",
    "ACCOUNT_RE",
    "MOBILE_RE",
    "IFSC_RE",
    "NAME_RE",
    "PAN_RE",
    "PURPOSE_ERROR",
    "PURPOSE_RE",
    "VPA_RE",
    "ConsentSchema",
    "MobileField",
    "RupeeAmount",
    "StrictSchema",
    "USER_ID_MAX",
    "is_storable",
    "is_valid_aadhaar",
    "load",
    "loads_json",
    "normalise_mobile",
    "unstorable_fields",
    "upper_strip",
]

# Patterns end in \Z, not $: `$` also matches before a trailing newline, which would let
# "123456789011\n" through to Decentro.
PAN_RE = re.compile(r"^[A-Z]{5}[0-9]{4}[A-Z]\Z")
IFSC_RE = re.compile(r"^[A-Z]{4}0[A-Z0-9]{6}\Z")
ACCOUNT_RE = re.compile(r"^[0-9]{9,18}\Z")
USER_ID_MAX = 200  # a user id is stored with records, consent and audit events
AADHAAR_RE = re.compile(r"^[2-9][0-9]{11}\Z")  # and a Verhoeff check digit: is_valid_aadhaar
MOBILE_RE = re.compile(r"^(?:\+?91|0)?([6-9][0-9]{9})\Z")
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z .'-]{0,98}[A-Za-z.]?\Z")
VPA_RE = re.compile(r"^[A-Za-z0-9.\-_]{2,256}@[A-Za-z]{2,64}\Z")
# Decentro's sanitiser refuses these in payment purposes (error_unsanitized_values); a hyphen is fine.
PURPOSE_RE = re.compile(r"^[^.@#$%^&*!;:'\"~`?=+)(\x00-\x1f\x7f]+\Z")
PURPOSE_ERROR = "Must not contain . @ # $ % ^ & * ! ; : ' \" ~ ` ? = + ) ( or control characters."

# Verhoeff tables: Aadhaar numbers carry a Verhoeff check digit.
_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def is_valid_aadhaar(number: str) -> bool:
    """12 digits, not starting with 0 or 1, with a valid Verhoeff check digit."""
    if not AADHAAR_RE.match(number):
        return False
    check = 0
    for position, digit in enumerate(reversed(number)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[position % 8][int(digit)]]
    return check == 0


def normalise_mobile(value: str) -> str:
    """``+91 98765 43210`` → ``9876543210``; raises ``ValueError`` if not an Indian mobile."""
    compact = re.sub(r"[\s-]", "", value)
    match = MOBILE_RE.fullmatch(compact)
    if not match:
        raise ValueError("not an Indian mobile number")
    return match.group(1)


def upper_strip(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class StrictSchema(Schema):
    """Refuses unknown fields: a misspelt option must not be silently ignored."""

    class Meta:
        unknown = RAISE


class ConsentSchema(Schema):
    """Consent as a caller gives it: explicit, with the text shown and a purpose."""

    class Meta:
        unknown = EXCLUDE

    given = fields.Boolean(required=True, truthy={True}, falsy={False},  # true itself, not "yes" or 1
                           validate=validate.Equal(True, error="Consent must be given."))
    text = fields.String(required=True, validate=validate.Length(min=10, max=2000))
    purpose = fields.String(
        required=True,
        validate=validate.Length(min=21, max=500, error="Purpose must be 21 to 500 characters."),
    )
    client_ip = fields.String(load_default=None, validate=validate.Length(max=64))
    user_agent = fields.String(load_default=None, validate=validate.Length(max=512))


class MobileField(fields.String):
    default_error_messages = {"invalid_mobile": "Not a valid Indian mobile number."}

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalise_mobile(text)
        except ValueError:
            raise self.make_error("invalid_mobile") from None


class RupeeAmount(fields.Field[Decimal]):
    """Rupees as a JSON number or a plain string: ASCII digits, at most two decimals.

    ``Decimal()`` and ``float()`` also read Devanagari or fullwidth digits, exponents
    (``1e3``) and padded text; an amount of money accepts none of those.
    """

    default_error_messages = {"invalid": "Amount must be rupees with at most two decimals (e.g. 10 or 10.50)."}
    PATTERN = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
            raise self.make_error("invalid")
        text = repr(value) if isinstance(value, float) else str(value)
        if not self.PATTERN.fullmatch(text):
            raise self.make_error("invalid")
        return Decimal(text)


_KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")  # a repeated key is named back only if it looks like a name


def loads_json(raw: bytes | bytearray | str) -> Any:
    """``json.loads`` for every JSON a client or Decentro sends us: an object that names one key
    twice, at any depth, raises :class:`~decentro_core.errors.DuplicateKey` (HTTP 400).

    ``json.loads`` keeps the last of repeated keys (``{"amount": 10, "amount": 99999}`` is
    99999) while other parsers keep the first (RFC 8259 section 4 leaves it open), so a check in
    front and this process could read different requests. Text that is not JSON raises
    ``ValueError`` (``RecursionError`` for absurd nesting), as ``json.loads`` does.
    """
    return json.loads(raw, object_pairs_hook=_unique_keys)


def _unique_keys(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            name = key if _KEY_NAME.match(key) else "_body"
            raise DuplicateKey({name: ["Give this key once"]}, message="A JSON object names one key twice")
        result[key] = value
    return result


UNSTORABLE = "Contains a character that cannot be stored (NUL or an unpaired surrogate)."


def is_storable(text: str) -> bool:
    """Text every store can keep: no NUL (PostgreSQL refuses it) and valid UTF-8 (no lone surrogate)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_fields(value: Any, name: str = "_schema") -> dict[str, list[str]]:
    """Every field (dotted name) holding text :func:`is_storable` refuses, however deep."""
    if isinstance(value, str):
        return {} if is_storable(value) else {name: [UNSTORABLE]}
    found: dict[str, list[str]] = {}
    if isinstance(value, Mapping):
        for key, inner in value.items():
            label = key if isinstance(key, str) and is_storable(key) else "_schema"
            found.update(unstorable_fields(inner, label if name == "_schema" else f"{name}.{label}"))
    elif isinstance(value, (list, tuple)):
        for inner in value:
            found.update(unstorable_fields(inner, name))
    return found


def load(schema: Schema, data: Mapping[str, Any]) -> dict[str, Any]:
    """Run ``schema`` over ``data``; raise :class:`ValidationError` naming the bad fields."""
    if not isinstance(data, Mapping):
        raise ValidationError({"_schema": ["Expected an object."]})
    unstorable = unstorable_fields(data)
    if unstorable:
        raise ValidationError(unstorable)
    try:
        result: dict[str, Any] = schema.load(dict(data))
    except MarshmallowError as exc:
        raise ValidationError(_flatten(exc.messages)) from None
    return result


def _flatten(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix and key != "_schema" else (prefix or str(key))
            for inner_key, inner in _flatten(value, name).items():
                flat.setdefault(inner_key, []).extend(inner)
    elif isinstance(messages, list):
        flat[prefix or "_schema"] = [str(m) for m in messages if not isinstance(m, (dict, list))]
        for nested in (m for m in messages if isinstance(m, (dict, list))):
            for key, value in _flatten(nested, prefix).items():
                flat.setdefault(key, []).extend(value)
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat
