"""Import this library, its adapters and their dependencies once, in gunicorn's master.

Without ``--preload``, a worker a reload (HUP) starts imports everything before it serves, and
gunicorn stops the old workers as soon as it has started the new ones: on a busy two-core
machine that left 2.7-5.2 s without any answer per reload (``python -m bench.deployfault
--only hup``, docs/benchmarks.md). Imported in the master, these modules are inherited by
every worker forked later; the worker still imports the host application and runs
``Decentro(app)`` itself, so a HUP loads the application's new code, and every connection is
opened after the fork, in the worker. Upgrading this library or a dependency needs a restart of
the master (or gunicorn's USR2 upgrade), since a HUP keeps what the master has imported. Call it
from gunicorn's configuration file (docs/deployment.md)::

    # gunicorn.conf.py
    from flask_decentro.preload import preload_libraries
    preload_libraries()

Importing opens nothing and starts no thread (checked by the tests).
"""

from __future__ import annotations

import importlib

__all__ = ["PRELOADED", "preload_libraries"]

PRELOADED = (
    "flask", "werkzeug", "marshmallow", "flask_limiter", "limits", "tenacity", "requests",
    "decentro_core", "decentro_core.async_service", "flask_decentro.extension", "flask_decentro.cli",
    "decentro_adapters.bootstrap", "decentro_adapters.gateway.live", "decentro_adapters.vault.fernet",
    "decentro_adapters.sql.stores", "decentro_adapters.sql.audit", "decentro_adapters.sql.migrations",
    "decentro_adapters.cache.redis_cache", "decentro_adapters.aadhaar.offline",
)
"""What a worker of a live deployment imports; an optional one not installed is skipped."""


def preload_libraries(names: tuple[str, ...] = PRELOADED) -> list[str]:
    """Import ``names`` (those installed), and return the ones imported."""
    imported = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional extra not installed: the worker goes without it, as before
            continue
        imported.append(name)
    return imported
