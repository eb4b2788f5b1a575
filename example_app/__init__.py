"""A small demo of Flask-Decentro: ``flask --app example_app run``.

Mock mode (the default) runs on the embedded defaults: the in-process emulator instead of
Decentro, SQLite in the instance folder, an in-memory cache, an ephemeral encryption key and
the public demo webhook secret (each logged once as a WARNING). The routes take ``user_id``
from the request body there, as the README's curl walk-through does.

Live mode (``USE_MOCKS=false`` and the variables of the README's "Going live") needs to know
who is signed in: ``Decentro(app, identity=...)``. This demo reads the user from the Flask
session, set by ``POST /demo/sign-in`` (needs ``FLASK_SECRET_KEY``). That sign-in believes
whatever id it is given: it stands in for your real login and is for demos only.

The page at ``/`` walks a customer through consent, PAN, bank account, Aadhaar (OTP or the
offline file) and a UPI payment with its QR code and a live timeline; in mock mode a button
plays Decentro's callback. Mock mode also mounts the operator console
(``Decentro(operator=...)``) behind a demo-only operator sign-in at ``/demo/operator``.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from flask import Flask, jsonify, render_template, request, session
from flask.typing import ResponseReturnValue

from decentro_core.errors import ConfigurationError, DuplicateKey
from decentro_core.settings import Settings
from flask_decentro import Decentro
from flask_decentro.config import merged_mapping

from .demo import create_demo_blueprint, install_callback_delivery, is_demo_operator, json_object, refuse_duplicate_key

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
    live = not Settings.from_mapping(merged_mapping({}, app.config)).use_mocks
    if live:
        Decentro(app, identity=lambda: session.get("user_id"))  # names any missing variable first
        _add_demo_sign_in(app)
    else:
        if not app.config.get("SECRET_KEY"):  # sessions of this process only: a demo
            app.config["SECRET_KEY"] = secrets.token_hex(32)
        Decentro(app, operator=is_demo_operator)  # demo: the routes read user_id from the body
        install_callback_delivery(app)
    app.register_blueprint(create_demo_blueprint(live=live))
    app.register_error_handler(DuplicateKey, refuse_duplicate_key)  # the demo's own JSON routes

    @app.get("/")
    def index() -> str:
        state = app.extensions["decentro"]
        return render_template("index.html", prefix=state.options.url_prefix, mock=state.settings.use_mocks,
                               user=session.get("user_id") if live else None)

    return app


def _add_demo_sign_in(app: Flask) -> None:
    """``POST /demo/sign-in {"user_id": ...}`` puts the id in the session; ``/demo/sign-out``
    clears it. Your app replaces both with its real login (and ``identity`` with its user)."""
    if not app.config.get("SECRET_KEY"):
        app.extensions["decentro"].close()
        raise ConfigurationError("The demo in live mode keeps the signed-in user in a session: set FLASK_SECRET_KEY")

    @app.post("/demo/sign-in")
    def demo_sign_in() -> ResponseReturnValue:
        body = json_object()
        user_id = body.get("user_id")
        if not isinstance(user_id, str) or not 0 < len(user_id) <= 64:
            return jsonify({"status": "FAILURE", "error": {"code": "VALIDATION_ERROR",
                                                           "message": "Send {\"user_id\": \"...\"}"}}), 400
        session["user_id"] = user_id
        return jsonify({"status": "SUCCESS", "data": {"user_id": user_id}})

    @app.post("/demo/sign-out")
    def demo_sign_out() -> ResponseReturnValue:
        session.pop("user_id", None)
        return jsonify({"status": "SUCCESS", "data": {}})
