"""``python -m decentro_sandbox``: the same as ``decentro-sandbox``."""

from __future__ import annotations

from .sandbox.__main__ import main

if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    raise SystemExit(main())
