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


# -- Storage outages: the limits hold ---------------------------------------------------------


def test_an_unreachable_limiter_storage_counts_in_memory_instead_of_turning_the_limit_off(
        make_app, closed_redis_url):
    app = make_app(DECENTRO_RATELIMIT="2 per minute", DECENTRO_RATELIMIT_STORAGE_URI=closed_redis_url)
    client = app.test_client()
    assert [_kyc_from(client, "203.0.113.20").status_code for _ in range(4)] == [200, 200, 429, 429]
    assert _kyc_from(client, "203.0.113.21").status_code == 200  # still per address


def test_a_blackholed_limiter_storage_still_limits_and_every_request_is_answered(make_app, silent_redis, within):
    app = make_app(DECENTRO_RATELIMIT="2 per minute", DECENTRO_RATELIMIT_STORAGE_URI=silent_redis.url)
    client = app.test_client()
    codes = within(60, lambda: [_kyc_from(client, "203.0.113.22").status_code for _ in range(4)])
    assert codes == [200, 200, 429, 429]
    # One attempt found the storage dead; the in-memory counts then serve without asking it.
    assert silent_redis.connections <= 2


def test_refuse_mode_answers_503_with_retry_after_and_leaves_the_storage_alone_meanwhile(
        make_app, silent_redis, within):
    app = make_app(DECENTRO_RATELIMIT_STORAGE_URI=silent_redis.url, DECENTRO_RATELIMIT_ON_STORAGE_ERROR="refuse",
                   DECENTRO_REDIS_COOLDOWN=60)
    client = app.test_client()
    answers = within(60, lambda: [_kyc_from(client, "203.0.113.23") for _ in range(3)])
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert {a.get_json()["error"]["code"] for a in answers} == {"RATE_LIMIT_UNAVAILABLE"}
    assert all(int(a.headers["Retry-After"]) == 60 for a in answers)
    assert silent_redis.connections == 1  # the first failure opened the breaker


def test_refuse_mode_refuses_status_reads_too_without_asking_the_storage_meanwhile(make_app, silent_redis, within):
    from flask import request

    app = make_app(identity=lambda: request.headers.get("X-User"), DECENTRO_RATELIMIT_STORAGE_URI=silent_redis.url,
                   DECENTRO_RATELIMIT_ON_STORAGE_ERROR="refuse", DECENTRO_REDIS_COOLDOWN=60)
    client = app.test_client()
    answers = within(60, lambda: [client.get("/api/payments/unknown-ref", headers={"X-User": "dana"})
                                  for _ in range(3)])
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert silent_redis.connections == 1


def test_an_unknown_storage_error_mode_is_refused_at_init_app(make_app):
    from decentro_core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="DECENTRO_RATELIMIT_ON_STORAGE_ERROR"):
        make_app(DECENTRO_RATELIMIT_ON_STORAGE_ERROR="off")


# -- memory:// in live mode with several processes ---------------------------------------------


def _live_app(**extra):
    from flask import Flask

    from decentro_adapters.vault.fernet import FernetVault
    from flask_decentro import Decentro

    app = Flask("live-limits")
    Decentro(app, identity=lambda: "u", use_mocks=False, client_id="id", client_secret="s", api_key="k",
             encryption_keys=FernetVault.generate_key(), audit_keys=("a" * 43,), DECENTRO_WEBHOOK_SECRET="w" * 32,
             DECENTRO_PAYMENTS_ENABLED=False, **extra)
    return app


@pytest.mark.parametrize("variable, value", [("WEB_CONCURRENCY", "3"), ("GUNICORN_CMD_ARGS", "--workers 4 -b :80"),
                                             ("GUNICORN_CMD_ARGS", "-w3")])
def test_live_mode_with_several_processes_and_memory_storage_refuses_to_start(monkeypatch, variable, value):
    from decentro_core.errors import ConfigurationError

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match="DECENTRO_RATELIMIT_STORAGE_URI=memory://"):
        _live_app()


def test_live_mode_with_several_processes_starts_on_memory_storage_when_allowed(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert "decentro" in _live_app(DECENTRO_RATELIMIT_ALLOW_MEMORY=True).extensions


def test_live_mode_in_one_process_and_demo_mode_with_several_start_on_memory_storage(monkeypatch, make_app):
    assert "decentro" in _live_app().extensions  # one process (nothing says otherwise): a warning only
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    assert "decentro" in make_app().extensions  # demo mode: a warning only


def test_serving_processes_reads_gunicorns_worker_count():
    from flask_decentro.limiting import serving_processes

    assert serving_processes({}, ["pytest"]) == 1
    assert serving_processes({"GUNICORN_CMD_ARGS": "--workers=5"}, ["x"]) == 5
    assert serving_processes({}, ["/usr/bin/gunicorn", "-w", "2", "app:app"]) == 2
    assert serving_processes({}, ["/usr/bin/python", "-w", "2"]) == 1  # not gunicorn's command line
    assert serving_processes({}, ["/venv/lib/site-packages/gunicorn/__main__.py", "--workers", "4"]) == 4
    assert serving_processes({"WEB_CONCURRENCY": "1", "GUNICORN_CMD_ARGS": "-w 3"}, []) == 3


# -- Per-user keys ---------------------------------------------------------------------------


def test_the_user_key_counts_one_user_across_addresses_and_not_the_nat_address(make_app):
    from flask import request

    app = make_app(identity=lambda: request.headers.get("X-User"), DECENTRO_RATELIMIT="2 per minute",
                   DECENTRO_RATELIMIT_KEY="user")
    client = app.test_client()

    def from_(user, address):
        return client.post("/api/kyc/pan", json=kyc(), headers={"X-User": user},
                           environ_base={"REMOTE_ADDR": address}).status_code

    assert [from_("alice", ip) for ip in ("198.51.100.1", "198.51.100.2", "198.51.100.3")] == [200, 200, 429]
    # bob shares alice's carrier-NAT address and still has his own count
    assert [from_("bob", "198.51.100.1") for _ in range(2)] == [200, 200]


def test_the_user_key_does_not_store_the_user_id_in_clear(make_app):
    app = make_app(identity=lambda: "priya.synthetic@example.com", DECENTRO_RATELIMIT_KEY="user")
    client = app.test_client()
    assert _kyc_from(client, "198.51.100.9").status_code == 200
    assert client.get("/api/payments/unknown-ref").status_code == 404  # the status reads' own count
    keys = list(app.extensions["decentro"].limiter.storage.storage)
    assert keys and not [k for k in keys if "priya" in k or "example.com" in k], keys


def test_user_or_ip_counts_anonymous_requests_per_address(make_app):
    from flask import request

    app = make_app(identity=lambda: request.headers.get("X-User"), DECENTRO_RATELIMIT="1 per minute",
                   DECENTRO_RATELIMIT_KEY="user_or_ip")
    client = app.test_client()
    anonymous = [_kyc_from(client, ip).status_code for ip in ("198.51.100.7", "198.51.100.7", "198.51.100.8")]
    assert anonymous == [401, 429, 401]  # refused for want of a user, counted per address
    assert client.post("/api/kyc/pan", json=kyc(), headers={"X-User": "carol"},
                       environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 200
