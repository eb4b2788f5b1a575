"""The operator console: an opt-in blueprint of read-only screens and one action (replay).

``Decentro(app, operator=lambda: current_user.is_admin)`` mounts it at
``DECENTRO_CONSOLE_PREFIX`` (``/decentro/console``); without ``operator`` nothing is mounted.
Every request asks ``operator()`` first: anything but ``True`` (an exception included) answers
the same 404 as a page that does not exist, so a visitor learns nothing, not even that the
console is there.

What the screens show, and what they never do:

* payments with their statuses and timelines (the operation record's times and the audit rows
  of its reference id), stored callbacks with their states and a replay button, the outcome
  events' deliveries (the outbox) with a replay button, the audit chain's verification and
  head, consent records, and a plot of payments by status over time;
* every list is a keyset page by row id (newest first, ``?before=<id>``), so page 1,000 costs
  what page 1 does;
* nothing sealed is opened into a page: no request, result or callback body, no consent IP or
  user agent (only whether one is stored); audit subjects are masked when written, and user
  ids (the host app's, which may be e-mail addresses) are masked here.

The replay forms are protected against cross-site requests by a per-session token (a random value
in the signed Flask session, compared in constant time): one form needs no extra dependency,
and a global CSRF extension (Flask-WTF's ``CSRFProtect``) would also guard, and break, the JSON
API and Decentro's callback route. The pages send a strict Content-Security-Policy (no script
at all, styles from the console's own static file) and ``Cache-Control: no-store``. When the
database cannot be read (:class:`~decentro_core.errors.StoreError`) a page answers 503 with the
console's own "database unavailable" page and ``Retry-After``, logging one WARNING line (the
error's code and its cause's class), no traceback.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from decentro_core.errors import StoreError
from decentro_core.operations.payments import PAYMENT_OPERATION
from decentro_core.ports import EventState, OperationRecord, WebhookState

from .state import DecentroState

__all__ = ["PLOT_LIMIT", "create_console_blueprint", "mask_actor", "mask_user_id", "status_plot"]

log = logging.getLogger("flask_decentro")

CSRF_SESSION_KEY = "decentro_console_csrf"
PLOT_LIMIT = 2000
"""The plot reads at most this many of the newest payments (bounded work per page view)."""
WEBHOOK_STATES: tuple[WebhookState, ...] = ("received", "processed", "failed")
EVENT_STATES: tuple[EventState, ...] = ("pending", "retrying", "delivered", "dead")
STATUS_COLOURS = {"SUCCESS": "#2e7d32", "PENDING": "#f9a825", "FAILURE": "#c62828", "EXPIRED": "#6d4c41"}
OTHER_COLOUR = "#607d8b"
MIN_SLOTS_HOURLY, MIN_SLOTS_DAILY = 24, 14
LATEST = 5  # payments listed under the overview's plot
RETRY_AFTER_SECONDS = 30  # a database outage's page asks the browser to come back, not hammer
_CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")


def create_console_blueprint(state: DecentroState) -> Blueprint:
    """The console's blueprint for ``state`` (whose ``operator`` is set)."""
    operator = state.operator
    if operator is None:
        raise ValueError("the console needs Decentro(operator=...)")
    page_size = state.options.console_page_size
    records = state.service.ports.records
    consents = state.service.ports.consents
    audit = state.service.ports.audit
    bp = Blueprint("decentro_console", __name__, template_folder="templates",
                   static_folder="static/decentro_console", static_url_path="/static")

    @bp.before_request
    def only_operators() -> None:
        if not _allowed(operator):
            abort(404)

    @bp.after_request
    def private(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @bp.errorhandler(StoreError)
    def unavailable(exc: StoreError) -> ResponseReturnValue:
        # One line, the error's code and its cause's class only: a driver's message can quote
        # a row, and its traceback says nothing an operator needs to act on.
        log.warning("Decentro console: database unavailable (%s, %s); answered 503", exc.code,
                    type(exc.__cause__).__name__ if exc.__cause__ else type(exc).__name__)
        page = render_template("decentro_console/unavailable.html")
        return page, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}

    @bp.context_processor
    def common() -> dict[str, Any]:
        return {"csrf_token": _csrf_token, "mask_user_id": mask_user_id, "mask_actor": mask_actor,
                "mock": state.settings.use_mocks}

    @bp.get("/")
    def overview() -> str:
        recent = [r for _, r in records.operations_page(limit=PLOT_LIMIT, operation=PAYMENT_OPERATION)]
        failed = records.webhook_events_page(limit=1, state="failed")
        dead = records.outbox.events(state="dead", limit=1)
        return render_template("decentro_console/overview.html", plot=status_plot(recent), latest=recent[:LATEST],
                               counts=Counter(r.status for r in recent), sampled=len(recent),
                               plot_limit=PLOT_LIMIT, head=audit.head(), has_failed=bool(failed),
                               has_dead=bool(dead))

    @bp.get("/payments")
    def payments() -> str:
        rows = records.operations_page(before=_before(), limit=page_size, operation=PAYMENT_OPERATION)
        return render_template("decentro_console/payments.html", rows=rows,
                               next_before=_next([row[0] for row in rows], page_size))

    @bp.get("/payments/<reference_id>")
    def payment(reference_id: str) -> str:
        record = records.get_operation(reference_id) if len(reference_id) <= 255 else None
        if record is None or record.operation != PAYMENT_OPERATION:
            abort(404)
        return render_template("decentro_console/payment.html", record=record,
                               trail=records.audit_trail(reference_id))

    @bp.get("/callbacks")
    def callbacks() -> str:
        chosen = request.args.get("state") or None
        if chosen is not None and chosen not in WEBHOOK_STATES:
            abort(400)
        rows = records.webhook_events_page(before=_before(), limit=page_size, state=chosen)
        return render_template("decentro_console/callbacks.html", rows=rows, state=chosen, states=WEBHOOK_STATES,
                               next_before=_next([row[0] for row in rows], page_size))

    @bp.post("/callbacks/<path:dedupe_key>/replay")
    def replay(dedupe_key: str) -> ResponseReturnValue:
        _check_csrf()
        try:
            outcome = state.webhooks.replay(dedupe_key)
        except KeyError:
            abort(404)
        except StoreError:  # sealed under a key this process no longer has
            flash(f"Callback {dedupe_key} cannot be opened with the configured encryption keys.", "error")
        else:
            log.info("operator console: callback %s replayed: %s", dedupe_key, outcome)
            category = "error" if outcome == "failed" else "ok"
            flash(f"Callback {dedupe_key} replayed: {outcome}.", category)
        back = request.form.get("state")
        return redirect(url_for(".callbacks", state=back if back in WEBHOOK_STATES else None))

    @bp.get("/audit")
    def audit_chain() -> str:
        return render_template("decentro_console/audit.html", result=audit.verify(), head=audit.head())

    @bp.get("/consents")
    def consent_records() -> str:
        rows = consents.consents_page(before=_before(), limit=page_size)
        return render_template("decentro_console/consents.html", rows=rows,
                               next_before=_next([r.id for r in rows], page_size))

    @bp.get("/events")
    def event_deliveries() -> str:
        """The outcome events' outbox, oldest first (its keyset runs forwards: ``?after=<id>``)."""
        chosen = request.args.get("state") or None
        if chosen is not None and chosen not in EVENT_STATES:
            abort(400)
        after = _cursor("after") or 0
        rows = records.outbox.events(state=chosen, after_id=after, limit=page_size)
        return render_template("decentro_console/events.html", rows=rows, state=chosen, states=EVENT_STATES,
                               after=after, next_after=_next([e.id for e in rows], page_size))

    @bp.post("/events/<path:key>/replay")
    def replay_event(key: str) -> ResponseReturnValue:
        _check_csrf()
        try:
            report = state.service.events.replay(key)
        except KeyError:
            abort(404)
        except LookupError as exc:  # no handler for its type in this app: nothing was changed
            flash(f"Event {key} not replayed: {exc}.", "error")
        else:
            outcome = report.outcome
            log.info("operator console: outcome event %s replayed: %s", key, outcome)
            flash(f"Event {key} replayed: {outcome}.", "ok" if outcome == "delivered" else "error")
        back = request.form.get("state")
        return redirect(url_for(".event_deliveries", state=back if back in EVENT_STATES else None))

    return bp


def _allowed(operator: Callable[[], bool]) -> bool:
    """The host app's check; only ``True`` lets a visitor in, and a failing check refuses."""
    try:
        return operator() is True
    except Exception:  # noqa: BLE001 - a broken check must refuse, not serve
        log.warning("operator console: the operator check raised; the visitor is refused", exc_info=True)
        return False


def _before() -> int | None:
    return _cursor("before")


def _cursor(name: str) -> int | None:
    raw = request.args.get(name, "")
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        abort(400)
    return int(raw)


def _next(ids: Sequence[int | None], page_size: int) -> int | None:
    """The cursor of the next page (the last row's id), when this page of row ids is full."""
    return ids[-1] if len(ids) == page_size else None


def _csrf_token() -> str:
    token = session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = session[CSRF_SESSION_KEY] = secrets.token_urlsafe(32)
    return token


def _check_csrf() -> None:
    expected = session.get(CSRF_SESSION_KEY)
    given = request.form.get("csrf_token", "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), given.encode()):
        abort(400, "The form has expired or did not come from this console; reload the page and try again.")


def mask_user_id(user_id: str | None) -> str:
    """The host app's user id, partly hidden (it may be an e-mail address or a phone number)."""
    if not user_id:
        return "-"
    if len(user_id) <= 6:
        return "*" * len(user_id)
    return f"{user_id[:2]}******{user_id[-2:]}"


def mask_actor(actor: str) -> str:
    """An audit actor (``user:<id>``, ``api``, ``decentro-callback``) with the user id masked."""
    kind, sep, user_id = actor.partition(":")
    return f"{kind}:{mask_user_id(user_id)}" if sep else actor


# -- the plot -------------------------------------------------------------------------------


def status_plot(payments: Iterable[OperationRecord], *, width: int = 720, height: int = 220) -> Markup:
    """Payments by status over time, as an inline SVG of stacked bars (one bar per hour when the
    payments span less than two days, else per day). Accessible: a title, a description with
    the totals, and a text legend."""
    chosen = list(payments)
    if not chosen:
        return Markup('<p class="empty">No payments yet.</p>')
    first = min(r.created_at for r in chosen)
    last = max(r.created_at for r in chosen)
    hourly = last - first < timedelta(days=2)
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    # At least a day of hours (or two weeks of days), ending with the newest payment's slot.
    newest = _floor(last, hourly)
    count = max(int((newest - _floor(first, hourly)) / step) + 1, MIN_SLOTS_HOURLY if hourly else MIN_SLOTS_DAILY)
    start = newest - (count - 1) * step
    buckets: dict[int, Counter[str]] = {}
    for record in chosen:
        index = int((record.created_at - start) / step)
        buckets.setdefault(index, Counter())[record.status] += 1
    order = list(STATUS_COLOURS)
    statuses = sorted({r.status for r in chosen}, key=lambda s: (order.index(s) if s in order else len(order), s))
    tallest = max(sum(c.values()) for c in buckets.values())
    left, bottom, top = 40, 30, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    bar_w = plot_w / count
    parts = [
        f'<svg class="plot" role="img" aria-labelledby="plot-title plot-desc" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">',
        '<title id="plot-title">Payments by status over time</title>',
        f'<desc id="plot-desc">{escape(_describe(chosen, statuses, step))}</desc>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 10}" y2="{top + plot_h}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end" class="axis">{tallest}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" class="axis">0</text>',
    ]
    for index, counts in sorted(buckets.items()):
        y: float = top + plot_h
        x = left + index * bar_w + bar_w * 0.1
        for status in statuses:
            n = counts.get(status, 0)
            if not n:
                continue
            h = plot_h * n / tallest
            y -= h
            label = f"{_label(start + index * step, hourly)}: {n} {status}"
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bar_w * 0.8, 1):.1f}" height="{h:.1f}" '
                         f'fill="{STATUS_COLOURS.get(status, OTHER_COLOUR)}"><title>{escape(label)}</title></rect>')
    ticks = ((0, left, "start"), (count // 2, left + (count // 2 + 0.5) * bar_w, "middle"),
             (count - 1, width - 10, "end"))  # the outer labels stay inside the picture
    for index, x, anchor in ticks:
        parts.append(f'<text x="{x:.1f}" y="{height - 10}" text-anchor="{anchor}" class="axis">'
                     f'{escape(_label(start + index * step, hourly))}</text>')
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch {_swatch(s)}"></span>{escape(s)}</li>'
        for s in statuses
    )
    return Markup("".join(parts) + f'<ul class="legend">{legend}</ul>')


def _swatch(status: str) -> str:
    """The legend's CSS class (the CSP allows no inline style)."""
    return f"s-{status.lower()}" if status in STATUS_COLOURS else "s-other"


def _floor(moment: datetime, hourly: bool) -> datetime:
    moment = moment.astimezone(timezone.utc)
    return moment.replace(minute=0, second=0, microsecond=0) if hourly else moment.replace(
        hour=0, minute=0, second=0, microsecond=0)


def _label(moment: datetime, hourly: bool) -> str:
    return moment.strftime("%d %b %H:00") if hourly else moment.strftime("%d %b")


def _describe(payments: list[OperationRecord], statuses: list[str], step: timedelta) -> str:
    totals = Counter(r.status for r in payments)
    per = "hour" if step == timedelta(hours=1) else "day"
    return f"{len(payments)} payments by {per}: " + ", ".join(f"{totals[s]} {s}" for s in statuses)
