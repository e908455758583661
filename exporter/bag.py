"""The disc as a BagIt 1.0 bag (RFC 8493).

The disc root is the bag; ``data/`` is its payload (originals and their XMP
sidecars).  Everything else at the root is a tag file.  These are pure
functions over :class:`~exporter.layout.DiscFile` lists: the same files give
the same bytes, whenever and wherever the disc is built.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from exporter import manifest
from exporter.layout import DiscFile

BAGIT_TXT = "bagit.txt"
BAG_INFO = "bag-info.txt"
TAG_MANIFEST = "tagmanifest-sha256.txt"
PAYLOAD_DIR = "data/"
# RFC 8493 §2.2.2 recommends lines of at most 79 characters; longer values
# are folded onto continuation lines that start with white space.
MAX_LINE = 79

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def is_payload(path: str) -> bool:
    return path.startswith(PAYLOAD_DIR)


def bagit_txt() -> bytes:
    return b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def payload_oxum(files: Sequence[DiscFile]) -> str:
    """``octets.streamcount`` of the payload.  A hard-linked file counts once
    per path: extracting the disc makes a file of each."""
    paths = [(f.size, p) for f in files for p in f.all_paths if is_payload(p)]
    return f"{sum(size for size, _ in paths)}.{len(paths)}"


def _fold(label: str, value: str) -> list[str]:
    """``Label: value`` as lines of at most MAX_LINE characters where the
    words allow.  A break replaces nothing: the continuation line starts
    with the space that was there, so unfolding (dropping the line break)
    gives the value back."""
    lines = []
    line = f"{label}:"
    for word in value.split(" "):
        if line.endswith(":") or len(line) + 1 + len(word) <= MAX_LINE:
            line += " " + word
        else:
            lines.append(line)
            line = " " + word
    lines.append(line)
    return lines


def bag_info_txt(fields: Sequence[tuple[str, str]]) -> bytes:
    """``bag-info.txt`` from ``(label, value)`` pairs, in the given order.
    Control characters (a name with a line break in it) become spaces: a
    value must not start a tag line of its own."""
    lines = []
    for label, value in fields:
        clean = " ".join(_CONTROL.sub(" ", str(value)).split())
        lines += _fold(label, clean)
    return ("\n".join(lines) + "\n").encode("utf-8")


def bag_files(info: Sequence[tuple[str, str]], files: Sequence[DiscFile]) -> list[DiscFile]:
    """The bag's own files for a disc holding ``files``: ``bagit.txt``,
    ``bag-info.txt`` (``info`` plus Payload-Oxum), ``manifest-sha256.txt``
    and, last, ``tagmanifest-sha256.txt`` over every other tag file."""
    payload = [f for f in files if is_payload(f.path)]
    declared = [
        DiscFile.from_bytes(BAGIT_TXT, bagit_txt()),
        DiscFile.from_bytes(BAG_INFO, bag_info_txt([*info, ("Payload-Oxum", payload_oxum(payload))])),
        DiscFile.from_bytes(manifest.MANIFEST_SHA256, manifest.payload_manifest(payload)),
    ]
    tags = [f for f in [*files, *declared] if not is_payload(f.path)]
    return [*declared, DiscFile.from_bytes(TAG_MANIFEST, manifest.payload_manifest(tags))]
