"""The wheel ships every package folder, under names that shadow no other distribution."""

from __future__ import annotations

import configparser
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
IMPORT_NAME = {"adapters": "decentro_adapters"}


def _declared_packages() -> set[str]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    return {line.strip() for line in cfg["options"]["packages"].splitlines() if line.strip()}


def _package_folders() -> set[str]:
    found = set()
    for top in ("decentro_core", "adapters", "flask_decentro"):
        for init in (ROOT / top).rglob("__init__.py"):
            parts = list(init.parent.relative_to(ROOT).parts)
            parts[0] = IMPORT_NAME.get(parts[0], parts[0])
            found.add(".".join(parts))
    return found


def test_every_package_folder_is_declared_in_setup_cfg():
    assert _package_folders() == _declared_packages()


def test_no_declared_package_is_named_adapters_or_ships_tests_or_the_example():
    roots = {name.split(".")[0] for name in _declared_packages()}
    assert roots == {"decentro_core", "decentro_adapters", "flask_decentro"}
