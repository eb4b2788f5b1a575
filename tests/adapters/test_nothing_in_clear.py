"""A full KYC flow through the real adapters leaves no personal data in clear at rest."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis

from decentro_adapters.vault.fernet import FernetVault
from decentro_adapters.sql.stores import open_stores
from decentro_adapters.cache.redis_cache import RedisCache
from decentro_core.context import CallContext, Consent
from decentro_adapters.bootstrap import build
from decentro_core.settings import Settings

pytestmark = pytest.mark.redis
PAN, ACCOUNT, IFSC, NAME, PHONE = "ABCDE1234F", "123456789011", "SBIN0001077", "Asha Verma", "9876543210"
# Consent templates often name the customer: the text shown is personal data too.
CONSENT_TEXT = f"I, {NAME}, PAN {PAN}, agree to share my documents for KYC."
SECRETS = [PAN, ACCOUNT, NAME, PHONE, NAME.lower(), NAME.upper(), PAN.lower(), "agree to share my documents"]
CONSENT = Consent(text=CONSENT_TEXT, purpose="Identity verification for account opening",
                  client_ip="203.0.113.7", user_agent="DecentroTest/1.0")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/db/decentro.sqlite3"
    else:
        yield str(request.getfixturevalue("postgres_url"))


def run_full_flow(database_url: str, redis_url: str, redis_prefix: str) -> list[dict[str, object]]:
    vault = FernetVault([FernetVault.generate_key()])
    settings = Settings.from_mapping({"USE_MOCKS": "true"})
    with open_stores(database_url, vault=vault) as stores, RedisCache(redis_url, prefix=redis_prefix) as cache:
        with build(settings, cache=cache, vault=vault, audit=stores.audit, consents=stores.consents,
                   records=stores.records) as system:
            service = system.service
            context = CallContext(actor="user:u-1", client_ip="203.0.113.7", user_agent="DecentroTest/1.0")
            results = [
                service.verify_pan(PAN, NAME, user_id="u-1", consent=CONSENT, context=context),
                service.verify_pan(PAN, NAME, user_id="u-1", consent=CONSENT, context=context),  # cache hit
                service.verify_bank(ACCOUNT, IFSC, NAME, user_id="u-1", consent=CONSENT, context=context),
                service.fetch_ckyc(PAN, user_id="u-1", consent=CONSENT, context=context),
                service.send_sms(PHONE, "Your KYC is complete", context=context),
            ]
            service.cache_kyc_result("u-1", "pan", {"pan": PAN, "name": NAME, "phone": PHONE})
            assert service.get_cached_kyc_result("u-1", "pan")["pan"] == PAN
            assert stores.audit.verify().ok
        assert len(list(stores.models.operation.select())) >= 4
    return results


def sqlite_text(url: str) -> str:
    folder = Path(url.split("///", 1)[1]).parent
    return "".join(p.read_bytes().decode("latin-1") for p in folder.iterdir())


def postgres_text(url: str) -> str:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = [name for (name,) in cur.fetchall()]
        assert "decentro_operation" in tables
        dumped = []
        for table in tables:
            cur.execute(f'SELECT t::text FROM "{table}" AS t')
            dumped.extend(row for (row,) in cur.fetchall())
    conn.close()
    return "\n".join(dumped)


def redis_text(url: str, prefix: str) -> str:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        assert keys, "the flow must have cached something"
        values = [client.dump(k) or b"" for k in keys]
        return b"\n".join(keys + values).decode("latin-1")
    finally:
        client.close()


def test_a_full_kyc_flow_leaves_no_personal_data_in_the_database_or_the_cache(
    database_url: str, redis_url: str, redis_prefix: str
) -> None:
    results = run_full_flow(database_url, redis_url, redis_prefix)
    assert [r["status"] for r in results[:4]] == ["SUCCESS"] * 4
    stored = sqlite_text(database_url) if database_url.startswith("sqlite") else postgres_text(database_url)
    assert "ABCDE****F" in stored, "the scan must see the audit rows (masked subjects)"
    found = {s: stored.count(s) for s in SECRETS if s in stored}
    assert found == {}, f"in clear in the database: {sorted(found)}"
    cached = redis_text(redis_url, redis_prefix)
    assert [s for s in SECRETS if s in cached] == []
