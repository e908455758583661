"""README.txt: the disc explains itself to a person (DESIGN §4).

Rendered from ``templates/disc/README.txt`` with the manifest document, so
it says nothing the manifest does not.  UTF-8 with a byte order mark and
CRLF line endings: every Notepad since Windows XP shows it right, and so do
macOS and Linux.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection, Mapping
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string

from exporter.media import Medium

README_TXT = "README.txt"
RESTORE_PY = "restore.py"
REPAIR_PY = "repair.py"
TEMPLATE = "disc/README.txt"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_PAR2_VOLUME = re.compile(r"\.vol\d+\+\d+\.par2$", re.IGNORECASE)


def _one_line(value: str) -> str:
    return " ".join(_CONTROL.sub(" ", value).split())


def _par2_indexes(present: Collection[str]) -> list[str]:
    """The index file of every PAR2 set (``recovery/data.par2``, or
    ``data-01.par2``, ``data-02.par2`` … on a disc of many files), not the volumes."""
    return sorted(
        p for p in present if p.startswith("recovery/") and p.endswith(".par2") and not _PAR2_VOLUME.search(p)
    )


def _base(path: str | None) -> str:
    return (path or "").rsplit("/", 1)[-1]


def _split_files(document: Mapping[str, Any]) -> list[dict]:
    """What README.txt says about each part of a split file on the disc:
    where the other parts are and, on the disc that completes the file, the
    exact commands that join it."""
    described = []
    for record in document.get("parts", []):
        part, parts = record["part"], record["parts"]
        names = [_base(p["path"]) for p in parts]
        joined = _base(record["path"])
        described.append(
            {
                "name": _one_line(record["original_name"]),
                "number": part["number"],
                "count": part["count"],
                "path": part["path"],
                "completes": record["completes"],
                "where": [(p["number"], p["disc"], p["path"]) for p in parts],
                "windows": "copy /b " + " + ".join(f'"{n}"' for n in names) + f' "{joined}"',
                "unix": "cat " + " ".join(shlex.quote(n) for n in names) + f" > {shlex.quote(joined)}",
                "joined": joined,
                "sha256": record["sha256"],
                "size": record["size"],
            }
        )
    return described


def readme_txt(document: Mapping[str, Any], present: Collection[str], sector_parity: int = 0) -> bytes:
    """README.txt for the disc described by ``document`` (a manifest), whose
    other files are at ``present`` (so it mentions only what is there), and
    whose image carries sector recovery data at ``sector_parity`` layers
    (a disc of layout 3 or later; older discs' text does not change)."""
    disc, changes = document["disc"], document["changes"]
    files = document["files"]
    if files:
        example, example_manifest = files[0]["path"], "manifest-sha256.txt"
    else:
        example, example_manifest = "manifest.json", "tagmanifest-sha256.txt"
    subscriber = _one_line(disc["subscriber"])
    heading = f"DISC {disc['number']} OF THE PHOTO LIBRARY OF {subscriber.upper()}"
    captured = disc["captured"]
    context = {
        "disc": disc,
        "subscriber": subscriber,
        "heading": heading,
        "rule": "=" * min(len(heading), 79),
        "organization": _one_line(settings.DISCSUB_ORGANIZATION),
        "made_on": disc["planned_at"][:10],
        "medium": Medium(disc["medium"]).label if disc["medium"] in Medium.values else disc["medium"],
        "captured_first": (captured["first"] or "")[:10],
        "captured_last": (captured["last"] or "")[:10],
        # A file split across discs counts on the disc that completes it.
        "files": len(files) + sum(1 for p in document.get("parts", []) if p["completes"]),
        "added": len(changes["added"]),
        "new_versions": len(changes["new_version"]),
        "edited": len(changes["edited"]),
        "deleted": len(changes["deleted"]),
        "held_back": len(document["held_back"]),
        "has_index": "index.html" in present,
        "has_restore": RESTORE_PY in present,
        "has_repair": REPAIR_PY in present and sector_parity > 0,
        "parity": sector_parity,
        "data_sectors": 255 - sector_parity,
        "redundancy": f"{100 * sector_parity / max(1, 255 - sector_parity):.1f}",
        "par2": _par2_indexes(present),
        "example": example,
        "example_windows": example.replace("/", "\\"),
        "example_manifest": example_manifest,
        "split": _split_files(document),
    }
    text = render_to_string(TEMPLATE, context)
    text = re.sub(r"\n{3,}", "\n\n", text.replace("\r\n", "\n")).strip("\n") + "\n"
    return ("\ufeff" + text.replace("\n", "\r\n")).encode("utf-8")
