"""The stand-in Decentro is its own package: production code reaches it only through mock mode.

``decentro_sandbox`` is a test double shipped in the same distribution. Nothing in the core may
import it, and of the adapters only the mock gateway does, so the line between production code
and the double shows in imports (and a live deployment never loads it).
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import decentro_adapters
import decentro_core
import flask_decentro

MOCK_GATEWAY = "gateway/mock.py"


def _modules_importing_the_sandbox(package: pathlib.Path) -> set[str]:
    found = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            if any(name.split(".")[0] == "decentro_sandbox" for name in names):
                found.add(str(path.relative_to(package)))
    return found


def test_no_core_or_flask_module_imports_the_sandbox():
    for package in (decentro_core, flask_decentro):
        assert _modules_importing_the_sandbox(pathlib.Path(package.__file__).parent) == set()


def test_of_the_adapters_only_the_mock_gateway_imports_the_sandbox():
    assert _modules_importing_the_sandbox(pathlib.Path(decentro_adapters.__file__).parent) == {MOCK_GATEWAY}


def test_the_walker_would_notice_an_import_of_the_sandbox(tmp_path):
    (tmp_path / "bad.py").write_text("from decentro_sandbox.core import DecentroEmulator\n")
    (tmp_path / "also.py").write_text("import decentro_sandbox.sandbox as s\n")
    assert _modules_importing_the_sandbox(tmp_path) == {"bad.py", "also.py"}


def test_a_live_service_never_loads_the_sandbox(tmp_path):
    code = (
        "import sys\n"
        "from cryptography.fernet import Fernet\n"
        "from decentro_adapters.bootstrap import build\n"
        "from decentro_core import Settings\n"
        "settings = Settings(use_mocks=False, client_id='cid', client_secret='cs', api_key='key',"
        " encryption_keys=(Fernet.generate_key().decode(),), audit_keys=('a' * 43,),"
        f" database_url={'sqlite:///' + str(tmp_path / 'live.db')!r})\n"
        "with build(settings):\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'decentro_sandbox'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
