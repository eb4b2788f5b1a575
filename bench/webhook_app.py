"""A tiny Flask app for the webhook benchmark and the webhook fault run.

``gunicorn 'bench.webhook_app:create_app()'`` or ``flask --app bench.webhook_app:create_app``.
It mounts ``Decentro(app)`` from the ``DECENTRO_*`` environment (callbacks at
``/api/webhooks/decentro``) and a bare endpoint, ``POST /bare``, that reads the body and
answers 200, for comparison on the same server. ``GET /health`` answers 200.

``BENCH_WEBHOOK_SLEEP`` (seconds): processing of every callback first sleeps this long,
after the event is stored and before anything is applied, so a test can kill the process
while events are ``received``.

``BENCH_READY_DIR`` (set by ``bench.servers.gunicorn``): once the app is built (its stores
opened, the schema checked), an empty file named by the process id is left there, so the
caller can wait until every worker is ready rather than only the first.
"""

from __future__ import annotations

import os
import time
from typing import Any

from flask import Flask, Response, request

from flask_decentro import Decentro

__all__ = ["create_app"]


def _slow_processing(app: Flask, seconds: float) -> None:
    webhooks = app.extensions["decentro"].webhooks
    apply = webhooks.apply

    def slow_apply(callback: Any) -> str:
        time.sleep(seconds)
        return apply(callback)  # type: ignore[no-any-return]

    webhooks.apply = slow_apply


def create_app() -> Flask:
    app = Flask("decentro_bench")
    Decentro(app)
    sleep = float(os.environ.get("BENCH_WEBHOOK_SLEEP") or 0)
    if sleep > 0:
        _slow_processing(app, sleep)

    @app.post("/bare")
    def bare() -> Response:
        request.get_data()
        return Response('{"response_code": "CB_S00000"}', status=200, mimetype="application/json")

    @app.get("/health")
    def health() -> Response:
        return Response("ok", status=200, mimetype="text/plain")

    _report_ready()
    return app


def _report_ready() -> None:
    folder = os.environ.get("BENCH_READY_DIR")
    if folder:
        with open(os.path.join(folder, str(os.getpid())), "w", encoding="ascii"):
            pass
