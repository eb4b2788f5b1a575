"""Prometheus metrics, OpenTelemetry spans and JSON log lines, over a mock-mode system.

Each test builds the whole system (``bootstrap.build``, mock mode, SQLite) with its own
Prometheus registry and its own tracer provider, runs real calls and callbacks, and reads
what was counted, traced and logged. Synthetic identities only; none of them may appear in
a metric, a span or a log record.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("prometheus_client", reason="the metrics extra is part of the dev extra")
pytest.importorskip("opentelemetry.sdk", reason="the OpenTelemetry SDK is part of the dev extra")

from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.trace import StatusCode  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

from decentro_adapters.bootstrap import System, build, instruments_from_settings  # noqa: E402
from decentro_adapters.observability import JsonFormatter  # noqa: E402
from decentro_adapters.observability.logs import scrub  # noqa: E402
from decentro_adapters.observability.otel import SPAN_ATTRIBUTES, OpenTelemetryInstruments  # noqa: E402
from decentro_adapters.observability.prometheus import PrometheusInstruments  # noqa: E402
from decentro_core.errors import ConfigurationError, UpstreamError  # noqa: E402
from decentro_core.observability import LOG_INSTRUMENTS, FanOut  # noqa: E402
from decentro_core.settings import Settings  # noqa: E402
from decentro_core.webhooks.processor import DEMO_WEBHOOK_SECRET  # noqa: E402

CONSENT = {"given": True, "text": "I agree that my documents are verified.",
           "purpose": "Customer onboarding identity verification"}
PAN, NAME, ACCOUNT, IFSC = "ABCDE1234F", "Asha Verma", "123456789011", "SBIN0001077"
EMAIL, PHONE, USER = "asha.verma@example.com", "9876500011", "user-7f3a"
PERSONAL = (PAN, NAME, "Asha", "Verma", ACCOUNT, EMAIL, PHONE, USER)


class Observed:
    """A mock-mode system with a private registry, an in-memory span exporter and captured logs."""

    def __init__(self, system: System, registry: CollectorRegistry, spans: InMemorySpanExporter) -> None:
        self.system, self.registry, self.spans = system, registry, spans

    @property
    def service(self) -> Any:
        return self.system.service

    def sample(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def metrics_text(self) -> str:
        return generate_latest(self.registry).decode()


@pytest.fixture
def observed(tmp_path: Path) -> Iterator[Observed]:
    registry, exporter = CollectorRegistry(), InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instruments = FanOut([LOG_INSTRUMENTS, PrometheusInstruments(registry),
                          OpenTelemetryInstruments(tracer_provider=provider)])
    settings = Settings(use_mocks=True, database_url=f"sqlite:///{tmp_path}/obs.sqlite3", max_retries=1,
                        backoff_base=0.01, backoff_max=0.01)
    with build(settings, instruments=instruments) as system:
        yield Observed(system, registry, exporter)


def _callback(observed: Observed, reference: str, txn: str) -> None:
    raw = json.dumps({"callbackTxnId": txn, "transactionStatus": "SUCCESS", "referenceId": reference}).encode()
    signature = hmac.new(DEMO_WEBHOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    observed.system.webhooks.receive(raw, signature=signature)


def _payment(observed: Observed) -> str:
    envelope = observed.service.initiate_payment(
        {"amount": 30, "customer_details": {"name": NAME, "email": EMAIL, "phone": PHONE}}, user_id=USER)
    return str(envelope["data"]["reference_id"])


# -- Prometheus ------------------------------------------------------------------------------


def test_calls_are_counted_by_operation_module_and_outcome_with_their_latency(observed: Observed) -> None:
    observed.service.verify_pan(PAN, NAME)
    observed.service.verify_pan("ABCDE0000F")  # the emulator's invalid PAN: a business FAILURE
    call = {"operation": "pan", "module": "kyc"}
    assert observed.sample("decentro_calls_total", **call, outcome="SUCCESS") == 1
    assert observed.sample("decentro_calls_total", **call, outcome="FAILURE") == 1
    assert observed.sample("decentro_call_errors_total", **call, code="INVALID_DOCUMENT") == 1
    assert observed.sample("decentro_requests_total", **call, result="2xx") == 2
    assert observed.sample("decentro_request_duration_seconds_count", **call) == 2
    assert observed.sample("decentro_call_duration_seconds_count", **call, outcome="SUCCESS") == 1


def test_upstream_errors_and_retries_are_counted_by_code(observed: Observed) -> None:
    with pytest.raises(UpstreamError):
        observed.service.verify_pan("ABCDE0503F")  # the emulator answers 503 every time
    call = {"operation": "pan", "module": "kyc"}
    assert observed.sample("decentro_requests_total", **call, result="UPSTREAM_UNAVAILABLE") == 2
    assert observed.sample("decentro_retries_total", **call) == 1
    assert observed.sample("decentro_calls_total", **call, outcome="ERROR") == 1
    assert observed.sample("decentro_call_errors_total", **call, code="UPSTREAM_UNAVAILABLE") == 1


def test_cache_hits_misses_and_single_flight_waits_are_counted(observed: Observed) -> None:
    for _ in range(3):
        observed.service.verify_pan(PAN, user_id=USER, consent=CONSENT)
    assert observed.sample("decentro_cache_lookups_total", operation="pan", result="miss") == 1
    assert observed.sample("decentro_cache_lookups_total", operation="pan", result="hit") == 2
    assert observed.sample("decentro_single_flight_wait_seconds_count", operation="pan", won="true") == 1
    assert observed.sample("decentro_calls_total", operation="pan", module="kyc", outcome="SUCCESS") == 1


def test_callbacks_are_counted_by_outcome_and_reason(observed: Observed) -> None:
    reference = _payment(observed)
    _callback(observed, reference, "CB-1")
    _callback(observed, reference, "CB-1")
    observed.system.webhooks.receive(b"{}", signature="00" * 32)
    assert observed.sample("decentro_webhooks_total", outcome="received", reason="") == 3
    assert observed.sample("decentro_webhooks_total", outcome="processed", reason="SUCCESS") == 1
    assert observed.sample("decentro_webhooks_total", outcome="duplicate", reason="") == 1
    assert observed.sample("decentro_webhooks_total", outcome="rejected", reason="WEBHOOK_SIGNATURE_INVALID") == 1


def test_the_breaker_state_is_a_gauge_and_its_changes_are_counted() -> None:
    registry = CollectorRegistry()
    instruments = PrometheusInstruments(registry)
    instruments.breaker("kyc", "opened")
    instruments.breaker("kyc", "rejected")
    assert registry.get_sample_value("decentro_circuit_open", {"module": "kyc"}) == 1
    instruments.breaker("kyc", "closed")
    assert registry.get_sample_value("decentro_circuit_open", {"module": "kyc"}) == 0
    assert registry.get_sample_value("decentro_circuit_events_total", {"module": "kyc", "event": "rejected"}) == 1


def test_event_dispatch_is_counted_and_unexpected_label_values_are_folded_into_other() -> None:
    registry = CollectorRegistry()
    instruments = PrometheusInstruments(registry)
    instruments.event_dispatch("payment.succeeded", "delivered")
    instruments.event_dispatch("has spaces and / slashes", "delivered")
    for n in range(100):  # a flood of distinct codes cannot make a series each
        instruments.webhook("rejected", reason=f"CODE_{n}")
    assert registry.get_sample_value("decentro_events_dispatched_total",
                                     {"event_type": "payment.succeeded", "outcome": "delivered"}) == 1
    assert registry.get_sample_value("decentro_events_dispatched_total",
                                     {"event_type": "other", "outcome": "delivered"}) == 1
    reasons = {s.labels["reason"] for m in registry.collect() if m.name == "decentro_webhooks"
               for s in m.samples}
    assert "other" in reasons and len(reasons) <= 65


def test_two_instruments_on_one_registry_share_its_metrics() -> None:
    registry = CollectorRegistry()
    PrometheusInstruments(registry).cache("pan", "hit")
    PrometheusInstruments(registry).cache("pan", "hit")  # no "Duplicated timeseries" error
    assert registry.get_sample_value("decentro_cache_lookups_total", {"operation": "pan", "result": "hit"}) == 2


def test_multiprocess_mode_adds_up_every_worker(tmp_path: Path) -> None:
    """Under gunicorn each worker writes to PROMETHEUS_MULTIPROC_DIR; the endpoint reads them all."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    worker = textwrap.dedent("""
        from decentro_adapters.observability.prometheus import PrometheusInstruments
        i = PrometheusInstruments()
        i.call("pan", "kyc").end(status="SUCCESS", reference_id="r", error_code=None, seconds=0.01)
        i.breaker("kyc", "opened")
    """)
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=60)
    reader = ("from decentro_adapters.observability.prometheus import collect\n"
              "print(collect()[0].decode())")
    text = subprocess.run([sys.executable, "-c", reader], env=env, check=True, timeout=60, capture_output=True,
                          text=True).stdout
    assert 'decentro_calls_total{module="kyc",operation="pan",outcome="SUCCESS"} 2.0' in text


def test_settings_choose_the_instruments_and_name_a_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert instruments_from_settings(Settings()) is LOG_INSTRUMENTS
    both = instruments_from_settings(Settings(metrics="prometheus", tracing="otel"))
    assert isinstance(both, FanOut)
    assert [type(m).__name__ for m in both.members] == ["LogInstruments", "PrometheusInstruments",
                                                        "OpenTelemetryInstruments"]
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if the extra were not installed
    monkeypatch.delitem(sys.modules, "decentro_adapters.observability.prometheus")
    with pytest.raises(ConfigurationError, match=r"flask-decentro\[metrics\]"):
        instruments_from_settings(Settings(metrics="prometheus"))


def test_a_default_build_loads_neither_prometheus_client_nor_opentelemetry(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from decentro_adapters.bootstrap import build
        from decentro_core.settings import Settings
        with build(Settings(use_mocks=True, database_url="sqlite:///{tmp_path}/d.sqlite3")) as system:
            system.service.verify_pan("ABCDE1234F")
        print(sorted(m for m in ("prometheus_client", "opentelemetry") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", script], check=True, timeout=120, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


# -- OpenTelemetry ---------------------------------------------------------------------------


def test_each_decentro_call_is_one_client_span_with_its_attributes(observed: Observed) -> None:
    envelope = observed.service.verify_pan(PAN, NAME)
    [span] = observed.spans.get_finished_spans()
    assert span.name == "decentro pan" and span.kind.name == "CLIENT"
    attributes = dict(span.attributes or {})
    assert set(attributes) == set(SPAN_ATTRIBUTES) - {"decentro.error_code"}
    assert attributes["decentro.operation"] == "pan" and attributes["decentro.module"] == "kyc"
    assert attributes["decentro.reference_id"] == envelope["data"]["reference_id"]
    assert attributes["decentro.status"] == "SUCCESS" and attributes["decentro.attempt"] == 1
    assert isinstance(attributes["decentro.duration_ms"], float)
    [event] = span.events
    assert event.name == "decentro.attempt" and dict(event.attributes or {})["http.response.status_code"] == 200


def test_a_failed_call_sets_the_error_code_and_the_span_status(observed: Observed) -> None:
    with pytest.raises(UpstreamError):
        observed.service.verify_pan("ABCDE0503F")
    [span] = observed.spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None and span.attributes["decentro.error_code"] == "UPSTREAM_UNAVAILABLE"
    assert span.attributes["decentro.attempt"] == 2
    references = [dict(e.attributes or {})["decentro.reference_id"] for e in span.events]
    assert len(set(references)) == 2  # a READ retry gets a fresh reference id


def test_spans_nest_under_the_callers_span(observed: Observed) -> None:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    registry = CollectorRegistry()
    instruments = FanOut([PrometheusInstruments(registry), OpenTelemetryInstruments(tracer_provider=provider)])
    system = build(observed.service.settings, instruments=instruments)
    try:
        with provider.get_tracer("test").start_as_current_span("POST /api/kyc/pan") as parent:
            system.service.verify_pan(PAN)
    finally:
        system.close()
    child = next(s for s in exporter.get_finished_spans() if s.name == "decentro pan")
    assert child.parent is not None and child.parent.span_id == parent.get_span_context().span_id


def test_the_awaitable_service_keeps_the_callers_span_as_parent(observed: Observed) -> None:
    import asyncio

    from decentro_core.async_service import DecentroService

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    system = build(observed.service.settings, instruments=OpenTelemetryInstruments(tracer_provider=provider))

    async def handler() -> Any:
        with provider.get_tracer("test").start_as_current_span("GET /verify") as parent:
            async with DecentroService(blocking=system.service) as decentro:
                await decentro.verify_pan(PAN)
        return parent

    parent = asyncio.run(handler())
    child = next(s for s in exporter.get_finished_spans() if s.name == "decentro pan")
    assert child.parent is not None and child.parent.span_id == parent.get_span_context().span_id


# -- logs and personal data ------------------------------------------------------------------


def test_json_lines_carry_the_structured_fields(observed: Observed, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    envelope = observed.service.verify_pan(PAN, NAME)
    line = next(r for r in caplog.records if getattr(r, "attempt", None) == 1)
    out = json.loads(JsonFormatter().format(line))
    assert out["operation"] == "pan" and out["status"] == "SUCCESS" and out["attempt"] == 1
    assert out["reference_id"] == envelope["data"]["reference_id"] and out["level"] == "INFO"
    assert isinstance(out["duration_ms"], float) and out["time"].endswith("+00:00")


def test_the_json_formatter_masks_what_looks_personal_as_a_safety_net() -> None:
    record = logging.LogRecord("app", logging.WARNING, __file__, 1, "user %s %s %s", (PAN, EMAIL, ACCOUNT), None)
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "user ABCDE****F a*********@example.com ********9011"
    assert scrub("took 12 ms, ref 3f2a-11") == "took 12 ms, ref 3f2a-11"


def test_no_metric_span_or_log_record_carries_personal_data(observed: Observed,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    observed.service.verify_pan(PAN, NAME, user_id=USER, consent=CONSENT)
    observed.service.verify_pan(PAN, NAME, user_id=USER, consent=CONSENT)  # a cache hit
    observed.service.verify_bank(ACCOUNT, IFSC, NAME, user_id=USER, consent=CONSENT)
    reference = _payment(observed)
    _callback(observed, reference, "CB-2")
    observed.service.get_payment_status(reference, user_id=USER)
    with pytest.raises(UpstreamError):
        observed.service.verify_pan("ABCDE0503F", NAME)

    spans = observed.spans.get_finished_spans()
    assert len(spans) >= 4
    traced = [repr(dict(s.attributes or {})) for s in spans] + [
        repr(dict(e.attributes or {})) for s in spans for e in s.events] + [s.name for s in spans]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("decentro", "flask_decentro")]
    for record in ours:  # (peewee's own DEBUG lines show SQL parameters: the stored user id, sealed bodies)
        handler.handle(record)
    logged = [r.getMessage() + repr(vars(r)) for r in ours] + [stream.getvalue()]
    everything = "\n".join([observed.metrics_text(), *traced, *logged])
    assert "decentro_calls_total" in everything and "decentro pan" in everything and len(ours) > 10
    assert [value for value in PERSONAL if value in everything] == []
    references = {dict(s.attributes or {}).get("decentro.reference_id") for s in spans} | {reference}
    assert [r for r in references if r and r in observed.metrics_text()] == []  # never a label
