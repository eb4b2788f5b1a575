"""Per-IP limits on the KYC routes, shared across processes through Redis."""

from __future__ import annotations

import pytest
from flask_helpers import CONSENT, kyc


def _kyc_from(client, address, route="/api/kyc/pan", body=None):
    return client.post(route, json=body or kyc(), environ_base={"REMOTE_ADDR": address})


def test_the_eleventh_kyc_request_in_a_minute_from_one_ip_is_429_while_another_ip_passes(client):
    answers = [_kyc_from(client, "203.0.113.5").status_code for _ in range(10)]
    assert answers == [200] * 10
    refused = _kyc_from(client, "203.0.113.5", "/api/kyc/ckyc")
    assert refused.status_code == 429
    assert refused.get_json()["status"] == "FAILURE"
    assert refused.get_json()["error"]["code"] == "RATE_LIMITED"
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert _kyc_from(client, "203.0.113.6").status_code == 200


def test_x_forwarded_for_does_not_choose_the_bucket(client):
    for n in range(10):
        client.post("/api/kyc/pan", json=kyc(), headers={"X-Forwarded-For": f"10.0.0.{n}"},
                    environ_base={"REMOTE_ADDR": "203.0.113.9"})
    refused = client.post("/api/kyc/pan", json=kyc(), headers={"X-Forwarded-For": "10.9.9.9"},
                          environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert refused.status_code == 429


def test_the_limit_is_configurable_and_the_callback_route_is_not_limited(make_app):
    app = make_app(DECENTRO_RATELIMIT="2 per minute")
    client = app.test_client()
    assert [_kyc_from(client, "203.0.113.7").status_code for _ in range(3)] == [200, 200, 429]
    callbacks = [client.post("/api/webhooks/decentro", data=b"{}", environ_base={"REMOTE_ADDR": "203.0.113.7"})
                 for _ in range(5)]
    assert {r.status_code for r in callbacks} == {401}  # refused for its signature, never 429


def test_the_host_apps_default_limits_do_not_leak_into_decentro_routes(make_app):
    app = make_app(config={"RATELIMIT_DEFAULT": "1 per minute"})
    client = app.test_client()
    assert [_kyc_from(client, "203.0.113.8").status_code for _ in range(3)] == [200, 200, 200]


@pytest.mark.redis
def test_two_app_instances_share_one_count_through_redis(make_app, redis_url, redis_prefix):
    options = {"DECENTRO_RATELIMIT": "3 per minute", "DECENTRO_RATELIMIT_STORAGE_URI": redis_url,
               "DECENTRO_RATELIMIT_KEY_PREFIX": redis_prefix.rstrip(":")}
    first, second = make_app(**options), make_app(**options)
    try:
        a, b = first.test_client(), second.test_client()
        body = {"pan": "ABCDE1234F", "consent": CONSENT}
        codes = [_kyc_from(c, "192.0.2.44", body=body).status_code for c in (a, b, a)]
        assert codes == [200, 200, 200]
        assert _kyc_from(b, "192.0.2.44", body=body).status_code == 429
        assert _kyc_from(a, "192.0.2.45", body=body).status_code == 200
    finally:
        for app in (first, second):
            app.extensions["decentro"].limiter.storage.storage.close()


def test_payment_status_reads_are_limited_per_signed_in_user_not_per_address(make_app):
    from flask import request

    app = make_app(identity=lambda: request.headers.get("X-User"), DECENTRO_STATUS_RATELIMIT="2 per minute")
    client = app.test_client()
    answers = [client.get("/api/payments/unknown-ref", headers={"X-User": user}).status_code
               for user in ("alice", "alice", "alice", "bob")]
    assert answers == [404, 404, 429, 404]  # alice's third read is refused; bob still reads


@pytest.mark.parametrize("enabled", [True, False])
def test_rate_limit_headers_can_be_turned_off_saving_the_window_read(make_app, enabled):
    app = make_app(DECENTRO_RATELIMIT="2 per minute", DECENTRO_RATELIMIT_HEADERS=enabled)
    limiter = app.extensions["decentro"].limiter
    reads = []
    window_stats = limiter.limiter.get_window_stats

    def counting(*args, **kwargs):
        reads.append(args)
        return window_stats(*args, **kwargs)

    limiter.limiter.get_window_stats = counting
    client = app.test_client()
    answers = [_kyc_from(client, "203.0.113.77") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]  # the limit holds either way
    assert ("X-RateLimit-Limit" in answers[0].headers) is enabled
    assert bool(reads) is enabled
    assert 0 < int(answers[2].headers["Retry-After"]) <= 60  # a refusal always says when to retry
