"""What observability costs per Decentro call: ``python -m bench.observability``.

Two measures. **Isolated**: the instruments' own work for one call exactly as the runner does
it (open the call, time and report one request, end it), ``ISOLATED_CALLS`` times, with nothing
else around it: the cleanest figure of the overhead. **In a call**: one PAN check through the
blocking service over in-memory ports and a gateway that answers at once, so the call is all
library code (validation, consent, record, audit, sealing) and the instruments' share shows.
Each configuration runs ``CALLS`` calls per round, rounds interleaved, and the median of the
rounds is reported as microseconds per call, with the difference to the run without instruments. Needs the dev extra (prometheus_client, the OpenTelemetry SDK).
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from decentro_adapters.aadhaar.mock import MockAadhaarVerifier
from decentro_core.memory import memory_ports
from decentro_core.observability import (
    LOG_INSTRUMENTS,
    NO_INSTRUMENTS,
    FanOut,
    Instruments,
    current_call,
    observed_call,
)
from decentro_core.ports import GatewayRequest, GatewayResponse
from decentro_core.service import BlockingDecentroService
from decentro_core.settings import Settings

__all__ = ["isolated", "main", "measure"]

CALLS = 1_500
ROUNDS = 7
ISOLATED_CALLS = 30_000
ANSWER = GatewayResponse(200, {"decentroTxnId": "TXN-BENCH", "status": "SUCCESS", "responseCode": "S00000",
                               "kycStatus": "SUCCESS",
                               "kycResult": {"idNumber": "ABCDE1234F", "idStatus": "VALID", "name": "Bench Person"}})


class InstantGateway:
    """Decentro answering at once, so only the library's own work is timed."""

    def send(self, request: GatewayRequest) -> GatewayResponse:
        return ANSWER


def _prometheus() -> Instruments:
    from prometheus_client import CollectorRegistry

    from decentro_adapters.observability.prometheus import PrometheusInstruments

    return PrometheusInstruments(CollectorRegistry())


def _otel() -> Instruments:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from decentro_adapters.observability.otel import OpenTelemetryInstruments

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instruments = OpenTelemetryInstruments(tracer_provider=provider)
    instruments.exporter = exporter  # type: ignore[attr-defined]  # cleared between rounds
    return instruments


CONFIGURATIONS: dict[str, Callable[[], Instruments]] = {
    "none (NO_INSTRUMENTS)": lambda: NO_INSTRUMENTS,
    "default, INFO off (LOG_INSTRUMENTS)": lambda: LOG_INSTRUMENTS,
    "prometheus": lambda: FanOut([LOG_INSTRUMENTS, _prometheus()]),
    "otel (SDK, in-memory exporter)": lambda: FanOut([LOG_INSTRUMENTS, _otel()]),
    "prometheus + otel": lambda: FanOut([LOG_INSTRUMENTS, _prometheus(), _otel()]),
}


class _Declared:
    name, module = "pan", "kyc"


class _BareRunner:
    """Only what ``OperationRunner.run`` and ``_send`` do for the instruments."""

    ENVELOPE = {"status": "SUCCESS", "data": {"reference_id": "3f1c2a9e-bench"}}

    def __init__(self, instruments: Instruments) -> None:
        self.instruments, self.monotonic = instruments, time.monotonic

    @observed_call
    def run(self, operation: _Declared) -> dict[str, Any]:
        observer, started = current_call(), self.monotonic()
        observer.attempt("3f1c2a9e-bench", seconds=self.monotonic() - started, status_code=200)
        return self.ENVELOPE


def isolated(calls: int = ISOLATED_CALLS, rounds: int = ROUNDS) -> dict[str, float]:
    """Median microseconds of instrument work per call, for each configuration."""
    logging.getLogger("decentro").setLevel(logging.WARNING)
    runners = {name: _BareRunner(make()) for name, make in CONFIGURATIONS.items()}
    samples: dict[str, list[float]] = {name: [] for name in runners}
    operation = _Declared()
    for _ in range(rounds):
        for name, runner in runners.items():
            started = time.perf_counter()
            for _ in range(calls):
                runner.run(operation)
            samples[name].append((time.perf_counter() - started) / calls * 1e6)
            _clear_spans(runner.instruments)
    return {name: round(statistics.median(values), 2) for name, values in samples.items()}


def _clear_spans(instruments: Instruments) -> None:
    for member in (instruments, *getattr(instruments, "members", ())):
        exporter = getattr(member, "exporter", None)
        if exporter is not None:
            exporter.clear()


def _service(instruments: Instruments) -> BlockingDecentroService:
    ports = memory_ports(InstantGateway(), aadhaar_verifier=MockAadhaarVerifier())
    ports = type(ports)(**{**vars(ports), "instruments": instruments})
    return BlockingDecentroService(Settings(use_mocks=True), ports, sleep=lambda seconds: None)


def _round(service: BlockingDecentroService, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        service.verify_pan("ABCDE1234F")
    return (time.perf_counter() - started) / calls * 1e6


def measure(calls: int = CALLS, rounds: int = ROUNDS) -> dict[str, dict[str, float]]:
    """Median microseconds per call for each configuration, and the difference to none."""
    logging.getLogger("decentro").setLevel(logging.WARNING)  # as a host app that logs WARNING and up
    built = {name: make() for name, make in CONFIGURATIONS.items()}
    samples: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, instruments in built.items():
            service = _service(instruments)  # fresh in-memory stores each round
            _round(service, 200)  # warm-up
            samples[name].append(_round(service, calls))
            _clear_spans(instruments)
    base = statistics.median(samples[next(iter(samples))])
    return {name: {"us_per_call": round(statistics.median(values), 1),
                   "overhead_us": round(statistics.median(values) - base, 1),
                   "overhead_pct": round((statistics.median(values) - base) / base * 100, 1)}
            for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    alone = isolated()
    results = measure()
    width = max(map(len, results))
    print(f"{'instruments':<{width}}  isolated us/call | PAN check us/call  difference")
    for name, figures in results.items():
        print(f"{name:<{width}}  {alone[name]:16.2f} | {figures['us_per_call']:17.1f}  "
              f"{figures['overhead_us']:+6.1f} us ({figures['overhead_pct']:+.1f}%)")
    if argv and "--json" in argv:
        print(json.dumps({"isolated_us_per_call": alone, "pan_check": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
