"""The KYC result cache: a repeated check for the same user and document is served once,
sealed, under keys that name nobody; concurrent identical misses reach Decentro once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fakes import Harness, RecordingCache, ScriptedGateway, build, pan_found

from decentro_core.errors import CacheUnavailable, StoreError
from decentro_core.memory import MemoryRecordStore

CONSENT = {"given": True, "text": "I agree that my PAN is verified.", "purpose": "Customer onboarding identity verification"}

PAN = "ABCDE1234F"
PAN_PATH = "/kyc/public_registry/validate"


@pytest.fixture
def h() -> Harness:
    return build()


def _pan_requests(h: Harness) -> int:
    return int(h.gateway.emulator.stats()["requests"].get(PAN_PATH, 0))


def test_a_repeated_pan_check_for_the_same_user_is_served_from_cache(h: Harness) -> None:
    first = h.service.verify_pan(PAN, user_id="user-1")
    second = h.service.verify_pan(PAN, user_id="user-1")
    assert not first["data"].get("cached")
    assert second["data"]["cached"] is True
    assert second["status"] == "SUCCESS"
    assert {k: v for k, v in second["data"].items() if k != "cached"} == first["data"]
    assert _pan_requests(h) == 1
    hit = h.audit.events[-1]
    assert (hit.action, hit.outcome, hit.subject) == ("pan", "CACHE_HIT", "ABCDE****F")
    assert hit.reference_id == first["data"]["reference_id"]


def test_bank_and_ckyc_checks_are_cached_too(h: Harness) -> None:
    for _ in range(2):
        h.service.verify_bank("123456789011", "SBIN0001077", user_id="user-1")
        h.service.fetch_ckyc("ABCDE1234A", user_id="user-1")
    assert h.gateway.emulator.stats()["total"] == 2
    assert [e.outcome for e in h.audit.events] == ["SUCCESS", "SUCCESS", "CACHE_HIT", "CACHE_HIT"]


@pytest.mark.parametrize(("second_pan", "second_user"), [
    ("ABCDE5678F", "user-1"),
    (PAN, "user-2"),
])
def test_another_document_or_another_user_is_not_served_from_cache(
        h: Harness, second_pan: str, second_user: str) -> None:
    h.service.verify_pan(PAN, user_id="user-1")
    result = h.service.verify_pan(second_pan, user_id=second_user)
    assert not result["data"].get("cached")
    assert _pan_requests(h) == 2


def test_without_a_user_id_nothing_is_cached(h: Harness) -> None:
    h.service.verify_pan(PAN)
    assert not h.service.verify_pan(PAN)["data"].get("cached")
    assert _pan_requests(h) == 2 and h.cache.written == {}


def test_failures_are_not_cached(h: Harness) -> None:
    for _ in range(2):
        assert h.service.verify_pan("ABCDE0000F", user_id="user-1")["status"] == "FAILURE"
    assert _pan_requests(h) == 2
    assert h.service.get_cached_kyc_result("user-1", "pan") is None


def test_the_last_successful_envelope_is_kept_per_user_and_kyc_type(h: Harness) -> None:
    h.service.verify_pan(PAN, user_id="user-1")
    latest = h.service.verify_pan("ABCDE5678F", user_id="user-1")
    h.service.verify_pan("ABCDE0000F", user_id="user-1")
    assert h.service.get_cached_kyc_result("user-1", "pan") == latest
    assert h.service.get_cached_kyc_result("user-2", "pan") is None
    assert h.service.get_cached_kyc_result("user-1", "bank_account") is None


def test_cache_keys_and_values_hold_no_pan_or_user_id_in_clear(h: Harness) -> None:
    h.service.verify_pan(PAN, "Testa Synthetica", user_id="user-4242")
    assert len(h.cache.written) == 2
    for key, value in h.cache.written.items():
        for secret in (PAN, "user-4242", "Testa"):
            assert secret not in key and secret.encode() not in value


def test_cache_kyc_result_round_trips_and_expires_after_its_ttl(h: Harness) -> None:
    result: dict[str, Any] = {"status": "SUCCESS", "data": {"reference_id": "r-1", "score": 0.5}}
    assert h.service.cache_kyc_result("user-1", "video_kyc", result, ttl=60) is True
    h.monotonic.advance(59)
    assert h.service.get_cached_kyc_result("user-1", "video_kyc") == result
    h.monotonic.advance(1)
    assert h.service.get_cached_kyc_result("user-1", "video_kyc") is None


def test_a_cached_check_expires_after_the_configured_cache_ttl() -> None:
    h = build(cache_ttl=120)
    h.service.verify_pan(PAN, user_id="user-1")
    h.monotonic.advance(119)
    assert h.service.verify_pan(PAN, user_id="user-1")["data"]["cached"] is True
    h.monotonic.advance(1)
    assert not h.service.verify_pan(PAN, user_id="user-1")["data"].get("cached")
    assert _pan_requests(h) == 2


def test_a_cache_entry_the_vault_cannot_open_is_dropped_and_treated_as_a_miss(h: Harness) -> None:
    h.service.verify_pan(PAN, user_id="user-1")
    for key in list(h.cache.written):
        h.cache.set(key, b"mem:sealed-by-another-process", ttl=600)
    assert h.service.get_cached_kyc_result("user-1", "pan") is None
    assert not h.service.verify_pan(PAN, user_id="user-1")["data"].get("cached")
    assert _pan_requests(h) == 2


def test_concurrent_identical_misses_reach_decentro_exactly_once() -> None:
    threads = 8
    gateway = ScriptedGateway([pan_found()], pause=0.2)
    h = build(gateway)
    start = threading.Barrier(threads, timeout=10)

    def check(_: int) -> dict[str, Any]:
        start.wait()
        return h.service.verify_pan(PAN, user_id="user-1")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(check, range(threads), timeout=30))
    assert len(gateway.requests) == 1
    assert all(r["status"] == "SUCCESS" for r in results)
    assert sorted(bool(r["data"].get("cached")) for r in results) == [False] + [True] * (threads - 1)
    assert len({r["data"]["reference_id"] for r in results}) == 1


class DownCache(RecordingCache):
    """A cache whose server is gone: every operation fails as the Redis adapter reports it."""

    def get(self, key: str) -> bytes | None:
        raise CacheUnavailable("Cache operation failed (ConnectionError)")

    def set(self, key: str, value: bytes, *, ttl: int) -> None:
        raise CacheUnavailable("Cache operation failed (ConnectionError)")


def test_a_cache_outage_degrades_to_calling_decentro_and_is_counted() -> None:
    h = build(cache=DownCache())
    result = h.service.verify_pan("ABCDE1234F", user_id="u-1", consent=CONSENT)
    assert result["status"] == "SUCCESS" and "cached" not in result["data"]
    assert len(h.gateway.requests) == 1 and len(h.consents.records) == 1
    assert h.service._runner.cache_fallbacks == 1


def test_with_fail_open_off_a_cache_outage_refuses_before_anything_is_recorded_or_sent() -> None:
    h = build(cache=DownCache(), cache_fail_open=False)
    with pytest.raises(CacheUnavailable) as raised:
        h.service.verify_pan("ABCDE1234F", user_id="u-1", consent=CONSENT)
    assert raised.value.http_status == 503
    assert (h.gateway.requests, h.consents.records, h.records.operations) == ([], [], {})


def test_a_database_failure_under_the_cache_is_not_mistaken_for_a_cache_outage() -> None:
    class BrokenRecords(MemoryRecordStore):
        def save_operation(self, record: Any) -> None:
            raise StoreError("database unavailable")

    h = build(records=BrokenRecords())
    with pytest.raises(StoreError):
        h.service.verify_pan("ABCDE1234F", user_id="u-1", consent=CONSENT)
    assert h.gateway.requests == [] and h.service._runner.cache_fallbacks == 0
