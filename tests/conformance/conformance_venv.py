"""Build (once, then reuse) a virtual environment per official Decentro SDK, from PyPI.

The two SDKs cannot share one environment (the KYC SDK pins ``certifi==2022.12.7`` and
``typing_extensions==4.3.0``, the collections SDK needs ``certifi>=2023.7.22`` and pydantic 2),
and neither may touch the project's own environment. Their packaging bugs are worked around
here, in the test setup only:

* KYC SDK 4.4.0 does not import on Python 3.11 with its own pin of ``typing_extensions``:
  ``pip install -U 'typing_extensions>=4.12'`` after installing it.
* Collections SDK 1.0.0's wheel lacks ``apis/tags/``: our reconstruction
  (``sdk_patches/collections_tags``) is copied into the installed package.

An environment lives in ``<cache>/<sdk>-<fingerprint>``; the fingerprint covers the Python
version, the pins, the fixes and the patch files, so any change builds a new one. It is built
in a temporary folder and renamed into place when complete, so an interrupted build is never
reused. ``<cache>`` is ``DECENTRO_TEST_CONFORMANCE_DIR`` or pytest's per-user temporary root
(kept across sessions).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import conformance_cases

HERE = Path(__file__).resolve().parent
PATCHES = HERE / "sdk_patches" / "collections_tags"
INSTALL_TIMEOUT = 600


class PackageIndexUnavailable(RuntimeError):
    """pip could not install an SDK (PyPI unreachable, or the release gone)."""


@dataclass(frozen=True)
class SdkEnv:
    name: str
    python: Path


def _fingerprint(name: str) -> str:
    digest = hashlib.sha256(f"{sys.version_info[:3]}|{conformance_cases.KYC_SDK}|{conformance_cases.COLLECTIONS_SDK}|"
                            f"{conformance_cases.KYC_SDK_FIXES}|{name}".encode())
    for path in sorted(PATCHES.glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _python(root: Path) -> Path:
    return root / "bin" / "python"


def _pip(python: Path, *args: str) -> None:
    command = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-8:])
        raise PackageIndexUnavailable(f"pip install {' '.join(args)} failed: {tail}")


def _site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True, timeout=60)
    return Path(out.stdout.strip())


def _install(name: str, python: Path) -> None:
    if name == "kyc":
        _pip(python, conformance_cases.KYC_SDK)
        _pip(python, "-U", *conformance_cases.KYC_SDK_FIXES)
        return
    _pip(python, conformance_cases.COLLECTIONS_SDK)
    tags = _site_packages(python) / "decentro_in_collections_client" / "apis" / "tags"
    if (tags / "collections_api.py").exists():
        return  # a fixed wheel would ship it: keep the SDK's own
    tags.mkdir(parents=True, exist_ok=True)
    for source in PATCHES.glob("*.py"):
        shutil.copyfile(source, tags / source.name)


def _smoke(name: str, python: Path) -> None:
    module = "decentro_in_kyc_client" if name == "kyc" else "decentro_in_collections_client"
    done = subprocess.run([str(python), "-c", f"import {module}; from {module} import Decentro"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"the {name} SDK does not import after our workarounds:\n{done.stderr[-2000:]}")


def sdk_env(name: str, cache: Path) -> SdkEnv:
    """The ready environment for ``name`` (``"kyc"`` or ``"collections"``), built if needed."""
    final = cache / f"{name}-{_fingerprint(name)}"
    if (final / ".ready").exists():
        return SdkEnv(name, _python(final))
    cache.mkdir(parents=True, exist_ok=True)
    work = cache / f".building-{name}-{uuid.uuid4().hex[:8]}"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(work)], check=True, capture_output=True, timeout=300)
        _install(name, _python(work))
        _smoke(name, _python(work))
        (work / ".ready").write_text(f"{conformance_cases.KYC_SDK} {conformance_cases.COLLECTIONS_SDK}\n")
        if final.exists() and not (final / ".ready").exists():
            shutil.rmtree(final, ignore_errors=True)  # left by something else: never trusted
        try:
            work.rename(final)
        except OSError:  # another session finished first: use its environment
            if not (final / ".ready").exists():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return SdkEnv(name, _python(final))
