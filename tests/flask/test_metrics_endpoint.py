"""The opt-in Prometheus scrape endpoint: off by default, checked at init_app, guardable."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, request
from flask_helpers import kyc, signed_post

pytest.importorskip("prometheus_client", reason="the metrics extra is part of the dev extra")

from prometheus_client import CollectorRegistry  # noqa: E402

from decentro_adapters.aadhaar.mock import MockAadhaarVerifier  # noqa: E402
from decentro_adapters.gateway.mock import MockGateway  # noqa: E402
from decentro_adapters.observability.prometheus import PrometheusInstruments  # noqa: E402
from decentro_core.errors import ConfigurationError  # noqa: E402
from decentro_core.memory import memory_ports  # noqa: E402
from decentro_core.observability import FanOut, LOG_INSTRUMENTS  # noqa: E402
from decentro_core.service import BlockingDecentroService  # noqa: E402
from decentro_core.settings import Settings  # noqa: E402

METRICS = {"DECENTRO_METRICS": "prometheus", "DECENTRO_METRICS_ENDPOINT": "/metrics"}


def _service(registry: CollectorRegistry) -> BlockingDecentroService:
    ports = memory_ports(MockGateway(), aadhaar_verifier=MockAadhaarVerifier())
    ports = type(ports)(**{**vars(ports), "instruments": FanOut([LOG_INSTRUMENTS, PrometheusInstruments(registry)])})
    return BlockingDecentroService(Settings(use_mocks=True), ports, sleep=lambda seconds: None)


def test_there_is_no_metrics_endpoint_unless_asked_for(client: Any) -> None:
    assert client.get("/metrics").status_code == 404


def test_the_endpoint_serves_the_services_metrics_in_prometheus_text(make_app: Callable[..., Flask]) -> None:
    registry = CollectorRegistry()
    app = make_app(service=_service(registry), **METRICS)
    with app.test_client() as client:
        assert client.post("/api/kyc/pan", json=kyc(user_id="demo-user")).status_code == 200
        signed_post(client, {"callbackTxnId": "CB-x", "transactionStatus": "SUCCESS", "referenceId": "none"})
        scraped = client.get("/metrics")
    assert scraped.status_code == 200 and scraped.content_type.startswith("text/plain")
    text = scraped.get_data(as_text=True)
    assert 'decentro_calls_total{module="kyc",operation="pan",outcome="SUCCESS"} 1.0' in text
    assert 'decentro_cache_lookups_total{operation="pan",result="miss"} 1.0' in text
    assert 'decentro_webhooks_total{outcome="received",reason=""} 1.0' in text
    assert "ABCDE1234F" not in text and "demo-user" not in text


def test_the_host_apps_check_guards_the_endpoint(make_app: Callable[..., Flask]) -> None:
    def metrics_access() -> bool:
        return request.headers.get("Authorization") == "Bearer scrape-token-for-tests"

    app = make_app(service=_service(CollectorRegistry()), metrics_access=metrics_access, **METRICS)
    with app.test_client() as client:
        assert client.get("/metrics").status_code == 403
        allowed = client.get("/metrics", headers={"Authorization": "Bearer scrape-token-for-tests"})
    assert allowed.status_code == 200 and b"decentro_calls_total" in allowed.data


def test_the_endpoint_is_outside_the_blueprint_prefix_and_its_rate_limits(make_app: Callable[..., Flask]) -> None:
    app = make_app(service=_service(CollectorRegistry()), DECENTRO_URL_PREFIX="/kyc-api", **METRICS)
    with app.test_client() as client:
        assert all(client.get("/metrics").status_code == 200 for _ in range(30))


@pytest.mark.parametrize(("options", "message"), [
    ({"DECENTRO_METRICS_ENDPOINT": "/metrics"}, "DECENTRO_METRICS=prometheus"),
    ({"DECENTRO_METRICS": "prometheus", "DECENTRO_METRICS_ENDPOINT": "metrics"}, "starting with /"),
])
def test_a_misconfigured_endpoint_is_refused_at_init_app(make_app: Callable[..., Flask], options: dict[str, str],
                                                         message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        make_app(**options)


def test_settings_alone_build_prometheus_instruments_on_the_default_registry(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from flask_decentro import Decentro

    app = Flask("metrics_from_settings")
    app.config.update(TESTING=True, **METRICS)
    Decentro(app)
    try:
        with app.test_client() as client:
            client.post("/api/kyc/pan", json=kyc(user_id="demo-user"))
            text = client.get("/metrics").get_data(as_text=True)
    finally:
        app.extensions["decentro"].close()
    assert "decentro_calls_total{" in text and 'operation="pan"' in text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "anyone" in r.getMessage()]


def test_in_live_mode_without_an_access_check_every_scrape_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    from flask_decentro.metrics import mount_metrics

    app = Flask("live_metrics")
    instruments = PrometheusInstruments(CollectorRegistry())
    instruments.webhook("received")
    with caplog.at_level(logging.WARNING, logger="flask_decentro"):
        mount_metrics(app, "/metrics", settings=Settings(use_mocks=False), instruments=instruments, access=None)
    assert any("metrics_access" in r.getMessage() for r in caplog.records)
    with app.test_client() as client:
        for peer in ("127.0.0.1", "203.0.113.7"):
            refused = client.get("/metrics", environ_base={"REMOTE_ADDR": peer})
            assert refused.status_code == 403 and b"decentro_" not in refused.data


def test_in_mock_mode_without_an_access_check_only_this_machine_may_scrape(make_app: Callable[..., Flask]) -> None:
    app = make_app(service=_service(CollectorRegistry()), **METRICS)
    with app.test_client() as client:
        answers = {peer: client.get("/metrics", environ_base={"REMOTE_ADDR": peer}).status_code
                   for peer in ("127.0.0.1", "::1", "::ffff:127.0.0.1", "203.0.113.7", "::ffff:203.0.113.7")}
    assert answers == {"127.0.0.1": 200, "::1": 200, "::ffff:127.0.0.1": 200, "203.0.113.7": 403,
                       "::ffff:203.0.113.7": 403}
