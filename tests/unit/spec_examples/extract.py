"""Extract every example response of Decentro's published OpenAPI specs into test vectors.

Sources (both MIT licensed, (c) Decentro; the examples are copied with attribution):

* KYC: ``decentro-in/decentro-in-kyc-sdk-go``, ``api/openapi.yaml`` at commit
  ``09cef07fb65a2873c8e5dfb959e0c16d0b556473`` (the file is deleted at the repository's HEAD).
* Collections: ``decentro-in/decentro-in-collections-sdk-java``, ``api/openapi.yaml`` at commit
  ``07a7eb3b93e5ca9065331fe0f8940697da4ad02f``.

Usage (CI has no network, so the output is committed as ``vectors.json``)::

    git -C <kyc-sdk-go> show 09cef07:api/openapi.yaml > kyc.yaml
    git -C <collections-sdk-java> show 07a7eb3:api/openapi.yaml > collections.yaml
    python tests/unit/spec_examples/extract.py kyc.yaml collections.yaml > tests/unit/spec_examples/vectors.json

An example is taken from, in this order: the media type's named ``examples``, its single
``example``, or else the referenced response schema's own ``example``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml

SOURCES = {
    "kyc": {"repository": "https://github.com/decentro-in/decentro-in-kyc-sdk-go",
            "path": "api/openapi.yaml", "commit": "09cef07fb65a2873c8e5dfb959e0c16d0b556473", "license": "MIT"},
    "collections": {"repository": "https://github.com/decentro-in/decentro-in-collections-sdk-java",
                    "path": "api/openapi.yaml", "commit": "07a7eb3b93e5ca9065331fe0f8940697da4ad02f",
                    "license": "MIT"},
}


def _schema(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        return dict(spec["components"]["schemas"][ref.rsplit("/", 1)[-1]])
    return node


def _examples(spec: dict[str, Any], media: dict[str, Any]) -> list[tuple[str, Any]]:
    named = media.get("examples") or {}
    if named:
        return [(name, value.get("value")) for name, value in named.items()]
    if "example" in media:
        return [("example", media["example"])]
    schema = _schema(spec, media.get("schema") or {})
    return [("schema example", schema["example"])] if "example" in schema else []


def vectors(source: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                for media in (response.get("content") or {}).values():
                    for name, body in _examples(spec, media):
                        found.append({"source": source, "operation_id": operation.get("operationId"),
                                      "method": method.upper(), "path": path, "http_status": str(status),
                                      "example": name, "body": body})
    return found


def main(kyc_path: str, collections_path: str) -> None:
    out = []
    for source, path in (("kyc", kyc_path), ("collections", collections_path)):
        with open(path, encoding="utf-8") as handle:
            out.extend(vectors(source, yaml.safe_load(handle)))
    document = {"attribution": "Example responses from Decentro's OpenAPI specs, MIT licensed, (c) Decentro; "
                               "extracted by tests/unit/spec_examples/extract.py",
                "sources": SOURCES, "vectors": out}
    # Compact, one vector a line (diffs stay readable).
    head = json.dumps({k: v for k, v in document.items() if k != "vectors"}, sort_keys=True, ensure_ascii=False)
    lines = [json.dumps(vector, sort_keys=True, ensure_ascii=False, separators=(",", ":")) for vector in out]
    sys.stdout.write(head[:-1] + ', "vectors": [\n' + ",\n".join(lines) + "\n]}\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
