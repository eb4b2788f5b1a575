"""Key rotation speed: ``python -m bench.rotation [--values N]`` re-seals N operations' two
sealed columns (2N values) on a fresh PostgreSQL database and on a SQLite file, and prints the
microseconds per value (Fernet's decrypt and encrypt included)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from .common import on_each_database

__all__ = ["main", "rotate_timed"]

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)


def rotate_timed(url: str, operations: int, *, batch_size: int = 500) -> dict[str, Any]:
    from decentro_adapters.sql.stores import open_stores
    from decentro_adapters.vault.fernet import FernetVault
    from decentro_adapters.vault.rotation import generate_key, rotate_sealed_values

    old_key, new_key = generate_key(), generate_key()
    old = FernetVault([old_key])
    with open_stores(url, vault=old, schema="upgrade") as stores:
        tokens = [old.seal(f"result {i}".encode()) for i in range(operations)]
        with stores.database.atomic():
            for start in range(0, operations, 1000):
                stores.models.operation.insert_many([
                    {"reference_id": f"rotation-{i}", "operation": "pan", "status": "SUCCESS", "created_at": T0,
                     "updated_at": T0, "sealed_request": tokens[i], "sealed_result": tokens[i]}
                    for i in range(start, min(operations, start + 1000))
                ]).execute()
        started = time.perf_counter()
        report = rotate_sealed_values(stores, FernetVault([new_key, old_key]), batch_size=batch_size)
        seconds = time.perf_counter() - started
    return {"values": report.rotated, "seconds": seconds, "us_per_value": seconds / report.rotated * 1e6,
            "batch_size": batch_size}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rotation", description=__doc__)
    parser.add_argument("--values", type=int, default=20_000, help="operations (two sealed values each)")
    args = parser.parse_args(argv)
    on_each_database("rotation", lambda url: rotate_timed(url, args.values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
