"""The ConsentStore contract: MemoryConsentStore, SQLite (file) and PostgreSQL behave alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest

from decentro_adapters.vault.fernet import FernetVault
from decentro_adapters.sql.stores import open_stores
from decentro_core.consents import MemoryConsentStore
from decentro_core.errors import ConfigurationError
from decentro_core.ports import ConsentRecord, ConsentStore

T0 = datetime(2024, 5, 1, 10, 30, 15, 500, tzinfo=timezone.utc)
IP, AGENT = "203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64) DecentroTest/1.0"



@pytest.fixture
def store(store_url: str | None) -> Iterator[ConsentStore]:
    if store_url is None:
        yield MemoryConsentStore()
        return
    vault = FernetVault([FernetVault.generate_key()])
    with open_stores(store_url, vault=vault) as stores:
        yield stores.consents


def consent(user_id: str = "user-1", operation: str = "pan", **changes: object) -> ConsentRecord:
    values: dict[str, object] = {
        "user_id": user_id,
        "operation": operation,
        "text": "I agree to share my PAN for verification.",
        "purpose": "kyc-onboarding",
        "given_at": T0,
        "client_ip": IP,
        "user_agent": AGENT,
    }
    values.update(changes)
    return ConsentRecord(**values)  # type: ignore[arg-type]


def test_recorded_consents_come_back_equal_in_the_order_given(store: ConsentStore) -> None:
    first, second = consent(), consent(operation="bank_account", given_at=T0 + timedelta(seconds=5))
    store.record(first)
    store.record(second)
    assert store.for_user("user-1") == [first, second]


def test_each_record_gets_its_own_id(store: ConsentStore) -> None:
    ids = {store.record(consent()), store.record(consent()), store.record(consent(user_id="user-2"))}
    assert len(ids) == 3 and all(isinstance(i, str) and i for i in ids)


def test_consents_of_other_users_are_not_returned(store: ConsentStore) -> None:
    store.record(consent(user_id="user-2"))
    assert store.for_user("user-1") == []
    assert [c.user_id for c in store.for_user("user-2")] == ["user-2"]


def test_a_consent_without_ip_or_user_agent_is_kept_as_such(store: ConsentStore) -> None:
    bare = consent(client_ip=None, user_agent=None)
    store.record(bare)
    assert store.for_user("user-1") == [bare]


PERSONAL = "I, Testa Synthetica, PAN ABCDE1234F, agree to share my PAN for verification."


def test_the_consents_given_to_one_text_are_found_by_its_fingerprint(store: ConsentStore) -> None:
    ids = [store.record(consent(text=PERSONAL)), store.record(consent(user_id="user-2")),
           store.record(consent(user_id="user-3", text=PERSONAL))]
    found = store.for_text(PERSONAL)
    assert [c.id for c in found] == [int(ids[2]), int(ids[0])]  # newest first, like consents_page
    assert len({c.text_fingerprint for c in found}) == 1 and len(found[0].text_fingerprint or "") == 64
    assert store.for_text(PERSONAL, before=int(ids[2])) == found[1:]
    assert store.for_text(PERSONAL + " ") == [] and store.for_text("never shown to anyone") == []
    listed = {c.id: c.text_fingerprint for c in store.consents_page()}
    assert listed[int(ids[0])] == found[0].text_fingerprint != listed[int(ids[1])]
    assert PERSONAL not in (found[0].text_fingerprint or "")


def test_the_memory_store_keeps_the_text_sealed() -> None:
    store = MemoryConsentStore()
    store.record(consent(text=PERSONAL))
    assert PERSONAL not in repr(store._rows) and IP not in repr(store._rows)
    assert store.for_user("user-1") == [consent(text=PERSONAL)]


# -- Peewee specifics ----------------------------------------------------------------------


def test_text_ip_and_user_agent_are_sealed_at_rest(database_url: str) -> None:
    vault = FernetVault([FernetVault.generate_key()])
    with open_stores(database_url, vault=vault) as stores:
        stores.consents.record(consent(text=PERSONAL))
        row = stores.models.consent.get()
    assert IP not in row.client_ip and "Mozilla" not in row.user_agent
    assert "Testa" not in row.text and "ABCDE1234F" not in row.text and vault.open(row.text).decode() == PERSONAL
    assert len(row.text_fingerprint) == 64 and "ABCDE1234F" not in row.text_fingerprint


def test_without_a_vault_a_consent_is_refused_not_stored_in_clear(database_url: str) -> None:
    with open_stores(database_url) as stores:
        with pytest.raises(ConfigurationError, match="vault"):
            stores.consents.record(consent())
        assert stores.models.consent.select().count() == 0
