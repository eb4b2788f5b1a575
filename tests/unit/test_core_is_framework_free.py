"""The core must stay framework-free: no web framework, HTTP client, ORM, cache or crypto driver."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import decentro_core

FORBIDDEN = {
    "flask", "werkzeug", "requests", "urllib3", "peewee", "redis", "cachelib",
    "cryptography", "psycopg2", "lxml", "signxml", "decentro_adapters", "flask_decentro",
    "prometheus_client", "opentelemetry",  # optional extras: adapters behind the Instruments port
}
CORE = pathlib.Path(decentro_core.__file__).parent


def _imported_roots(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


SEAM = "defaults.py"  # the one module that names the composition root (decentro_adapters.bootstrap)


def test_no_core_module_imports_a_forbidden_package_anywhere_in_its_source():
    offenders = {
        str(path.relative_to(CORE)): sorted(_imported_roots(path) & FORBIDDEN)
        for path in CORE.rglob("*.py")
    }
    assert offenders.pop(SEAM) == ["decentro_adapters"]
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_seam_imports_only_the_composition_root_and_only_when_called():
    tree = ast.parse((CORE / SEAM).read_text())
    top_level = {node.module for node in tree.body if isinstance(node, ast.ImportFrom)}
    assert not any(module and module.startswith("decentro_adapters") for module in top_level)
    inside = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
              and node.module and node.module.startswith("decentro_adapters")]
    assert inside == ["decentro_adapters.bootstrap"]


def test_importing_the_whole_core_loads_no_forbidden_module():
    modules = sorted(".".join(p.relative_to(CORE).with_suffix("").parts).removesuffix(".__init__")
                     for p in CORE.rglob("*.py") if p.stem != "__init__" or p.parent != CORE)
    code = (
        "import sys, importlib\n"
        f"for m in {modules!r}: importlib.import_module('decentro_core.' + m)\n"
        f"print(sorted(r for r in {sorted(FORBIDDEN)!r} if r in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_walker_would_notice_a_forbidden_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import requests\nfrom peewee import Model\n")
    assert _imported_roots(bad) & FORBIDDEN == {"requests", "peewee"}


def test_a_service_given_every_port_runs_without_loading_any_adapter_or_driver():
    # DecentroService() with no ports asks decentro_adapters.bootstrap for defaults at run
    # time (the guide's no-argument usage); given its ports, the core needs nothing else.
    code = (
        "import sys\n"
        "from decentro_core import BlockingDecentroService, Settings\n"
        "from decentro_core.memory import *\n"
        "from decentro_core.ports import GatewayResponse\n"
        "class Gateway:\n"
        "    def send(self, request):\n"
        "        return GatewayResponse(200, {'status': 'SUCCESS', 'kycStatus': 'SUCCESS', 'decentroTxnId': 'T',"
        " 'kycResult': {'idStatus': 'VALID', 'name': 'Test Person'}})\n"
        "from decentro_core.ports import Ports\n"
        "service = BlockingDecentroService(Settings(), Ports(gateway=Gateway(), cache=MemoryCache(), vault=MemoryVault(),"
        " audit=MemoryAuditSink(), consents=MemoryConsentStore(), records=MemoryRecordStore(), aadhaar_verifier=object()))\n"
        "assert service.verify_pan('ABCDE1234F')['status'] == 'SUCCESS'\n"
        f"print(sorted(r for r in {sorted(FORBIDDEN)!r} if r in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
