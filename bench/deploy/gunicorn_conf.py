"""gunicorn's configuration file for the deployment fault run (``-c python:bench.deploy.gunicorn_conf``),
the one docs/deployment.md recommends: this library, its adapters and their dependencies are
imported once, in the master (:mod:`flask_decentro.preload`), so a worker a reload starts
imports only the app (``bench/deploy/app.py``) before it serves.
"""

from __future__ import annotations

from flask_decentro.preload import preload_libraries

preload_libraries()
