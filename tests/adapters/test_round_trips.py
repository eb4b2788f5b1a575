"""A cheap, deterministic guard on the round trips one KYC miss makes on PostgreSQL and Redis.

The counts are upper bounds at what the code does today (``bench.roundtrips`` says what counts
as one); lower them when a change removes round trips, never raise them to let one in unseen.
``python -m bench`` reports the same figures (``pg_round_trips_per_kyc_miss``,
``redis_round_trips_per_kyc_miss``).
"""

from __future__ import annotations

import pytest

from bench.roundtrips import CountingRedis, RoundTrips, kyc_hit_round_trips, kyc_miss_round_trips
from decentro_adapters.bootstrap import build
from decentro_adapters.cache.redis_cache import RedisCache
from decentro_core.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# consent + write-ahead record (one implicit transaction); BEGIN + row lock + audit locks + the
# stored status and last link; upsert + outcome event + audit row + COMMIT. No pool ping.
MAX_POSTGRES = 3
MAX_COMMITS = 2  # the write-ahead; the settle with its outcome event and audit row
MAX_REDIS = 3  # GET, lock + re-read, the two result writes + release


# A cache hit: BEGIN + audit locks + the last link; consent row + audit row + COMMIT.
MAX_POSTGRES_HIT = 2
MAX_COMMITS_HIT = 1
MAX_REDIS_HIT = 1  # GET


def _settings(postgres_url: str) -> Settings:
    return Settings.from_mapping({
        "USE_MOCKS": "true", "DECENTRO_DATABASE_URL": postgres_url,
        "DECENTRO_AUDIT_KEYS": "test-round-trips-audit-key-" + "r" * 20,
        "DECENTRO_ENCRYPTION_KEYS": "MXjFyX5EitONB3igFrq2qZzk3Kfew9ahOlOaSKrYkX0=",
    }).check()


def test_one_kyc_miss_stays_within_its_round_trips(postgres_url: str, redis_url: str, redis_prefix: str) -> None:
    counter = RoundTrips()
    cache = RedisCache(redis_url, prefix=redis_prefix, client=CountingRedis(redis_url, counter))
    settings = _settings(postgres_url)
    with build(settings, cache=cache) as system:
        database = system.service.ports.records._db
        kyc_miss_round_trips(system.service, database, counter, misses=3)
    per_miss = (counter.postgres / 3, counter.commits / 3, counter.redis / 3)
    assert per_miss[0] <= MAX_POSTGRES, counter.statements
    assert per_miss[1] <= MAX_COMMITS, counter.statements
    assert per_miss[2] <= MAX_REDIS
    assert counter.postgres > 0 and counter.redis > 0  # the counters saw the calls at all


def test_a_cache_hit_writes_its_consent_and_audit_rows_in_one_commit(postgres_url: str, redis_url: str,
                                                                     redis_prefix: str) -> None:
    counter = RoundTrips()
    cache = RedisCache(redis_url, prefix=redis_prefix, client=CountingRedis(redis_url, counter))
    with build(_settings(postgres_url), cache=cache) as system:
        service = system.service
        kyc_hit_round_trips(service, service.ports.records._db, counter, hits=3)
        consents = service.ports.consents.for_user("rt-hit-user")
        verified = service.ports.audit.verify()
    assert counter.postgres / 3 <= MAX_POSTGRES_HIT and counter.commits / 3 <= MAX_COMMITS_HIT, counter.statements
    assert counter.redis / 3 <= MAX_REDIS_HIT and counter.postgres > 0
    assert len(consents) == 5  # the miss, the uncounted hit, three hits: each has its consent row
    assert verified.ok


def test_a_connection_the_server_dropped_is_replaced_without_an_error(postgres_url: str) -> None:
    """The pool hands out idle connections without a ping: one the server dropped (a restart,
    an idle timeout) fails its first statement, which alone is sent again on a new one."""
    import psycopg2

    from decentro_adapters.sql.stores import open_stores
    from decentro_core.ports import OperationRecord
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    with open_stores(postgres_url, schema="check") as stores:
        stores.records.save_operation(OperationRecord("ref-1", "pan", "PENDING", now, now))
        name = postgres_url.rsplit("/", 1)[1]
        admin = psycopg2.connect(postgres_url.rsplit("/", 1)[0] + "/postgres")
        admin.autocommit = True
        with admin.cursor() as cur:  # what a server restart does to every pooled connection
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            assert cur.fetchone()[0] >= 1
        admin.close()
        stores.records.save_operation(OperationRecord("ref-2", "pan", "PENDING", now, now))
        assert stores.records.get_operation("ref-1") is not None and stores.records.get_operation("ref-2")


def test_only_the_first_statement_of_this_threads_checkout_may_be_sent_again(postgres_url: str) -> None:
    """The retry must never apply to a later statement (a transaction's COMMIT on a new
    connection would commit half of it), nor to another thread's statement."""
    import threading

    from decentro_adapters.sql.schema import _FIRST_STATEMENT, connect, execute, session

    db = connect(postgres_url)
    seen: dict[str, object] = {}
    try:
        with session(db):
            seen["after checkout"] = getattr(db._state, _FIRST_STATEMENT, False)
            other = threading.Thread(target=lambda: seen.update(
                {"other thread": getattr(db._state, _FIRST_STATEMENT, False)}))
            other.start()
            other.join(timeout=30)
            execute(db, "SELECT 1")
            seen["after a statement"] = getattr(db._state, _FIRST_STATEMENT, False)
    finally:
        db.close_all()
    assert seen == {"after checkout": True, "other thread": False, "after a statement": False}
