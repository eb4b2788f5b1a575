"""Audit anchors kept outside the database: the sinks, and anchoring on every backend.

Deleting the newest rows, or every row, leaves a chain that verifies on its own; the anchor
written by :func:`decentro_core.anchors.anchor_chain` (the worker, ``audit-anchor``) finds it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from decentro_adapters.audit_anchor import FileAnchorSink, FsspecAnchorSink, open_anchor_sink
from decentro_adapters.sql.audit import PeeweeAuditSink
from decentro_adapters.sql.stores import open_stores
from decentro_core.anchors import anchor_chain
from decentro_core.audit import AuditKeyring
from decentro_core.errors import ConfigurationError, StoreError
from decentro_core.memory import MemoryAuditSink
from decentro_core.ports import AuditEvent, AuditHead

T0 = datetime(2024, 5, 1, 10, 30, tzinfo=timezone.utc)
KEYS = AuditKeyring(["test-audit-key-anchor-" + "a" * 24])


def audit_event(n: int) -> AuditEvent:
    return AuditEvent("system", "upi_collect", "user@***", "SUCCESS", T0 + timedelta(seconds=n), f"TXN{n}", f"r{n}")


@pytest.fixture
def sink(store_url: str | None) -> Iterator[Any]:
    if store_url is None:
        yield MemoryAuditSink(KEYS)
        return
    with open_stores(store_url) as stores:
        yield PeeweeAuditSink(stores.database, stores.models, KEYS)


def _delete_from(sink: Any, row_id: int) -> None:
    """What someone with write access to the database can do."""
    if isinstance(sink, MemoryAuditSink):
        del sink.rows[row_id - 1:]
        return
    sink.database.execute_sql(f"DELETE FROM decentro_audit_event WHERE id >= {int(row_id)}")


def test_anchoring_writes_the_head_and_only_when_it_moved(sink: Any, tmp_path: Path) -> None:
    anchors = FileAnchorSink(tmp_path / "anchors" / "audit.jsonl")
    assert anchor_chain(sink, anchors).written is None and anchors.latest() is None  # nothing to pin yet
    for n in range(3):
        sink.append(audit_event(n))
    first = anchor_chain(sink, anchors)
    assert first.written == sink.head() == anchors.latest() and first.verification.ok
    assert anchor_chain(sink, anchors).written is None  # unchanged: no new line
    sink.append(audit_event(3))
    assert anchor_chain(sink, anchors).written == sink.head()
    assert len((tmp_path / "anchors" / "audit.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize("cut", ["newest rows", "all rows"])
def test_deleting_rows_is_caught_against_the_automatic_anchor(sink: Any, tmp_path: Path, cut: str) -> None:
    anchors = FileAnchorSink(tmp_path / "audit.jsonl")
    for n in range(5):
        sink.append(audit_event(n))
    assert anchor_chain(sink, anchors).written is not None
    _delete_from(sink, 4 if cut == "newest rows" else 1)
    assert sink.verify().ok  # on its own, a shorter (or empty) chain still verifies
    run = anchor_chain(sink, anchors)
    assert (run.verification.ok, run.verification.first_broken, run.written) == (False, 5, None)
    assert run.verification.reason == "the chain ends before the anchor (newest rows deleted)"
    assert anchors.latest() == run.previous  # the cut chain was not blessed with a new anchor
    assert not sink.verify(anchors.latest()).ok


def test_a_rewritten_row_is_caught_and_not_anchored(sink: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    anchors = FileAnchorSink(tmp_path / "audit.jsonl")
    for n in range(3):
        sink.append(audit_event(n))
    anchor_chain(sink, anchors)
    if isinstance(sink, MemoryAuditSink):
        event, link = sink.rows[1]
        sink.rows[1] = (AuditEvent(**{**event.__dict__, "outcome": "FAILURE"}), link)
    else:
        sink.database.execute_sql("UPDATE decentro_audit_event SET outcome = 'FAILURE' WHERE id = 2")
    sink.append(audit_event(9))
    run = anchor_chain(sink, anchors)
    assert (run.verification.first_broken, run.written) == (2, None)
    assert "BROKEN at event 2" in caplog.text


def test_the_file_sink_reads_its_newest_line_and_survives_a_torn_write(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    anchors = open_anchor_sink(f"file://{path}")
    assert isinstance(anchors, FileAnchorSink) and anchors.path == path
    heads = [AuditHead(count=n, last_id=n, link=f"k:{n}", key_id="k") for n in (1, 2)]
    for head in heads:
        anchors.write(head)
    assert anchors.latest() == heads[1]
    with path.open("a") as file:
        file.write('{"count":3,"last_')  # a crash in the middle of a write
    assert FileAnchorSink(path).latest() == heads[1]
    assert isinstance(open_anchor_sink(str(path)), FileAnchorSink)
    assert open_anchor_sink("  ") is None


def test_an_object_store_url_goes_through_fsspec(tmp_path: Path) -> None:
    pytest.importorskip("fsspec")
    anchors = open_anchor_sink("memory://decentro-test-anchors/audit")
    assert isinstance(anchors, FsspecAnchorSink)
    assert anchors.latest() is None
    heads = [AuditHead(count=n, last_id=n, link=f"k:{n}", key_id="k") for n in (1, 2, 3)]
    for head in heads:
        anchors.write(head)
    assert open_anchor_sink("memory://decentro-test-anchors/audit").latest() == heads[-1]  # type: ignore[union-attr]


def test_an_object_store_url_without_fsspec_is_a_clear_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("fsspec", "fsspec.core"):
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    for url in ("memory://user:s3cr3t@anchors/audit", "s3://user:s3cr3t@bucket/anchors"):
        with pytest.raises(ConfigurationError) as raised:
            open_anchor_sink(url)
        message = str(raised.value)
        assert "DECENTRO_AUDIT_ANCHOR_URL" in message and "fsspec" in message and "://" in message
        assert "s3cr3t" not in message


def test_an_unknown_scheme_is_a_configuration_error() -> None:
    pytest.importorskip("fsspec")
    with pytest.raises(ConfigurationError, match="no nosuchfs:// filesystem"):
        open_anchor_sink("nosuchfs://x/y")


def test_an_object_store_failure_of_any_kind_is_a_store_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore's credential errors are not OSError: the worker catches StoreError, so it must be one."""
    pytest.importorskip("fsspec")
    anchors = open_anchor_sink("memory://decentro-test-anchors/failing")
    assert isinstance(anchors, FsspecAnchorSink)

    def refuse(*_: Any, **__: Any) -> Any:
        raise RuntimeError("NoCredentialsError")

    monkeypatch.setattr(anchors._fs, "open", refuse)
    monkeypatch.setattr(anchors._fs, "ls", refuse)
    with pytest.raises(StoreError, match="RuntimeError"):
        anchors.write(AuditHead(count=1, last_id=1, link="k:1", key_id="k"))
    with pytest.raises(StoreError, match="RuntimeError"):
        anchors.latest()
