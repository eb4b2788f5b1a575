"""The built wheel ships exactly our four packages (the sandbox a package of its own), UIDAI's pinned keys and py.typed; no
tests, no example app, and nothing named ``adapters`` to shadow another distribution."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGES = ("decentro_core", "decentro_adapters", "decentro_sandbox", "flask_decentro")
NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "instance", "*.egg-info", "__pycache__",
                                    ".pytest_cache", ".mypy_cache", "bench")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    source = tmp_path_factory.mktemp("source") / "flask-decentro"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)  # building writes build/ next to the sources
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)],
        check=True, capture_output=True, timeout=300,
    )
    (path,) = out.glob("flask_decentro-*.whl")
    with zipfile.ZipFile(path) as archive:
        yield archive


def test_the_wheel_holds_only_our_four_packages(wheel):
    roots = {name.split("/")[0] for name in wheel.namelist() if not name.split("/")[0].endswith(".dist-info")}
    assert roots == {"decentro_core", "decentro_adapters", "decentro_sandbox", "flask_decentro"}


def test_the_wheel_ships_uidai_keys_and_type_information(wheel):
    names = set(wheel.namelist())
    keys = {name.rsplit("/", 1)[-1] for name in names if name.startswith("decentro_adapters/aadhaar/uidai/")}
    assert keys == {"uidai_offline_publickey_26022021.cer", "uidai_offline_2024-2026_ds05.pub.pem",
                    "uidai_offline_2026-2029_ds06.pub.pem"}
    assert {f"{pkg}/py.typed" for pkg in PACKAGES} <= names


def test_the_wheel_ships_every_source_module(wheel):
    """``packages = find:`` only finds folders with an ``__init__.py``: a module outside one is lost."""
    names = set(wheel.namelist())
    sources = {str(path.relative_to(ROOT)) for top in PACKAGES
               for path in (ROOT / top).rglob("*.py") if "__pycache__" not in path.parts}
    assert sources - names == set()


def test_the_wheel_declares_the_flask_cli_and_the_sandbox_command(wheel):
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    text = wheel.read(name).decode()
    assert "decentro = flask_decentro.cli:decentro_cli" in text
    assert "decentro-sandbox = decentro_sandbox.sandbox.__main__:main" in text


def _metadata(wheel: zipfile.ZipFile) -> str:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return wheel.read(name).decode()


def test_the_wheel_ships_the_mit_license_it_declares(wheel):
    licenses = [n for n in wheel.namelist() if ".dist-info/" in n and n.rsplit("/", 1)[-1] == "LICENSE"]
    assert len(licenses) == 1, wheel.namelist()
    text = wheel.read(licenses[0]).decode()
    assert text.startswith("MIT License") and "Copyright (c) 2026 Flask-Decentro contributors" in text
    metadata = _metadata(wheel)
    assert "License-File: LICENSE" in metadata
    # An SPDX expression, not the deprecated trove classifier (PEP 639)
    assert "License-Expression: MIT" in metadata.splitlines()
    assert not any(line.startswith("Classifier: License ::") for line in metadata.splitlines())


def test_the_metadata_names_every_python_tox_runs_and_the_project_urls(wheel):
    metadata = _metadata(wheel)
    classifiers = {line.removeprefix("Classifier: ") for line in metadata.splitlines()
                   if line.startswith("Classifier: ")}
    tox = (ROOT / "tox.ini").read_text()
    pythons = {f"Programming Language :: Python :: 3.{env[3:]}" for env in ("py311", "py312", "py313") if env in tox}
    assert pythons and pythons <= classifiers
    assert {"Framework :: Flask", "Typing :: Typed",
            "Topic :: Office/Business :: Financial", "Intended Audience :: Developers",
            "Operating System :: OS Independent", "Development Status :: 4 - Beta"} <= classifiers
    urls = {line.removeprefix("Project-URL: ").split(", ", 1)[0] for line in metadata.splitlines()
            if line.startswith("Project-URL: ")}
    assert {"Documentation", "Source", "Issues"} <= urls


def test_the_wheel_ships_the_operator_consoles_templates_and_style(wheel):
    names = set(wheel.namelist())
    pages = {"base", "_pager", "overview", "payments", "payment", "callbacks", "events", "audit", "consents"}
    assert {f"flask_decentro/templates/decentro_console/{page}.html" for page in pages} <= names
    assert "flask_decentro/static/decentro_console/console.css" in names


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> tarfile.TarFile:
    source = tmp_path_factory.mktemp("sdist-source") / "flask-decentro"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "dist", "instance",
                                                                "*.egg-info", "__pycache__", ".pytest_cache",
                                                                ".mypy_cache"))
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "-o", str(out), str(source)],
                   check=True, capture_output=True, timeout=300)
    (path,) = out.glob("flask_decentro-*.tar.gz")
    with tarfile.open(path) as archive:
        yield archive


def test_the_sdist_ships_the_tests_and_what_they_read(sdist):
    """Distributors run the suite from the sdist: the tests, their helpers and the docs they check."""
    names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    tests = {str(path.relative_to(ROOT)) for path in (ROOT / "tests").rglob("*.py") if "__pycache__" not in path.parts}
    assert tests and tests - names == set()
    assert {"tox.ini", "CHANGELOG.md", "SECURITY.md", "LICENSE", "docs/openapi.json"} <= names
    assert not any(part in {".venv", "instance", "__pycache__"} for name in names for part in name.split("/"))


def test_the_packages_and_the_metadata_carry_one_version(wheel):
    import decentro_core
    import flask_decentro

    version = next(line.removeprefix("Version: ") for line in _metadata(wheel).splitlines()
                   if line.startswith("Version: "))
    assert decentro_core.__version__ == flask_decentro.__version__ == version
