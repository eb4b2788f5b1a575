"""The app ``test_events_worker.py`` runs ``flask decentro worker`` on: mock mode, the test's
PostgreSQL database, events left to workers, and a handler that appends each event it gets to
the file named by ``EVENTS_LOG`` (one line: key and the worker's pid)."""

from __future__ import annotations

import os

from flask import Flask

from decentro_core.ports import OutcomeEvent
from flask_decentro import Decentro


def create_app() -> Flask:
    app = Flask("events_worker_app")
    decentro = Decentro(app)
    log_path = os.environ["EVENTS_LOG"]

    def record(event: OutcomeEvent) -> None:
        with open(log_path, "a", encoding="utf-8") as log:  # one short write per line: appends do not interleave
            log.write(f"{event.key} {os.getpid()}\n")

    with app.app_context():
        decentro.on("payment.*", record, name="tests.worker_app.record")
    return app
