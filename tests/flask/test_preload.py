"""flask_decentro.preload: what gunicorn's master imports so a reload's workers boot at once."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys, threading
from flask_decentro.preload import PRELOADED, preload_libraries
imported = preload_libraries()
missing = [name for name in PRELOADED if name not in imported]
print(threading.active_count(), ",".join(missing), "bench.deploy.app" in sys.modules)
"""


def test_the_library_and_its_adapters_are_imported_without_a_thread_or_the_app() -> None:
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=True)
    threads, missing, app = done.stdout.split(" ")
    assert (int(threads), missing, app.strip()) == (1, "", "False"), done.stdout


def test_an_optional_module_that_is_not_installed_is_skipped() -> None:
    from flask_decentro.preload import preload_libraries

    assert preload_libraries(("json", "no_such_module_for_decentro")) == ["json"]
