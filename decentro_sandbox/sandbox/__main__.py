"""``decentro-sandbox`` / ``python -m decentro_sandbox.sandbox``: run the sandbox in the foreground.

Example::

    decentro-sandbox --port 8765 --callback-url http://127.0.0.1:5000/decentro/webhook \\
        --fault /v2/payments/upi/link:503:2 --latency uniform:5:50 --random-faults 0.2 --seed 7
    decentro-sandbox --uidai-cert-out sandbox-uidai.pem   # then DECENTRO_UIDAI_CERT=sandbox-uidai.pem
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from ..core import Credentials, SandboxUidaiSigner
from ..credentials import MODULES
from .faults import FAULT_KINDS
from .server import DEFAULT_CREDENTIALS, SandboxServer

__all__ = ["build_parser", "main", "options_from_args"]


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULT_CREDENTIALS
    p = argparse.ArgumentParser(prog="decentro-sandbox", description="Offline Decentro sandbox server.")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--client-id", default=d.client_id)
    p.add_argument("--client-secret", default=d.client_secret)
    p.add_argument("--module-secret", default=d.module_secrets["kyc"], help="the same for every module")
    p.add_argument("--provider-secret", default=d.provider_secret, help="payments provider_secret")
    p.add_argument("--no-auth", action="store_true", help="accept requests without credentials")
    p.add_argument("--kyc-without-module-secret", action="store_true",
                   help="accept KYC calls with only client_id/client_secret (unconfirmed by Decentro's docs)")
    p.add_argument("--banking-provider-secret", metavar="SECRET",
                   help="require this provider_secret on validate_account (unconfirmed by Decentro's docs)")
    p.add_argument("--expired-module", action="append", default=[], choices=MODULES,
                   help="answer this module's calls with error_module_access_expired (repeatable)")
    p.add_argument("--uidai-key", metavar="FILE", help="PEM key signing offline e-KYC files (made there if absent)")
    p.add_argument("--uidai-cert-out", metavar="FILE", help="write the offline e-KYC signer's certificate (PEM)")
    p.add_argument("--faults", metavar="FILE", help="JSON fault plan (faults, latency, random)")
    p.add_argument("--fault", action="append", default=[], metavar="PATH:KIND[:COUNT[:DELAY_MS]]",
                   help=f"next COUNT answers on PATH (* = any) are KIND: {', '.join(sorted(FAULT_KINDS))}")
    p.add_argument("--latency", metavar="SPEC", help="fixed:MS | uniform:LOW:HIGH | normal:MEAN:SD (ms)")
    p.add_argument("--random-faults", type=float, default=0.0, metavar="RATE", help="share of answers faulted")
    p.add_argument("--random-kinds", default="500,503,429,reset,malformed", help="kinds for --random-faults")
    p.add_argument("--seed", type=int, default=None, help="seed for ids, latency and random faults")
    p.add_argument("--timeout-delay", type=float, default=35.0, help="seconds a timeout holds the answer")
    p.add_argument("--callback-url", help="where terminal payments are POSTed")
    p.add_argument("--callback-secret", default="sandbox-webhook-secret", help="HMAC-SHA256 key for callbacks")
    p.add_argument("--callback-attempts", type=int, default=3)
    p.add_argument("--duplicate-callbacks", action="store_true", help="send every callback twice")
    p.add_argument("--reorder-callbacks", action="store_true", help="send callbacks in swapped pairs")
    p.add_argument("--sms-path", default="/v2/notifications/sms")
    p.add_argument("--email-path", default="/v2/notifications/email")
    return p


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for :class:`SandboxServer` from parsed CLI arguments."""
    plan: dict[str, Any] = {}
    if args.faults:
        with open(args.faults, encoding="utf-8") as handle:
            plan = json.load(handle)
    plan.setdefault("faults", [])
    plan["faults"] = list(plan["faults"]) + [_fault_flag(spec) for spec in args.fault]
    if args.latency:
        plan["latency"] = _latency_flag(args.latency)
    if args.random_faults:
        plan["random"] = {"rate": args.random_faults, "kinds": args.random_kinds.split(",")}
    credentials = None if args.no_auth else Credentials.same_for_every_module(
        client_id=args.client_id, client_secret=args.client_secret,
        module_secret=args.module_secret, provider_secret=args.provider_secret,
        provider_secrets={"banking": args.banking_provider_secret} if args.banking_provider_secret else {},
        expired_modules=frozenset(args.expired_module),
        optional_module_secret=frozenset({"kyc"}) if args.kyc_without_module_secret else frozenset(),
    )
    signer = SandboxUidaiSigner.from_file(args.uidai_key) if args.uidai_key else None
    return {
        "host": args.host, "port": args.port, "credentials": credentials, "faults": plan,
        "timeout_delay": args.timeout_delay, "seed": args.seed, "callback_url": args.callback_url,
        "callback_secret": args.callback_secret, "callback_attempts": args.callback_attempts,
        "duplicate_callbacks": args.duplicate_callbacks, "reorder_callbacks": args.reorder_callbacks,
        "sms_path": args.sms_path, "email_path": args.email_path,
        "uidai_signer": signer, "uidai_cert_out": args.uidai_cert_out,
    }


def _fault_flag(spec: str) -> dict[str, Any]:
    path, kind, *more = spec.split(":") + ([] if ":" in spec else [""])
    fault: dict[str, Any] = {"path": path or "*", "kind": kind}
    if more:
        fault["count"] = int(more[0])
    if len(more) > 1:
        fault["delay_ms"] = float(more[1])
    return fault


def _latency_flag(spec: str) -> dict[str, Any]:
    kind, *numbers = spec.split(":")
    names = {"fixed": ("ms",), "uniform": ("low_ms", "high_ms"), "normal": ("mean_ms", "stddev_ms")}
    if kind not in names or len(numbers) != len(names[kind]):
        raise argparse.ArgumentTypeError("latency: fixed:MS, uniform:LOW:HIGH or normal:MEAN:SD")
    return {"kind": kind, **{name: float(n) for name, n in zip(names[kind], numbers)}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        server = SandboxServer(**options_from_args(args))
    except (OSError, ValueError, argparse.ArgumentTypeError) as exc:
        parser.error(str(exc))
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    server.start()
    print(f"Decentro sandbox listening on {server.url}", flush=True)
    if args.uidai_cert_out:
        print(f"Offline e-KYC signer certificate (sandbox key, not UIDAI's): {args.uidai_cert_out}", flush=True)
    try:
        done.wait()
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
