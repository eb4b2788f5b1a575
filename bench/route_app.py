"""The app the gunicorn + wrk benchmark serves: ``gunicorn 'bench.route_app:create_app()'``.

The extension in live mode (``Decentro(app, identity=...)`` from the ``DECENTRO_*`` environment:
the sandbox as Decentro, PostgreSQL, Redis for the cache and the rate-limit counts) beside bare
Flask routes doing the same work by hand, on the same server:

- ``POST /bare/pan``: parses the JSON body and makes the same upstream call to the same
  sandbox with one ``requests.Session`` (``trust_env=False``), answering its JSON;
- ``POST /bare/webhook``: checks the ``X-Decentro-Signature`` HMAC of the raw body in constant
  time and parses the JSON, answering 200 (401 on a bad signature).

The signed-in user is the ``X-Bench-User`` header (the benchmark has no login). ``GET /health``
answers 200.
"""

from __future__ import annotations

import hmac
import json
import os
import uuid
from typing import Any

import requests
from flask import Flask, Response, jsonify, request

from decentro_core.webhooks import sign_body
from flask_decentro import Decentro

__all__ = ["USER_HEADER", "create_app"]

USER_HEADER = "X-Bench-User"
PAN_PATH = "/kyc/public_registry/validate"
PURPOSE = "Customer identity verification for onboarding (KYC)"


def create_app() -> Flask:
    app = Flask("decentro_route_bench")
    Decentro(app, identity=lambda: request.headers.get(USER_HEADER) or None)
    upstream = os.environ["DECENTRO_API_BASE"].rstrip("/") + PAN_PATH
    secret = os.environ["DECENTRO_WEBHOOK_SECRET"].split()[0]
    headers = {"client_id": os.environ["DECENTRO_CLIENT_ID"], "client_secret": os.environ["DECENTRO_CLIENT_SECRET"],
               "module_secret": os.environ["DECENTRO_API_KEY"], "Accept": "application/json"}
    http = requests.Session()
    http.trust_env = False

    @app.post("/bare/pan")
    def bare_pan() -> Any:
        body = request.get_json()
        upstream_body = {"reference_id": str(uuid.uuid4()), "document_type": "PAN", "id_number": body["pan"],
                         "consent": "Y", "consent_purpose": PURPOSE}
        answer = http.post(upstream, json=upstream_body, headers=headers, timeout=10)
        return jsonify(answer.json())

    @app.post("/bare/webhook")
    def bare_webhook() -> Response:
        raw = request.get_data()
        given = request.headers.get("X-Decentro-Signature", "")
        if not hmac.compare_digest(sign_body(raw, secret).encode(), given.encode()):
            return Response('{"response_code": "CB_E00001"}', status=401, mimetype="application/json")
        json.loads(raw)
        return Response('{"response_code": "CB_S00000"}', status=200, mimetype="application/json")

    @app.get("/health")
    def health() -> Response:
        return Response("ok", status=200, mimetype="text/plain")

    return app
