"""``flask decentro ...``: keys, audit chain, callbacks and retention.

Registered through the ``flask.commands`` entry point, so any app that uses the extension has
them. Output never includes personal data: callbacks are listed by key, state and reference.
No command serves requests, so the demo warnings (ephemeral key, public webhook secret,
in-memory rate limits, logged on ``decentro.demo`` when an app is built) are quiet here, and a
library error ends the command with its one-line message instead of a traceback.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import click
from flask.cli import AppGroup, ScriptInfo

from decentro_core.anchors import AnchorRun
from decentro_core.errors import DecentroError, StoreError
from decentro_core.ports import EventState, WebhookState
from decentro_core.webhooks import WebhookProcessor

from .cli_audit import AUDIT_COMMANDS, anchor_job, fail_if_broken
from .state import get_state

__all__ = ["decentro_cli", "parse_age"]

DEMO_LOGGER = "decentro.demo"
UNREADABLE_HINT = ("sealed under a key that is no longer configured; in demo mode the key changes "
                   "every start: set DECENTRO_ENCRYPTION_KEYS")


@contextmanager
def _demo_warnings_quiet() -> Iterator[None]:
    """The demo warnings are about serving; a maintenance command has nothing to do with them."""
    logger = logging.getLogger(DEMO_LOGGER)
    was_disabled, logger.disabled = logger.disabled, True
    try:
        yield
    finally:
        logger.disabled = was_disabled


class _DecentroGroup(AppGroup):
    """Every ``flask decentro`` command (and its subgroups) runs with the demo warnings quiet,
    and a ``DecentroError`` (loading the app or running the command) becomes one line, exit 1.
    Our errors' messages never carry personal data, so the message itself is shown."""

    def invoke(self, ctx: click.Context) -> Any:
        with _demo_warnings_quiet():
            try:
                return super().invoke(ctx)
            except DecentroError as exc:
                message = " ".join(str(exc).split())  # one line, whatever the message held
                raise click.ClickException(f"{exc.code}: {message}") from None


decentro_cli = _DecentroGroup("decentro", help="Flask-Decentro maintenance commands.")
webhooks_cli = AppGroup("webhooks", help="Inspect and replay stored Decentro callbacks.")
db_cli = click.Group("db", help="The database schema: see its version, upgrade it once per deploy.")
events_cli = AppGroup("events", help="Outcome events: their delivery state, and replaying them.")
decentro_cli.add_command(webhooks_cli)
decentro_cli.add_command(db_cli)
decentro_cli.add_command(events_cli)
for _audit_command in AUDIT_COMMANDS:
    decentro_cli.add_command(_audit_command)

_AGE = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def parse_age(text: str) -> timedelta:
    """``90d``, ``12h`` or ``30m`` as a ``timedelta``."""
    match = _AGE.match(text)
    if not match:
        raise click.BadParameter("use a number and d, h or m, e.g. 90d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _database_url(context: click.Context) -> str:
    """The app's database URL, read from an app loaded without a schema check (the check would
    refuse exactly the database these commands are for)."""
    from decentro_adapters.sql.migrations import schema_check_deferred

    with schema_check_deferred():
        app = context.ensure_object(ScriptInfo).load_app()
    state = get_state(app)
    state.close()
    return state.settings.database_url


@db_cli.command("upgrade")
@click.option("--lock-timeout", default=5.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds to wait for a busy table before giving up (nothing is changed then).")
@click.pass_context
def db_upgrade(context: click.Context, lock_timeout: float) -> None:
    """Bring the schema to this version of the library (once per deploy, before serving)."""
    from decentro_adapters.sql.migrations import upgrade

    click.echo(upgrade(_database_url(context), lock_timeout=lock_timeout).summary())


@db_cli.command("status")
@click.pass_context
def db_status(context: click.Context) -> None:
    """The schema's version against this library's; exit 1 unless it is current."""
    from decentro_adapters.sql.migrations import status

    report = status(_database_url(context))
    click.echo(report.summary())
    if report.state != "current":
        sys.exit(1)


@decentro_cli.command("gen-key", with_appcontext=False)
@click.option("--audit", "for_audit", is_flag=True, help="A key for DECENTRO_AUDIT_KEYS instead.")
def gen_key(for_audit: bool) -> None:
    """Print a new key for DECENTRO_ENCRYPTION_KEYS (put it first to start a rotation)."""
    if for_audit:
        from decentro_adapters.sql.audit import generate_audit_key

        click.echo(generate_audit_key())
        return
    from decentro_adapters.vault.fernet import FernetVault

    click.echo(FernetVault.generate_key())


@decentro_cli.command("rotate-keys")
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--max-batches", default=None, type=click.IntRange(min=1), help="Stop early; run again to continue."
)
def rotate_keys(batch_size: int, max_batches: int | None) -> None:
    """Re-seal every stored value under the first key of DECENTRO_ENCRYPTION_KEYS."""
    from decentro_adapters.sql.stores import PeeweeRecordStore
    from decentro_adapters.vault.fernet import FernetVault
    from decentro_adapters.vault.rotation import rotate_sealed_values

    state = get_state()
    if not state.settings.encryption_keys:
        raise click.ClickException("DECENTRO_ENCRYPTION_KEYS is empty: nothing to rotate to")
    records, vault = state.service.ports.records, state.service.ports.vault
    if not isinstance(records, PeeweeRecordStore) or not isinstance(vault, FernetVault):
        raise click.ClickException("key rotation needs the SQL stores and the Fernet vault of this app")
    report = rotate_sealed_values(records, vault, batch_size=batch_size, max_batches=max_batches)
    click.echo(
        f"rotated={report.rotated} current={report.current} unreadable={report.unreadable} "
        f"batches={report.batches} complete={report.complete}"
    )
    if report.unreadable:
        click.echo("Some values open with no configured key: do not drop any key yet.", err=True)
        sys.exit(1)


@decentro_cli.command("seal-consents")
@click.option("--batch-size", default=200, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--max-batches", default=None, type=click.IntRange(min=1), help="Stop early; run again to continue."
)
@click.option("--refresh", is_flag=True, help="Also recompute fingerprints made under an older key.")
def seal_consents(batch_size: int, max_batches: int | None, refresh: bool) -> None:
    """Seal the consent texts stored in clear before schema version 3, and fingerprint them."""
    from decentro_adapters.sql.consent_sealing import seal_consent_texts
    from decentro_adapters.sql.stores import PeeweeConsentStore, PeeweeRecordStore

    ports = get_state().service.ports
    records = ports.records
    if not isinstance(ports.consents, PeeweeConsentStore) or not isinstance(records, PeeweeRecordStore) \
            or ports.consents._db is not records.database:
        raise click.ClickException("sealing consents needs this app's SQL stores")
    report = seal_consent_texts(records, ports.vault, batch_size=batch_size, max_batches=max_batches,
                                refresh=refresh)
    click.echo(f"sealed={report.sealed} refreshed={report.refreshed} remaining={report.remaining} "
               f"batches={report.batches} complete={report.complete}")


@webhooks_cli.command("list")
@click.option("--failed", is_flag=True, help="Only callbacks whose processing failed.")
@click.option("--state", type=click.Choice(["received", "processed", "failed"]), default=None)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Stop after this many.")
@click.option("--after", metavar="KEY", default=None, help="Start after the callback with this key.")
def list_webhooks(failed: bool, state: str | None, limit: int | None, after: str | None) -> None:
    """List stored callbacks, oldest first (key, state, attempts, reference, error).

    Streamed from the store a page at a time, so a large table prints at once in flat memory;
    page by hand with --limit N and --after LAST_KEY."""
    chosen = cast("WebhookState | None", "failed" if failed else state)
    records = get_state().service.ports.records
    count = 0
    last: str | None = None
    try:
        events = records.webhook_events(state=chosen, after=after, limit=limit)
    except KeyError:
        raise click.ClickException(f"no stored callback with key {after}") from None
    for event in events:
        count += 1
        last = event.dedupe_key
        click.echo(
            f"{event.dedupe_key}\t{event.state}\tattempts={event.attempts}\t"
            f"received={event.received_at.isoformat()}\tref={event.reference_id or '-'}\t"
            f"error={event.last_error or '-'}"
        )
    click.echo(f"{count} callback(s)", err=True)
    if limit is not None and count == limit and last is not None:
        click.echo(f"more may follow: --after {last}", err=True)


@webhooks_cli.command("replay")
@click.option("--all", "replay_all", is_flag=True, help="Every failed (or stuck) callback.")
@click.argument("key", required=False)
def replay_webhooks(replay_all: bool, key: str | None) -> None:
    """Process stored callbacks again: one KEY, or --all failed and stuck ones."""
    if replay_all == (key is not None):
        raise click.UsageError("give either --all or one KEY")
    processor = get_state().webhooks
    if key is not None:
        if not _opens(processor, key):
            raise click.ClickException(f"callback {key} cannot be opened: {UNREADABLE_HINT}")
        try:
            outcome = processor.replay(key)
        except KeyError:
            raise click.ClickException(f"no stored callback with key {key}") from None
        click.echo(f"{key}\t{outcome}")
        if outcome == "failed":
            sys.exit(1)
        return
    report = processor.replay_failed()
    for done in report.processed:
        click.echo(f"{done}\tprocessed")
    for failed_key in report.failed:
        click.echo(f"{failed_key}\tfailed")
    click.echo(f"replayed {len(report.processed)}, still failing {len(report.failed)}", err=True)
    unreadable = [k for k in report.failed if not _opens(processor, k)]
    if unreadable:
        click.echo(f"{len(unreadable)} callback(s) cannot be opened: {UNREADABLE_HINT}", err=True)
    if report.failed:
        sys.exit(1)


def _opens(processor: WebhookProcessor, key: str) -> bool:
    """Whether the stored body of callback ``key`` opens with the configured keys (True when
    there is no such callback: the replay itself says so)."""
    event = processor.records.get_webhook_event(key)
    if event is None:
        return True
    try:
        processor.vault.open(event.sealed_body)
    except StoreError:
        return False
    return True


@decentro_cli.command("openapi")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Write the document to this file (default: print it).")
def openapi(output: Path | None) -> None:
    """The app's OpenAPI 3.1 document, as served at <prefix>/openapi.json."""
    from .openapi import build_spec, spec_json

    state = get_state()
    text = spec_json(build_spec(state.settings, state.options))
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output} ({len(text)} bytes)", err=True)


@decentro_cli.command("purge")
@click.option("--older-than", "older_than", required=True, help="Age such as 90d, 12h or 30m.")
def purge(older_than: str) -> None:
    """Delete stored operations and callbacks older than the given age (retention)."""
    age = parse_age(older_than)
    service = get_state().service
    cutoff = service.clock() - age
    removed = service.ports.records.purge_before(cutoff)
    click.echo(f"purged {removed} record(s) older than {cutoff.isoformat()}")


# -- outcome events, reconciliation and the worker ----------------------------------------------


@events_cli.command("list")
@click.option("--state", type=click.Choice(["pending", "retrying", "delivered", "dead"]), default=None)
@click.option("--after", "after_id", default=0, type=click.IntRange(min=0), help="Continue after this event id.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(min=1, max=10_000))
def list_events(state: str | None, after_id: int, limit: int) -> None:
    """List outcome events in id order (id, key, state, attempts, handlers that had it, error)."""
    outbox = get_state().service.ports.records.outbox
    found = outbox.events(state=cast("EventState | None", state), after_id=after_id, limit=limit)
    for event in found:
        click.echo(
            f"{event.id}\t{event.key}\t{event.state}\tattempts={event.attempts}\t"
            f"{event.old_status or '-'}->{event.new_status}\ttxn={event.operation_id or '-'}\t"
            f"next={event.next_attempt_at.isoformat() if event.next_attempt_at else '-'}\t"
            f"delivered_to={','.join(event.delivered_to) or '-'}\terror={event.last_error or '-'}"
        )
    more = f"; more after --after {found[-1].id}" if len(found) == limit else ""
    click.echo(f"{len(found)} event(s){more}", err=True)


@events_cli.command("replay")
@click.option("--dead", "replay_dead", is_flag=True, help="Every dead event (retries used up).")
@click.option("--all-handlers", is_flag=True, help="Also call the handlers that already had it.")
@click.argument("key", required=False)
def replay_events(replay_dead: bool, all_handlers: bool, key: str | None) -> None:
    """Deliver outcome events again now: one KEY, or --dead ones. Handlers that already had an
    event are skipped unless --all-handlers."""
    if replay_dead == (key is not None):
        raise click.UsageError("give either --dead or one KEY")
    service = get_state().service
    keys = [key] if key is not None else [e.key for e in _all_events(service, "dead")]
    failed = 0
    for one in keys:
        try:
            report = service.events.replay(one, all_handlers=all_handlers)
        except KeyError:
            raise click.ClickException(f"no outcome event with key {one}") from None
        except LookupError as exc:  # no handler for its type in this app: nothing was changed
            raise click.ClickException(f"{one}: {exc}") from None
        result = report.outcome
        failed += result != "delivered"
        click.echo(f"{one}\t{result}")
    click.echo(f"replayed {len(keys)}, not delivered {failed}", err=True)
    if failed:
        sys.exit(1)


def _all_events(service: Any, state: str) -> Iterator[Any]:
    after = 0
    while True:
        page = service.ports.records.outbox.events(state=state, after_id=after, limit=500)
        yield from page
        if len(page) < 500:
            return
        after = page[-1].id


@decentro_cli.command("reconcile")
@click.option("--older-than", "older_than", default="15m", show_default=True,
              help="Only payments PENDING for longer than this (30m, 2h, 1d).")
@click.option("--limit", default=500, show_default=True, type=click.IntRange(min=1),
              help="Most payments examined in this run (oldest first); run again for the rest.")
def reconcile(older_than: str, limit: int) -> None:
    """Settle PENDING payments: ask Decentro, or mark OUTCOME_UNKNOWN past the link's expiry."""
    report = get_state().service.reconcile_payments(older_than=parse_age(older_than), limit=limit)
    click.echo(report.summary())
    if report.errors:
        sys.exit(1)


@decentro_cli.command("worker")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.05),
              help="Seconds between two looks at the outbox.")
@click.option("--reconcile-every", default="5m", show_default=True,
              help="Run reconciliation this often (0m: never).")
@click.option("--older-than", "older_than", default="15m", show_default=True,
              help="Reconciliation's age limit (see `reconcile`).")
@click.option("--once", is_flag=True, help="Deliver what is due (and reconcile once), then exit.")
def worker(interval: float, reconcile_every: str, older_than: str, once: bool) -> None:
    """Deliver outcome events to this app's handlers, reconcile payments and write audit anchors
    (DECENTRO_AUDIT_ANCHOR_URL, every DECENTRO_AUDIT_ANCHOR_INTERVAL seconds) on a schedule.

    Run one or more next to the web processes (any number: events are claimed, never shared).
    Stops cleanly on SIGTERM or Ctrl-C after the delivery in hand."""
    import signal
    import threading

    state = get_state()
    service = state.service
    period, age = parse_age(reconcile_every).total_seconds(), parse_age(older_than)

    def reconcile_once() -> object:
        return service.reconcile_payments(older_than=age)

    jobs: list[tuple[float, Callable[[], object]]] = [(period, reconcile_once)] if period > 0 else []
    anchoring = anchor_job(state)
    if anchoring is not None:
        jobs.append(anchoring)
    if once:
        report = service.events.dispatch_due()
        results = [job() for _, job in jobs]
        click.echo(f"delivered {len(report.delivered)}, to retry {len(report.retrying)}, dead {len(report.dead)}")
        for result in results:  # a cron'd --once run fails on a broken audit chain, as audit-anchor does
            if isinstance(result, AnchorRun):
                fail_if_broken(result.verification)
        return
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    types = ", ".join(service.events.handled_types()) or "none (no handler registered: nothing is delivered)"
    anchors = f"; anchoring the audit chain every {anchoring[0]:g}s" if anchoring else "; no audit anchors"
    click.echo(f"decentro worker: delivering {types}; reconciling every {reconcile_every}{anchors}", err=True)
    try:
        service.events.run_worker(interval=interval, stop=stop, every=jobs)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo("decentro worker stopped", err=True)
