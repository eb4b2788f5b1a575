"""What refusing a hostile Aadhaar upload costs, and what verifying a genuine one costs.

``python -m bench.aadhaar_refusal`` (or ``python -m bench --only aadhaar``). Each case runs in
a fresh subprocess so that one case's allocations cannot hide another's: the child builds
the verifier (``max_bytes`` = 5 MiB, the old default, so the size cap alone cannot refuse
these files), refuses one small file to warm up, resets its peak RSS (``/proc/self/clear_refs``),
then measures one ``verify`` call:

- ``cpu_ms``: process CPU time of that first call, and ``cpu_ms_median`` over ``repeats`` more;
- ``peak_rss_growth_kib``: VmHWM after the call minus VmRSS before it (libxml2's memory
  included, which tracemalloc cannot see);
- ``traced_peak_kib``: tracemalloc's peak of Python allocations during a second call;
- ``retained_kib``: VmRSS after the call and a ``gc.collect()`` minus VmRSS before it: what
  a worker keeps (glibc does not hand most freed heap back to the OS).

The hostile files are the ones of issue 10: 1.2 M empty elements (4.8 MB), 5 MB of nesting,
one 5 MB text node, one 5 MB attribute, and a 5 MB file shaped to pass every streaming limit
(the worst case that reaches the signature step). ``genuine`` verifies a signed file of real
size (a 24 KiB photo, about 38 KB of XML), raw and inside its share-code ZIP.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import gc
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

__all__ = ["CASES", "hostile", "run_aadhaar"]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_BYTES = 5 * 1024 * 1024
HOSTILE = ("many_elements", "deep_nesting", "huge_text", "huge_attribute", "passes_limits")
ZIPPED = ("zip_many_elements", "zip_passes_limits")
CASES = (*HOSTILE, *ZIPPED, "genuine")
TEXT_UNDER_LIMIT = 120 * 1024  # just under parsing.XmlLimits.max_text (128 KiB)
_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n<OfflinePaperlessKyc referenceId="123420250301153000000">'
_TAIL = b"</OfflinePaperlessKyc>"
_GENERATED = datetime(2025, 3, 1, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))


_SIGNATURE = (
    b'<Signature xmlns="http://www.w3.org/2000/09/xmldsig#"><SignedInfo>'
    b'<CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>'
    b'<SignatureMethod Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"/>'
    b'<Reference URI=""><DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
    b"<DigestValue>AAAA</DigestValue></Reference></SignedInfo>"
    b"<SignatureValue>AAAA</SignatureValue></Signature>"
)


def hostile(case: str, size: int = 5_000_000) -> bytes:
    """An upload of about ``size`` bytes in UIDAI's layout (``UidData`` and a bogus
    ``Signature``, so nothing short of a limit stops it before the signature step), its
    ``UidData`` shaped as ``case``. ``passes_limits`` is random base64 (it does not compress)."""
    if case == "many_elements":
        body = b"<a/>" * 1_200_000  # 4.8 MB of empty elements, as in the issue
    elif case == "deep_nesting":
        body = b"<a>" * (size // 7) + b"</a>" * (size // 7)
    elif case == "huge_text":
        body = b"<Pht>" + b"A" * size + b"</Pht>"
    elif case == "huge_attribute":
        body = b'<Poi name="' + b"A" * size + b'"/>'
    elif case == "passes_limits":
        # Every text node just under the text limit, few elements, shallow: the most work a
        # file can cause once it is inside every streaming limit.
        count = max(size // (TEXT_UNDER_LIMIT + 11), 1)
        noise = base64.b64encode(hashlib.shake_256(b"bench").digest(count * TEXT_UNDER_LIMIT * 3 // 4))
        body = b"".join(b"<Pht>" + noise[i : i + TEXT_UNDER_LIMIT] + b"</Pht>"
                        for i in range(0, len(noise), TEXT_UNDER_LIMIT))
    else:
        raise ValueError(f"unknown case {case!r}")
    return _HEAD + b"<UidData>" + body + b"</UidData>" + _SIGNATURE + _TAIL


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc), so that RSS growth counts memory the
    call allocated rather than memory it reused from building the input."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
        refs.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def _measure(call: Callable[[], object], repeats: int) -> dict[str, Any]:
    """One measured call (CPU, peak and retained RSS), a traced call, then ``repeats`` more."""
    gc.collect()
    _trim_heap()
    _reset_peak_rss()
    rss_before = _status_kib("VmRSS")
    cpu = time.process_time()
    outcome = call()
    cpu_ms = (time.process_time() - cpu) * 1000
    peak_growth = _status_kib("VmHWM") - rss_before
    gc.collect()
    retained = _status_kib("VmRSS") - rss_before
    slow = cpu_ms > 1000  # tracing a slow case would take minutes; a few repeats suffice
    traced_peak = None
    if not slow:
        tracemalloc.start()
        call()
        traced_peak = tracemalloc.get_traced_memory()[1] // 1024
        tracemalloc.stop()
    times = []
    for _ in range(min(repeats, 2) if slow else repeats):
        cpu = time.process_time()
        call()
        times.append((time.process_time() - cpu) * 1000)
    return {"outcome": outcome, "cpu_ms": cpu_ms, "cpu_ms_median": statistics.median(times),
            "peak_rss_growth_kib": peak_growth, "retained_kib": retained,
            "traced_peak_kib": traced_peak, "repeats": len(times)}


def _refusal(verifier: Any, content: bytes, share_code: str = "0000") -> Callable[[], str]:
    from decentro_core.errors import AadhaarFileRejected

    def call() -> str:
        try:
            verifier.verify(content, share_code)
        except AadhaarFileRejected as error:
            return error.code
        raise RuntimeError("a hostile file was accepted")

    return call


def _child(case: str, repeats: int, max_bytes: int) -> dict[str, Any]:
    sys.path.insert(0, os.path.join(ROOT, "tests", "adapters"))
    import aadhaar_vectors as vectors

    from decentro_adapters.aadhaar.offline import UidaiOfflineVerifier

    verifier = UidaiOfflineVerifier(pinned_keys=[vectors.signer().cert_pem()], max_bytes=max_bytes,
                                    now=lambda: _GENERATED + timedelta(hours=1))
    small = _HEAD + b"<a/>" * 10 + _TAIL
    _refusal(verifier, small)()  # warm-up: imports, lazy initialisation (zipfile's CRC table too)
    _refusal(verifier, vectors.zip_file(small, vectors.SHARE_CODE), vectors.SHARE_CODE)()
    size = min(5_000_000, max_bytes - 1024)  # a larger XML is refused by its size alone
    if case in HOSTILE:
        content = hostile(case, size)
        result = _measure(_refusal(verifier, content), repeats)
        return {"case": case, "bytes": len(content), **result}
    if case in ZIPPED:
        # The attacker writes the ZIP, so knows its share code: zipfile decrypts all of it.
        xml = hostile(case.removeprefix("zip_"), size)
        content = vectors.zip_file(xml, vectors.SHARE_CODE, compress=False)
        result = _measure(_refusal(verifier, content, vectors.SHARE_CODE), repeats)
        return {"case": case, "bytes": len(content), "xml_bytes": len(xml), **result}
    document = vectors.signed_xml(generated_at=_GENERATED, photo=vectors.genuine_size_photo())
    archive = vectors.zip_file(document, vectors.SHARE_CODE)
    verifier.verify(document, vectors.SHARE_CODE)  # warm-up of the success path
    raw = _measure(lambda: verifier.verify(document, vectors.SHARE_CODE).signer, repeats)
    zipped = _measure(lambda: verifier.verify(archive, vectors.SHARE_CODE).signer, repeats)
    return {"case": case, "bytes": len(document), "zip_bytes": len(archive), **raw,
            "zip_cpu_ms_median": zipped["cpu_ms_median"], "zip_peak_rss_growth_kib": zipped["peak_rss_growth_kib"]}


def run_aadhaar(*, repeats: int = 20, cases: Sequence[str] = CASES, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    """Every case in its own fresh interpreter; results keyed by case."""
    results: dict[str, Any] = {"max_bytes": max_bytes, "cases": {}}
    for case in cases:
        command = [sys.executable, "-m", "bench.aadhaar_refusal", "--child", case,
                   "--repeats", str(repeats), "--max-bytes", str(max_bytes)]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"aadhaar bench case {case} failed:\n{done.stderr}")
        results["cases"][case] = json.loads(done.stdout)
    hostile_cases = [results["cases"][c] for c in cases if c in HOSTILE or c in ZIPPED]
    if hostile_cases:
        results["worst_refusal_cpu_ms"] = max(max(c["cpu_ms"], c["cpu_ms_median"]) for c in hostile_cases)
        results["worst_refusal_peak_rss_kib"] = max(c["peak_rss_growth_kib"] for c in hostile_cases)
    if "genuine" in results["cases"]:
        results["genuine_verify_ms"] = results["cases"]["genuine"]["cpu_ms_median"]
    return results


def run_both(*, repeats: int = 20) -> dict[str, Any]:
    """Every case at the old 5 MiB cap, and every case again at the adapter's default cap
    (the value recommended for ``DECENTRO_AADHAAR_MAX_BYTES``)."""
    from decentro_adapters.aadhaar.offline import DEFAULT_MAX_BYTES

    return {"at_5mib": run_aadhaar(repeats=repeats), "at_default": run_aadhaar(repeats=repeats, max_bytes=DEFAULT_MAX_BYTES)}


def metrics(both: dict[str, Any]) -> dict[str, float]:
    """The headline figures for ``python -m bench``: worst refusal of each kind, genuine cost."""
    wide, narrow = both["at_5mib"]["cases"], both["at_default"]["cases"]

    def worst(cases: dict[str, Any], names: Sequence[str], key: str) -> float:
        return float(max(max(cases[n][key], cases[n].get(key + "_median", 0)) for n in names))

    return {
        "aadhaar_xml_refusal_cpu_ms": worst(wide, HOSTILE, "cpu_ms"),
        "aadhaar_xml_refusal_peak_rss_mib": worst(wide, HOSTILE, "peak_rss_growth_kib") / 1024,
        "aadhaar_zip_refusal_cpu_ms": worst(narrow, ZIPPED, "cpu_ms"),
        "aadhaar_zip_refusal_cpu_ms_at_5mib": worst(wide, ZIPPED, "cpu_ms"),
        "aadhaar_genuine_verify_ms": float(narrow["genuine"]["cpu_ms_median"]),
        "aadhaar_genuine_zip_verify_ms": float(narrow["genuine"]["zip_cpu_ms_median"]),
    }


def table(results: dict[str, Any]) -> str:
    """A fixed-width text table for stdout."""
    lines = [f"max_bytes={results['max_bytes']}",
             f"{'case':16} {'bytes':>9} {'outcome':26} {'cpu ms':>8} {'median':>8} {'peak RSS KiB':>13}"
             f" {'traced KiB':>11} {'kept KiB':>9}"]
    for case, r in results["cases"].items():
        lines.append(f"{case:16} {r['bytes']:>9} {r['outcome']:26} {r['cpu_ms']:>8.2f} {r['cpu_ms_median']:>8.2f}"
                     f" {r['peak_rss_growth_kib']:>13} {str(r['traced_peak_kib']):>11} {r['retained_kib']:>9}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.aadhaar_refusal", description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    parser.add_argument("--case", action="append", choices=CASES, help="only these cases (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--child", choices=CASES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.repeats, args.max_bytes)))
        return 0
    results = run_aadhaar(repeats=args.repeats, cases=args.case or CASES, max_bytes=args.max_bytes)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
