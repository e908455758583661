"""From a planned disc to the files of its image.

Used twice with the same inputs: by the planner, to measure the exact image
size before the disc exists, and by the builder.  Everything comes from the
disc's frozen entries, never from the library's current state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.core.files.storage import default_storage

from exporter import manifest
from exporter.layout import DiscFile
from exporter.models import Disc, DiscEntry, EntryKind


def _opener(storage_name: str):
    return lambda: default_storage.open(storage_name, "rb")


def payload_files(entries: Sequence[DiscEntry]) -> list[DiscFile]:
    files = []
    for entry in entries:
        if entry.kind != EntryKind.FILE or entry.held_back:
            continue
        files.append(
            DiscFile(
                path=entry.paths[0],
                links=tuple(entry.paths[1:]),
                size=entry.size,
                sha256=entry.sha256,
                open=_opener(entry.version.storage_name),
                item_id=entry.item_id,
            )
        )
    return files


def disc_description(disc: Disc) -> dict[str, Any]:
    owner = disc.owner
    return {
        "number": disc.number,
        "medium": disc.medium,
        "planned_at": disc.planned_at.isoformat(timespec="seconds"),
        "volume_id": disc.volume_id,
        "subscriber": owner.get_full_name() or owner.get_username(),
        "series": f"discsub-{owner.pk}",
        "layout_version": disc.layout_version,
    }


def entry_description(entry: DiscEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind,
        "paths": list(entry.paths),
        "size": entry.size,
        "sha256": entry.sha256,
        "changes": list(entry.change_kinds),
        **entry.metadata,
    }


def disc_files(disc: Disc, entries: Sequence[DiscEntry]) -> list[DiscFile]:
    """Every file of the image: the payload, then the manifests."""
    payload = payload_files(entries)
    carried = [e for e in entries if not e.held_back]
    held = [
        {"item": e.metadata.get("item"), "original_name": e.metadata.get("original_name"), "reason": e.held_reason}
        for e in entries
        if e.held_back
    ]
    described = sorted((entry_description(e) for e in carried), key=lambda d: (d["item"], d["kind"]))
    return [
        *payload,
        DiscFile.from_bytes(manifest.MANIFEST_JSON, manifest.manifest_json(disc_description(disc), described, held)),
        DiscFile.from_bytes(manifest.MANIFEST_SHA256, manifest.payload_manifest(payload)),
    ]


def expected_checksums(files: Sequence[DiscFile]) -> dict[str, tuple[int, str]]:
    """canonical path -> (size, sha256) for every path of every file."""
    return {p: (f.size, f.sha256) for f in files for p in f.all_paths}
