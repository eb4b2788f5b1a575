"""A cheap, deterministic guard on the round trips one KYC miss makes on PostgreSQL and Redis.

The counts are upper bounds at what the code does today (``bench.roundtrips`` says what counts
as one); lower them when a change removes round trips, never raise them to let one in unseen.
``python -m bench`` reports the same figures (``pg_round_trips_per_kyc_miss``,
``redis_round_trips_per_kyc_miss``).
"""

from __future__ import annotations

import pytest

from bench.roundtrips import CountingRedis, RoundTrips, kyc_miss_round_trips
from decentro_adapters.bootstrap import build
from decentro_adapters.cache.redis_cache import RedisCache
from decentro_core.settings import Settings

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

# 3 pool liveness pings, consent, write-ahead record, and the settle transaction (BEGIN, lock the
# row, save, outcome event, audit lock + last link, audit row, COMMIT)
MAX_POSTGRES = 12
MAX_COMMITS = 3  # consent, write-ahead record, settle + outcome event + audit
MAX_REDIS = 3  # GET, lock + re-read, the two result writes + release


def test_one_kyc_miss_stays_within_its_round_trips(postgres_url: str, redis_url: str, redis_prefix: str) -> None:
    counter = RoundTrips()
    cache = RedisCache(redis_url, prefix=redis_prefix, client=CountingRedis(redis_url, counter))
    settings = Settings.from_mapping({
        "USE_MOCKS": "true", "DECENTRO_DATABASE_URL": postgres_url,
        "DECENTRO_AUDIT_KEYS": "test-round-trips-audit-key-" + "r" * 20,
        "DECENTRO_ENCRYPTION_KEYS": "MXjFyX5EitONB3igFrq2qZzk3Kfew9ahOlOaSKrYkX0=",
    }).check()
    with build(settings, cache=cache) as system:
        database = system.service.ports.records._db
        kyc_miss_round_trips(system.service, database, counter, misses=3)
    per_miss = (counter.postgres / 3, counter.commits / 3, counter.redis / 3)
    assert per_miss[0] <= MAX_POSTGRES, counter.statements
    assert per_miss[1] <= MAX_COMMITS, counter.statements
    assert per_miss[2] <= MAX_REDIS
    assert counter.postgres > 0 and counter.redis > 0  # the counters saw the calls at all
