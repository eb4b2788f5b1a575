"""The app the deployment fault run serves: ``gunicorn 'bench.deploy.app:create_app()'``.

A host application as the Flask guide writes one: ``Decentro(app, identity=...)`` in live mode,
configured from the ``DECENTRO_*`` environment (PostgreSQL, Redis cache, Redis rate-limit
storage, the sandbox as Decentro). The signed-in user is the ``X-Bench-User`` header: the run
has no login, so the header stands in for the host app's session. Never do this in production:
there, ``identity`` reads the session (``flask_login.current_user``).

For the run's evidence only, a ``StoreError`` a route answers 503 with is logged with where it
came from (the adapter function and the exception types: never a message from a driver).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, request

from decentro_core.errors import StoreError
from flask_decentro import Decentro

__all__ = ["USER_HEADER", "create_app"]

USER_HEADER = "X-Bench-User"
WATCHED = ("verify_pan", "initiate_payment", "get_payment_status")
log = logging.getLogger("bench.deploy")


def _signed_in_user() -> str | None:
    return request.headers.get(USER_HEADER) or None


def _origin(exc: BaseException) -> str:
    """The innermost adapter frame of ``exc``'s cause chain and the chain's exception types."""
    seen: BaseException | None
    types: list[str] = []
    where, seen = "?", exc
    while seen is not None:
        types.append(type(seen).__name__)
        tb = seen.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if "decentro_adapters" in code.co_filename:
                where = f"{code.co_filename.rsplit('decentro_adapters', 1)[1].lstrip('/')}:{code.co_name}"
            tb = tb.tb_next
        seen = seen.__cause__ or seen.__context__
    return f"{where} ({' <- '.join(types)})"


def _logged(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except StoreError as exc:
            log.warning("bench: %s answered STORE_ERROR from %s", name, _origin(exc))
            raise

    return call


def create_app() -> Flask:
    app = Flask("decentro_deploy_bench")
    Decentro(app, identity=_signed_in_user)
    service = app.extensions["decentro"].service
    for name in WATCHED:
        setattr(service, name, _logged(name, getattr(service, name)))

    @app.get("/health")
    def health() -> Response:
        return Response('{"status": "ok"}', status=200, mimetype="application/json")

    log.warning("bench: app loaded in worker %d", os.getpid())  # the run waits on this line
    return app
