"""Every exception the library raises is exported from ``decentro_core`` and drawn in the
error tree of :mod:`decentro_core.errors`, so callers can catch what they meet by name."""

from __future__ import annotations

import importlib
import pkgutil
import re

import decentro_adapters
import decentro_core
import flask_decentro
from decentro_core import errors


def _every_error_class() -> set[type[BaseException]]:
    for package in (decentro_core, decentro_adapters, flask_decentro):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    found: set[type[BaseException]] = set()
    todo: list[type[BaseException]] = [errors.DecentroError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return {cls for cls in found if cls.__module__.split(".")[0] in {"decentro_core", "decentro_adapters",
                                                                     "flask_decentro"}}


def test_every_library_error_is_exported_from_the_core_package():
    missing = sorted(cls.__name__ for cls in _every_error_class() if getattr(decentro_core, cls.__name__, None)
                     is not cls)
    assert missing == []
    assert {cls.__name__ for cls in _every_error_class()} <= set(decentro_core.__all__)


def test_every_library_error_is_drawn_in_the_error_tree():
    tree = errors.__doc__ or ""
    drawn = set(re.findall(r"[├└]── (\w+)", tree)) | {"DecentroError"}
    assert sorted(cls.__name__ for cls in _every_error_class() if cls.__name__ not in drawn) == []


def test_the_tree_draws_each_error_under_its_real_parent():
    """The drawing is indented four columns a level: each name's parent is the nearest name above it
    drawn one level up."""
    stack: list[tuple[int, str]] = []
    parents: dict[str, str] = {}
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^(\s*(?:[│ ]   )*)(?:[├└]── )?(\w+Error|\w+)\s{2,}|^\s*(DecentroError)\s*$", line)
        name_match = re.search(r"(?:[├└]── )(\w+)", line)
        if line.strip() == "DecentroError":
            stack = [(0, "DecentroError")]
            continue
        if not name_match or not stack:
            continue
        depth = name_match.start() // 4 + 1
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name_match.group(1)] = stack[-1][1]
        stack.append((depth, name_match.group(1)))
    assert parents, "no tree found"
    for name, parent in parents.items():
        cls = getattr(errors, name)
        assert cls.__bases__[0].__name__ == parent, name
