"""A small demo of Flask-Decentro: ``flask --app example_app run``.

Mock mode on the embedded defaults: the in-process emulator instead of Decentro, SQLite in
the instance folder, an in-memory cache, an ephemeral encryption key and the public demo
webhook secret (both logged loudly). The page at ``/`` verifies a PAN and opens a payment.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask, render_template

from flask_decentro import Decentro

__all__ = ["create_app"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the demo app; ``test_config`` overrides ``app.config`` (tests, e2e servers)."""
    app = Flask(__name__, instance_relative_config=True)
    os.makedirs(app.instance_path, exist_ok=True)
    if not (os.environ.get("DECENTRO_DATABASE_URL") or os.environ.get("DATABASE_URL")):
        # app.config beats the environment, so the demo default only applies when neither is set.
        database = os.path.join(app.instance_path, "decentro.sqlite3")
        app.config.from_mapping(DECENTRO_DATABASE_URL=f"sqlite:///{database}")
    app.config.from_prefixed_env("FLASK")
    if test_config:
        app.config.update(test_config)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    Decentro(app)

    @app.get("/")
    def index() -> str:
        state = app.extensions["decentro"]
        return render_template("index.html", prefix=state.options.url_prefix, mock=state.settings.use_mocks)

    return app
