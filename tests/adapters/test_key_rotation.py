"""Key rotation re-seals every stored token in resumable batches; the old key can then go."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest

from decentro_adapters.vault.fernet import FernetVault
from decentro_adapters.vault.rotation import generate_key, rotate_sealed_values, sealed_columns
from decentro_adapters.sql.stores import Stores, open_stores
from decentro_core.errors import StoreError
from decentro_core.ports import ConsentRecord, OperationRecord, WebhookEvent

T0 = datetime(2024, 5, 1, 10, 30, tzinfo=timezone.utc)
KEY1, KEY2 = generate_key(), generate_key()
OPERATIONS, EVENTS, CONSENTS = 5, 3, 2
TOKENS = OPERATIONS * 2 + EVENTS + CONSENTS * 3  # a consent: text, IP and user agent


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path}/rotation.sqlite3"
    if request.param == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
    old = FernetVault([KEY1])
    with open_stores(url, vault=old) as stores:
        for n in range(OPERATIONS):
            sealed = {"sealed_request": old.seal(b"PAN ABCDE1234F"), "sealed_result": old.seal(f"result {n}".encode())}
            stores.records.save_operation(OperationRecord(f"ref-{n}", "pan", "SUCCESS", T0, T0, **sealed))
        for n in range(EVENTS):
            stores.records.add_webhook_event(WebhookEvent(f"hook-{n}", old.seal(b"{}"), T0))
        for n in range(CONSENTS):
            stores.consents.record(ConsentRecord("user-1", "pan", "I agree", "kyc", T0, "203.0.113.7", "UA"))
    yield url


def stored_tokens(stores: Stores) -> list[str]:
    tokens: list[str] = []
    for model, columns in sealed_columns(stores.models):
        for row in model.select():
            tokens.extend(getattr(row, c) for c in columns if getattr(row, c) is not None)
    return tokens


def test_an_interrupted_rotation_resumes_and_then_the_old_key_can_be_dropped(url: str) -> None:
    both, newest = FernetVault([KEY2, KEY1]), FernetVault([KEY2])
    with open_stores(url, vault=both) as stores:
        first = rotate_sealed_values(stores, both, batch_size=2, max_batches=1)
        assert (first.complete, first.batches, first.rotated) == (False, 1, 4)
        assert sum(newest.is_current(t) for t in stored_tokens(stores)) == 4
        rest = rotate_sealed_values(stores, both, batch_size=2)
        assert (rest.complete, rest.current, rest.rotated, rest.unreadable) == (True, 4, TOKENS - 4, 0)
        again = rotate_sealed_values(stores, both, batch_size=2)
        assert (again.rotated, again.current) == (0, TOKENS)
    with open_stores(url, vault=newest) as stores:
        assert {newest.open(t) for t in stored_tokens(stores)} >= {b"PAN ABCDE1234F", b"{}", b"result 4"}
        record = stores.records.get_operation("ref-3")
        assert record is not None and newest.open(record.sealed_result or "") == b"result 3"
        assert [c.client_ip for c in stores.consents.for_user("user-1")] == ["203.0.113.7"] * CONSENTS


class CrashingVault(FernetVault):
    """Dies on the n-th rotate, as a process killed mid-batch would."""

    def __init__(self, keys: list[str], *, crash_at: int) -> None:
        super().__init__(keys)
        self.calls, self.crash_at = 0, crash_at

    def rotate(self, token: str) -> str:
        self.calls += 1
        if self.calls == self.crash_at:
            raise KeyboardInterrupt
        return super().rotate(token)


def test_a_crash_inside_a_batch_rolls_that_batch_back_and_a_rerun_finishes(url: str) -> None:
    both = FernetVault([KEY2, KEY1])
    with open_stores(url, vault=both) as stores:
        with pytest.raises(KeyboardInterrupt):
            rotate_sealed_values(stores, CrashingVault([KEY2, KEY1], crash_at=6), batch_size=2)
        # The first batch (two rows, four tokens) committed; the second died mid-row and rolled back.
        assert sum(both.is_current(t) for t in stored_tokens(stores)) == 4
        report = rotate_sealed_values(stores, both, batch_size=3)
        assert report.complete and report.rotated == TOKENS - 4 and report.unreadable == 0
    with open_stores(url, vault=FernetVault([KEY2])) as stores:
        assert all(FernetVault([KEY2]).open(t) for t in stored_tokens(stores))


def test_values_no_configured_key_opens_are_reported_not_destroyed(url: str) -> None:
    stranger = FernetVault([generate_key()])
    with open_stores(url, vault=stranger) as stores:
        report = rotate_sealed_values(stores, stranger)
        assert (report.complete, report.rotated, report.unreadable) == (True, 0, TOKENS)
        with pytest.raises(StoreError):
            stores.consents.for_user("user-1")
    with open_stores(url, vault=FernetVault([KEY1])) as stores:
        assert len(stores.consents.for_user("user-1")) == CONSENTS


def test_a_batch_size_below_one_is_refused(url: str) -> None:
    with open_stores(url) as stores, pytest.raises(ValueError):
        rotate_sealed_values(stores, FernetVault([KEY1]), batch_size=0)


class RacingVault(FernetVault):
    """While the batch is being re-sealed, another writer replaces one row's result."""

    def __init__(self, keys: list[str], url: str) -> None:
        super().__init__(keys)
        self.url, self.raced = url, ""

    def rotate(self, token: str) -> str:
        if not self.raced:
            import psycopg2

            self.raced = FernetVault([KEY2]).seal(b"written meanwhile")
            with psycopg2.connect(self.url) as conn, conn.cursor() as cur:  # its own transaction
                cur.execute('UPDATE "decentro_operation" SET "sealed_result" = %s WHERE "reference_id" = %s',
                            (self.raced, "ref-0"))
            conn.close()
        return super().rotate(token)


@pytest.mark.postgres
def test_a_value_replaced_during_the_batch_keeps_the_writers_value(postgres_url: str) -> None:
    old = FernetVault([KEY1])
    with open_stores(postgres_url, vault=old) as stores:
        for n in range(3):
            stores.records.save_operation(OperationRecord(f"ref-{n}", "pan", "SUCCESS", T0, T0,
                                                          sealed_result=old.seal(f"result {n}".encode())))
        vault = RacingVault([KEY2, KEY1], postgres_url)
        report = rotate_sealed_values(stores, vault, batch_size=10)
        assert (report.rotated, report.complete) == (2, True)  # ref-0's result was the writer's
        record = stores.records.get_operation("ref-0")
        assert record is not None and record.sealed_result == vault.raced
        last = stores.records.get_operation("ref-2")
        assert last is not None and FernetVault([KEY2]).open(last.sealed_result or "") == b"result 2"
