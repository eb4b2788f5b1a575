"""``flask decentro`` commands for the audit chain: verify it, anchor it, re-sign it.

An anchor (the chain's head) kept outside the database is what finds the newest rows, or every
row, deleted: ``verify-audit`` reads the newest one from ``DECENTRO_AUDIT_ANCHOR_URL`` (or
``--anchor``), and without one it warns and, in live mode, exits 3. ``audit-anchor`` verifies
the chain against the newest anchor and writes the next (the worker does it on a schedule).
``migrate-audit-legacy`` (once, after upgrading a database with plain SHA-256 rows) and
``rotate-audit-key`` re-sign every link under the first key of ``DECENTRO_AUDIT_KEYS``, after
verifying the chain as it is, and append an audit row about their own run.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import click
from flask.cli import with_appcontext

from decentro_core.anchors import AnchorRun, AnchorSink, anchor_chain
from decentro_core.audit import AuditKeyring, ResignReport, resign_event
from decentro_core.ports import AuditEvent, AuditHead, AuditVerification

from .state import DecentroState, get_state

__all__ = ["AUDIT_COMMANDS", "anchor_job", "fail_if_broken"]

NO_ANCHOR = ("WARNING: no audit anchor to verify against (set DECENTRO_AUDIT_ANCHOR_URL and run "
             "`flask decentro audit-anchor`, or pass --anchor): deleting the newest audit rows, or all of "
             "them, goes UNNOTICED")
_ANCHOR_OPTION = click.option(
    "--anchor", "anchor_text", default=None, metavar="JSON|@FILE",
    help="A head printed earlier by audit-anchor (or @file holding it), instead of the newest in "
         "DECENTRO_AUDIT_ANCHOR_URL: the chain must still reach it.")


@runtime_checkable
class _Resigning(Protocol):
    """An audit sink that can re-sign its chain (the memory and the SQL sinks)."""

    def resign(self, *, anchor: AuditHead | None = None, accept_legacy: bool = False,
               note: Callable[[int], AuditEvent] | None = None) -> ResignReport: ...


def _anchor_sink(state: DecentroState) -> AnchorSink | None:
    from decentro_adapters.audit_anchor import open_anchor_sink

    return open_anchor_sink(state.settings.audit_anchor_url)


def _anchor(state: DecentroState, text: str | None) -> tuple[AuditHead | None, str]:
    """``--anchor``, else the newest anchor kept in the sink; and where it came from."""
    if text is not None:
        return _read_anchor(text), "--anchor"
    sink = _anchor_sink(state)
    if sink is None:
        return None, ""
    return sink.latest(), sink.description


def _read_anchor(text: str) -> AuditHead:
    """``--anchor``: the JSON itself, or ``@path`` to a file holding it (its last line)."""
    if text.startswith("@"):
        try:
            lines = Path(text[1:]).read_text(encoding="utf-8").split()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {text[1:]} ({exc.strerror})", param_hint="--anchor") from None
        text = lines[-1] if lines else ""
    try:
        return AuditHead.from_json(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--anchor") from None


def fail_if_broken(result: AuditVerification) -> None:
    """Say where the chain broke and exit 1; nothing when it is intact."""
    if not result.ok:
        click.echo(f"audit chain BROKEN at event {result.first_broken}: {result.reason}", err=True)
        sys.exit(1)


def _unanchored(state: DecentroState) -> None:
    """Live mode never passes an unanchored chain quietly: exit 3. The demo warns and goes on."""
    click.echo(NO_ANCHOR, err=True)
    if not state.settings.use_mocks:
        sys.exit(3)
    click.echo("(USE_MOCKS=true: exit 0 anyway; a live app exits 3 here)", err=True)


@click.command("verify-audit")
@_ANCHOR_OPTION
@with_appcontext
def verify_audit(anchor_text: str | None) -> None:
    """Walk the audit log's keyed chain against the newest anchor; exit 1 at the first broken
    link, 3 (live mode) when there is no anchor."""
    state = get_state()
    anchor, source = _anchor(state, anchor_text)
    result = state.service.ports.audit.verify(anchor)
    fail_if_broken(result)
    against = f", anchor at event {anchor.last_id} holds ({source})" if anchor is not None else ""
    click.echo(f"audit chain intact: {result.checked} events checked{against}")
    if anchor is None:
        _unanchored(state)


@click.command("audit-anchor")
@with_appcontext
def audit_anchor() -> None:
    """Verify the chain against the newest anchor, write its head to DECENTRO_AUDIT_ANCHOR_URL,
    and print the head as one line of JSON (without the setting: only print it, to keep elsewhere)."""
    state = get_state()
    audit, sink = state.service.ports.audit, _anchor_sink(state)
    if sink is None:
        click.echo(audit.head().to_json())
        click.echo("DECENTRO_AUDIT_ANCHOR_URL is not set: nothing was kept; store this line outside the database",
                   err=True)
        return
    run = anchor_chain(audit, sink)
    fail_if_broken(run.verification)
    click.echo(audit.head().to_json() if run.written is None else run.written.to_json())
    click.echo(f"anchor {'written to ' + sink.description if run.written else 'unchanged'}", err=True)


def anchor_job(state: DecentroState) -> tuple[float, Callable[[], AnchorRun]] | None:
    """The worker's scheduled anchoring, ``(period, job)``; ``None`` when it is not configured."""
    sink, period = _anchor_sink(state), state.settings.audit_anchor_interval
    if sink is None or period <= 0:
        return None
    audit = state.service.ports.audit
    return float(period), lambda: anchor_chain(audit, sink)


def _resign(action: str, *, accept_legacy: bool, anchor_text: str | None, without_anchor: bool) -> None:
    state = get_state()
    if not state.settings.audit_keys:
        raise click.ClickException("DECENTRO_AUDIT_KEYS is empty: there is no key to sign under")
    audit = state.service.ports.audit
    if not isinstance(audit, _Resigning):
        raise click.ClickException("this app's audit sink cannot re-sign its chain")
    anchor, source = _anchor(state, anchor_text)
    if anchor is None and not without_anchor:
        click.echo(NO_ANCHOR, err=True)
        if not state.settings.use_mocks:
            raise click.ClickException("refusing to re-sign an unanchored chain in live mode: a cut or "
                                       "rewritten log would be signed as genuine (--without-anchor to accept that)")
    clock, key_id = state.service.clock, AuditKeyring(state.settings.audit_keys).signing_key_id
    report = audit.resign(anchor=anchor, accept_legacy=accept_legacy,
                          note=lambda n: resign_event(action, key_id=key_id, resigned=n, at=clock()))
    fail_if_broken(report.verification)
    checked = f"{report.verification.checked} events verified" + (f" against the anchor ({source})" if anchor else "")
    if not report.resigned:
        click.echo(f"{checked}; nothing to re-sign: every link is already under key {report.key_id}")
        return
    click.echo(f"{checked}; {report.resigned} link(s) re-signed under key {report.key_id}; "
               "keys after the first in DECENTRO_AUDIT_KEYS can now be removed")
    sink = _anchor_sink(state)
    if sink is not None:  # anchors taken before pin the old links: the next must pin the new ones
        sink.write(audit.head())
        click.echo(f"new anchor written to {sink.description}", err=True)


_WITHOUT_ANCHOR = click.option("--without-anchor", is_flag=True,
                               help="Go on when there is no anchor (live mode refuses otherwise).")


@click.command("rotate-audit-key")
@_ANCHOR_OPTION
@_WITHOUT_ANCHOR
@with_appcontext
def rotate_audit_key(anchor_text: str | None, without_anchor: bool) -> None:
    """Re-sign the audit chain under the first key of DECENTRO_AUDIT_KEYS after verifying it
    under all of them, so the others can be retired. All or nothing; run again after a failure."""
    _resign("audit_rotate_key", accept_legacy=False, anchor_text=anchor_text, without_anchor=without_anchor)


@click.command("migrate-audit-legacy")
@_ANCHOR_OPTION
@_WITHOUT_ANCHOR
@with_appcontext
def migrate_audit_legacy(anchor_text: str | None, without_anchor: bool) -> None:
    """Once, after upgrading: re-sign plain SHA-256 rows (written before DECENTRO_AUDIT_KEYS)
    under the first key, after checking their chain. All or nothing; a second run changes nothing."""
    _resign("audit_migrate_legacy", accept_legacy=True, anchor_text=anchor_text, without_anchor=without_anchor)


AUDIT_COMMANDS = (verify_audit, audit_anchor, rotate_audit_key, migrate_audit_legacy)
