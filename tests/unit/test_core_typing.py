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
         str(ROOT / "decentro_core"), str(ROOT / "flask_decentro"), str(ROOT / "decentro_adapters"),
         str(ROOT / "decentro_sandbox"),
         str(ROOT / "examples")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:]


def test_every_typed_package_ships_py_typed():
    assert all((ROOT / pkg / "py.typed").is_file() for pkg in ("decentro_core", "decentro_adapters", "decentro_sandbox", "flask_decentro"))


def test_the_awaitable_face_carries_the_blocking_signatures(tmp_path):
    """``await decentro.verify_pan(...)`` with a misspelt keyword is a type error, not a runtime one."""
    pytest.importorskip("mypy", reason="mypy is part of the dev extra")
    snippet = tmp_path / "caller.py"
    snippet.write_text(
        "from decentro_core import DecentroService\n"
        "async def main() -> None:\n"
        "    async with DecentroService() as decentro:\n"
        "        ok: dict[str, object] = await decentro.verify_pan('ABCDE1234F', 'A Name', user_id='u')\n"
        "        await decentro.verify_pan('ABCDE1234F', nmae='A Name')\n"
        "        await decentro.initiate_payment({'amount': 10}, user_id=7)\n"
    )
    out = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
                          str(snippet)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 2, out.stdout
    assert 'Unexpected keyword argument "nmae"' in errors[0] and '"user_id"' in errors[1]
