"""Every package type-checks under mypy --strict (setup.cfg [mypy]); the wheel ships py.typed."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_every_package_passes_mypy_strict(tmp_path):
    pytest.importorskip("mypy", reason="mypy is part of the dev extra")
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path), "--config-file", str(ROOT / "setup.cfg"),
         str(ROOT / "decentro_core"), str(ROOT / "flask_decentro"), str(ROOT / "decentro_adapters")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:]


def test_every_typed_package_ships_py_typed():
    assert all((ROOT / pkg / "py.typed").is_file() for pkg in ("decentro_core", "decentro_adapters", "flask_decentro"))
