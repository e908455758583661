"""The machine-readable description that travels on every disc.

``manifest.json`` maps every disc path back to the original name, albums and
item id; ``manifest-sha256.txt`` lists every payload file's sha256 in the
BagIt / ``sha256sum -c`` format.  Both are deterministic: the same planned
disc always gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from exporter.layout import DiscFile

SCHEMA = "discsub-manifest"
SCHEMA_VERSION = 1
MANIFEST_JSON = "manifest.json"
MANIFEST_SHA256 = "manifest-sha256.txt"


def encode_bagit_path(path: str) -> str:
    """RFC 8493 §2.1.3: CR, LF and % in a manifest path are percent-encoded."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_bagit_path(path: str) -> str:
    return path.replace("%0D", "\r").replace("%0A", "\n").replace("%0d", "\r").replace("%0a", "\n").replace("%25", "%")


def payload_manifest(files: Iterable[DiscFile]) -> bytes:
    """``<sha256>  <path>`` for every payload path (hard links listed under each name)."""
    lines = sorted(f"{f.sha256}  {encode_bagit_path(p)}\n" for f in files for p in f.all_paths)
    return "".join(lines).encode("utf-8")


def parse_payload_manifest(data: bytes) -> dict[str, str]:
    """path -> sha256, from a ``manifest-sha256.txt``."""
    result = {}
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        digest, _, path = line.partition(" ")
        result[decode_bagit_path(path.lstrip(" *"))] = digest.lower()
    return result


def manifest_json(
    disc: dict[str, Any], entries: Sequence[dict[str, Any]], held_back: Sequence[dict[str, Any]]
) -> bytes:
    """Serialise the manifest.  ``disc`` and ``entries`` are plain dicts made
    by :mod:`exporter.contents`, already in a stable order."""
    document = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "disc": disc,
        "entries": list(entries),
        "held_back": list(held_back),
    }
    return (json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True) + "\n").encode("utf-8")
