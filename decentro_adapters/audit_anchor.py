"""Where audit anchors are kept: a file on a path, or an object store through fsspec.

``DECENTRO_AUDIT_ANCHOR_URL`` names it. A plain path or a ``file://`` URL is a JSON-lines file
(one anchor per line, appended and fsynced; the last line is the newest, so ``verify-audit
--anchor @FILE`` reads it too). Any other scheme (``s3://bucket/prefix``, ``gs://...``,
``memory://...``) goes through `fsspec <https://filesystem-spec.readthedocs.io/>`_ when it is
installed (the ``anchors`` extra, plus that scheme's own package such as ``s3fs``), one object
per anchor under the URL, named by time so the newest sorts last: object stores have no append,
and an object-lock retention policy on the bucket keeps every anchor out of reach. Without
fsspec such a URL is a :class:`~decentro_core.errors.ConfigurationError` at first use.
"""

from __future__ import annotations

import importlib
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from decentro_core.anchors import ANCHOR_URL_VARIABLE, AnchorSink
from decentro_core.errors import ConfigurationError, StoreError
from decentro_core.ports import AuditHead

__all__ = ["FileAnchorSink", "FsspecAnchorSink", "open_anchor_sink"]

log = logging.getLogger("decentro")
_TAIL_BYTES = 64 * 1024  # an anchor line is under 200 bytes: the newest is always in the tail


def open_anchor_sink(url: str) -> AnchorSink | None:
    """The sink ``url`` names (``None`` for an empty one: anchors are not configured)."""
    url = url.strip()
    if not url:
        return None
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("", "file"):
        return FileAnchorSink(Path(unquote(urlsplit(url).path)) if scheme else Path(url))
    return FsspecAnchorSink(url)


class FileAnchorSink:
    """Anchors appended to a JSON-lines file (its directory is made on the first write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file {path}"

    def write(self, head: AuditHead) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(head.to_json() + "\n")
                file.flush()
                os.fsync(file.fileno())  # an anchor reported written survives a crash
        except OSError as exc:
            raise StoreError(f"cannot write the audit anchor to {self.description} ({exc.strerror})") from None

    def latest(self) -> AuditHead | None:
        try:
            with self.path.open("rb") as file:
                file.seek(max(0, file.seek(0, os.SEEK_END) - _TAIL_BYTES))
                tail = file.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read the audit anchors in {self.description} ({exc.strerror})") from None
        return _newest_line(tail.splitlines(), self.description)


class FsspecAnchorSink:
    """One object per anchor under an fsspec URL; the newest is the one whose name sorts last."""

    def __init__(self, url: str) -> None:
        scheme = urlsplit(url).scheme.lower()
        self.description = f"{scheme}:// anchor store"  # the URL may carry credentials: never shown
        try:
            core: Any = importlib.import_module("fsspec.core")
            self._fs, root = core.url_to_fs(url)
        except ImportError as exc:
            raise ConfigurationError(
                f"{ANCHOR_URL_VARIABLE}: a {scheme}:// URL needs fsspec and its {scheme} filesystem "
                f'(pip install "flask-decentro[anchors]", plus e.g. s3fs for s3://); missing: {exc.name}'
            ) from None
        except ValueError:
            raise ConfigurationError(f"{ANCHOR_URL_VARIABLE}: fsspec knows no {scheme}:// filesystem") from None
        self._root = str(root).rstrip("/")

    def write(self, head: AuditHead) -> None:
        name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}-{head.last_id:020d}.json"
        try:
            with self._fs.open(f"{self._root}/{name}", "w", encoding="utf-8") as file:
                file.write(head.to_json() + "\n")
        except Exception as exc:  # each filesystem has its own errors (botocore's are not OSError)
            raise StoreError(f"cannot write the audit anchor to the {self.description} "
                             f"({type(exc).__name__})") from None

    def latest(self) -> AuditHead | None:
        try:
            names = sorted(str(n) for n in self._fs.ls(self._root, detail=False) if str(n).endswith(".json"))
            lines = [self._fs.cat_file(name).decode("utf-8", errors="replace") for name in names[-1:]]
        except FileNotFoundError:
            return None
        except Exception as exc:  # as in write(): whatever the filesystem raises, one StoreError
            raise StoreError(f"cannot read the {self.description} ({type(exc).__name__})") from None
        return _newest_line(lines, self.description)


def _newest_line(lines: list[str], where: str) -> AuditHead | None:
    """The last line that reads as an anchor; a torn last write (a crash) falls back to the one before."""
    for line in reversed([line.strip() for line in lines if line.strip()]):
        try:
            return AuditHead.from_json(line)
        except ValueError:
            log.warning("decentro audit: an unreadable line in the anchors of %s was skipped", where)
    return None
