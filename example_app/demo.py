"""The demo's own routes around the library's API: the QR code, a payment's timeline, the
"simulate Decentro's callback" control (mock mode) and a demo-only operator sign-in.

None of this is part of the library: your app has its own pages and its own login. What it
shows is how little a front end needs beyond the JSON routes under ``/api``.
"""

from __future__ import annotations

import io
import json
import logging
import threading
from typing import Any

import segno
from flask import Blueprint, Flask, Response, abort, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue

from decentro_core.errors import DuplicateKey
from decentro_core.operations.payments import PAYMENT_OPERATION
from decentro_core.validation import loads_json
from decentro_core.webhooks import sign_body
from flask_decentro import get_state

__all__ = ["create_demo_blueprint", "install_callback_delivery", "is_demo_operator"]

log = logging.getLogger("example_app")

OPERATOR_SESSION_KEY = "demo_operator"
UPI_URI_MAX = 512
STATUSES = ("SUCCESS", "FAILURE")
_PAYMENT_STATUSES = frozenset({"PENDING", "SUCCESS", "FAILURE", "EXPIRED"})


def is_demo_operator() -> bool:
    """The demo's operator check (``Decentro(operator=...)``): a flag the demo sign-in sets.
    Your app asks its own user model instead (``current_user.is_admin``)."""
    return session.get(OPERATOR_SESSION_KEY) is True


def create_demo_blueprint(*, live: bool) -> Blueprint:
    bp = Blueprint("demo", __name__, url_prefix="/demo")

    @bp.get("/qr.svg")
    def qr_code() -> Response:
        """The ``upi://pay`` URI of a payment as a QR code, drawn here (no third-party service)."""
        uri = request.args.get("uri", "")
        if not uri.startswith("upi://pay?") or len(uri) > UPI_URI_MAX:
            abort(400)
        svg = io.BytesIO()
        segno.make(uri, error="m").save(svg, kind="svg", scale=6, border=2, dark="#14213d",
                                        title="UPI payment QR code")
        response = Response(svg.getvalue(), mimetype="image/svg+xml")
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/payments/<reference_id>/timeline")
    def timeline(reference_id: str) -> ResponseReturnValue:
        """What happened to one payment: the record's status and its audit rows (masked)."""
        records = get_state().service.ports.records
        record = records.get_operation(reference_id) if len(reference_id) <= 128 else None
        owner_only = live and (record is None or record.user_id != session.get("user_id"))
        if record is None or record.operation != PAYMENT_OPERATION or owner_only:
            return jsonify({"status": "FAILURE", "error": {"code": "NOT_FOUND", "message": "No such payment"}}), 404
        events = [{"at": record.created_at.isoformat(), "label": "Payment opened", "outcome": "PENDING",
                   "kind": "opened"}]
        known = "PENDING"
        for event in records.audit_trail(reference_id):
            callback = event.action.endswith(".callback")
            # A callback confirming what a status read already settled is audited "unchanged":
            # show the status it confirmed.
            outcome = known if callback and event.outcome == "unchanged" else event.outcome
            known = outcome if outcome in _PAYMENT_STATUSES else known
            events.append({"at": event.occurred_at.isoformat(),
                           "label": "Decentro's callback received" if callback else "Decentro answered",
                           "outcome": outcome, "kind": "callback" if callback else "answer"})
        return jsonify({"status": record.status, "reference_id": reference_id, "events": events})

    if not live:
        @bp.post("/simulate-callback")
        def simulate_callback() -> ResponseReturnValue:
            """Mock mode: settle the payment in the emulator, which then sends its signed callback."""
            body = json_object()
            reference_id, status = body.get("reference_id"), body.get("status")
            if not isinstance(reference_id, str) or status not in STATUSES:
                return _refused(400, "VALIDATION_ERROR", 'Send {"reference_id": ..., "status": "SUCCESS" or "FAILURE"}')
            state = get_state()
            record = state.service.ports.records.get_operation(reference_id) if len(reference_id) <= 128 else None
            emulator = getattr(state.service.ports.gateway, "emulator", None)
            if record is None or record.operation != PAYMENT_OPERATION or not record.operation_id or emulator is None:
                return _refused(404, "NOT_FOUND", "No such payment")
            try:
                emulator.settle_payment(record.operation_id, status)
            except (KeyError, ValueError):
                return _refused(409, "ALREADY_SETTLED", "This payment is no longer pending at Decentro")
            return jsonify({"status": "SUCCESS", "data": {"queued": status}}), 202

        @bp.get("/operator")
        def operator_page() -> str:
            return render_template("operator.html", signed_in=is_demo_operator())

        @bp.post("/operator/sign-in")
        def operator_sign_in() -> ResponseReturnValue:
            session[OPERATOR_SESSION_KEY] = True
            return redirect(url_for("decentro_console.overview"))

        @bp.post("/operator/sign-out")
        def operator_sign_out() -> ResponseReturnValue:
            session.pop(OPERATOR_SESSION_KEY, None)
            return redirect(url_for("demo.operator_page"))

    return bp


def json_object() -> dict[str, Any]:
    """The request's JSON object, ``{}`` when it is none; a key given twice raises
    :class:`~decentro_core.errors.DuplicateKey`, as on the library's routes (answered 400)."""
    if not request.is_json:
        return {}
    try:
        body = loads_json(request.get_data(cache=False))
    except (ValueError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def refuse_duplicate_key(exc: DuplicateKey) -> ResponseReturnValue:
    return _refused(400, exc.code, exc.message)


def _refused(status: int, code: str, message: str) -> ResponseReturnValue:
    return jsonify({"status": "FAILURE", "error": {"code": code, "message": message}}), status


def install_callback_delivery(app: Flask) -> None:
    """Mock mode: when the emulator settles a payment, post its callback, signed as Decentro
    would, to this app's own webhook route, from another thread (Decentro calls back later,
    not inside our request)."""
    state = get_state(app)
    emulator = getattr(state.service.ports.gateway, "emulator", None)
    if emulator is None:
        return
    processor = state.webhooks
    path = (state.options.url_prefix or "") + "/webhooks/decentro"

    def deliver(payload: dict[str, Any]) -> None:
        raw = json.dumps(payload).encode()
        headers = {}
        if processor.secrets:
            headers[processor.signature_header] = sign_body(raw, processor.secrets[0])
        if processor.credential:
            headers[processor.credential_header] = processor.credential
        answer = app.test_client().post(path, data=raw, headers=headers, content_type="application/json",
                                        environ_base={"REMOTE_ADDR": "127.0.0.1"})
        log.info("demo: the emulator's callback was delivered: HTTP %s", answer.status_code)

    def on_terminal(payload: dict[str, Any]) -> None:
        threading.Thread(target=deliver, args=(payload,), name="demo-callback", daemon=True).start()

    emulator.on_terminal = on_terminal
