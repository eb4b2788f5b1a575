"""How a setting is declared and read: the value parsers, :func:`setting` and :func:`read_fields`.

:mod:`decentro_core.settings` declares the library's settings with these; the Flask
extension's own options (:mod:`flask_decentro.config`) use the same ones, so every variable is
parsed, refused and documented the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import field, fields
from typing import Any

from .errors import ConfigurationError

__all__ = ["parse_bool", "parse_choice", "parse_csv", "parse_limits", "parse_secrets", "read_fields", "setting"]


def parse_bool(value: str | bool | int) -> bool:
    """``true/false/1/0/yes/no/on/off`` (any case), or a bool or int as Python reads it."""
    if isinstance(value, (bool, int)):
        return bool(value)
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def parse_csv(value: Any) -> tuple[str, ...]:
    """A comma-separated string, or a list/tuple of values (paths, numbers) as text."""
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("bytes are ambiguous here; give text")
    parts = value if isinstance(value, (list, tuple, set, frozenset)) else str(value).split(",")
    return tuple(str(part).strip() for part in parts if str(part).strip())


def parse_secrets(value: Any) -> tuple[str, ...]:
    """Secrets separated by white space (a space or a new line), which no secret may contain;
    or a list. A comma is part of a secret: secrets are never split on it."""
    if isinstance(value, (bytes, bytearray)):
        raise TypeError("bytes are ambiguous here; give text")
    parts = value if isinstance(value, (list, tuple, set, frozenset)) else str(value).split()
    return tuple(str(part).strip() for part in parts if str(part).strip())


def parse_limits(value: Any) -> tuple[tuple[str, int], ...]:
    """``name=number`` pairs separated by commas (or a mapping), each number at least 1."""
    if isinstance(value, Mapping):
        pairs = [(str(k), v) for k, v in value.items()]
    else:
        pairs = [(part.partition("=")[0], part.partition("=")[2]) for part in parse_csv(value)]
    limits = tuple((name.strip(), int(number)) for name, number in pairs)
    if any(not name or number < 1 for name, number in limits):
        raise ValueError("each limit is name=number, the number at least 1")
    return limits


def parse_choice(*choices: str) -> Callable[[Any], str]:
    """One of ``choices`` (any case), or ``""`` for none (empty, ``none``, ``off``, ``false``)."""

    def parse(value: Any) -> str:
        lowered = str(value).strip().lower()
        if lowered in {"", "none", "off", "false", "0"}:
            return ""
        if lowered not in choices:
            raise ValueError(f"not one of {choices}")
        return lowered

    return parse


def setting(env: str, default: Any, parse: Callable[[Any], Any] = str, doc: str = "") -> Any:
    """A dataclass field read from the variable ``env`` by :func:`read_fields`."""
    return field(default=default, metadata={"env": env, "parse": parse, "doc": doc})


def read_fields(cls: type, mapping: Mapping[str, Any], aliases: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Parse every field of the dataclass ``cls`` present in ``mapping`` under its variable
    name (or an alias); a bad value is a :class:`ConfigurationError` naming the variable only."""
    values: dict[str, Any] = {}
    for f in fields(cls):
        env = f.metadata["env"]
        raw = mapping.get(env)
        for alias, target in (aliases or {}).items():
            if raw is None and target == env:
                raw = mapping.get(alias)
        if raw is None:
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except (TypeError, ValueError, AttributeError):
            raise ConfigurationError(f"{env} is not valid") from None
    return values
