"""``decentro-db upgrade|status``: the deploy step for the Decentro schema, without Flask.

>>> decentro-db status  --database-url postgresql://decentro@db/decentro   # doctest: +SKIP
>>> decentro-db upgrade                       # reads DECENTRO_DATABASE_URL  # doctest: +SKIP

Also ``python -m decentro_adapters.sql``. ``status`` exits 0 when the schema matches this code,
1 otherwise; ``upgrade`` exits 0 once the schema is current. Errors exit 2 with a message that
never includes the URL's password.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from decentro_core.errors import ConfigurationError, StoreError

from .migrations import DEFAULT_LOCK_TIMEOUT, status, upgrade

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="decentro-db", description="Upgrade or inspect the Decentro schema.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("upgrade", "apply pending migrations (run once per deploy)"),
                       ("status", "show the schema version; exit 1 unless current")):
        command = commands.add_parser(name, help=text)
        command.add_argument(
            "--database-url", default=None,
            help="sqlite:///path or postgresql://... (default: DECENTRO_DATABASE_URL, then DATABASE_URL)",
        )
        if name == "upgrade":
            command.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT,
                                 help="seconds a step may wait for a busy table before it gives up")
    return parser


def shown(url: str) -> str:
    """The URL without its password (and the default file for an empty URL)."""
    if not url.strip():
        return "the default SQLite file (instance/decentro.sqlite3)"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    url = args.database_url
    if url is None:
        url = os.environ.get("DECENTRO_DATABASE_URL") or os.environ.get("DATABASE_URL", "")
    try:
        if args.command == "upgrade":
            print(f"{shown(url)}: {upgrade(url, lock_timeout=args.lock_timeout).summary()}")
            return 0
        found = status(url)
        print(f"{shown(url)}: {found.summary()}")
        return 0 if found.state == "current" else 1
    except (ConfigurationError, StoreError) as exc:
        print(f"decentro-db: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
