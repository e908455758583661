"""The machine-readable description that travels on every disc.

``manifest.json`` (schema ``discsub-manifest`` v1, docs/disc-layout.md) maps
every disc path back to the original name, albums and item id, lists the
changes the disc carries and the catalog of the whole series as of this
disc.  ``manifest-sha256.txt`` lists every payload file's sha256 in the
BagIt / ``sha256sum -c`` format.  Both are deterministic: the same planned
disc always gives the same bytes, whether it is being planned (unsaved disc
and entries) or built.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporter.layout import DiscFile
from exporter.models import Disc, DiscEntry, EntryKind

SCHEMA = "discsub-manifest"
SCHEMA_VERSION = 1
MANIFEST_JSON = "manifest.json"
MANIFEST_SHA256 = "manifest-sha256.txt"


# --- BagIt manifests -------------------------------------------------------------


def encode_bagit_path(path: str) -> str:
    """RFC 8493 §2.1.3: CR, LF and % in a manifest path are percent-encoded."""
    return path.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def decode_bagit_path(path: str) -> str:
    return path.replace("%0D", "\r").replace("%0A", "\n").replace("%0d", "\r").replace("%0a", "\n").replace("%25", "%")


def payload_manifest(files: Iterable[DiscFile]) -> bytes:
    """``<sha256>  <path>`` for every path of ``files`` (hard links listed
    under each name), sorted.  The format of ``manifest-sha256.txt`` and
    ``tagmanifest-sha256.txt`` alike."""
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


# --- the series as of a disc ---------------------------------------------------------


@dataclass
class Place:
    """Where an item of the series stands: the disc holding its current bytes."""

    item: str  # public id
    disc: int | None
    version: int
    path: str | None
    original_name: str
    albums: list
    deleted: bool = False
    # A file split across discs: [disc, path] of each part, in order.
    parts: list | None = None

    def as_catalog(self) -> dict[str, Any]:
        record = {
            "albums": self.albums,
            "deleted": self.deleted,
            "disc": self.disc,
            "original_name": self.original_name,
            "path": self.path,
            "version": self.version,
        }
        if self.parts:
            record["parts"] = self.parts
        return record


def split_parts(number: int, part: Mapping[str, Any]) -> list[list]:
    """[disc, path] of every part of a split file, as the disc ``number``
    holding ``part`` knows them (the discs after it are not planned yet)."""
    where = {n: [disc, path] for disc, path, n in part["earlier"]}
    where[part["number"]] = [number, part["path"]]
    return [where.get(n, [None, None]) for n in range(1, part["count"] + 1)]


def _apply(places: dict[int, Place], item_id: int, number: int, kind: str, paths: list, metadata: dict) -> None:
    place = places.get(item_id)
    part = metadata.get("part")
    if part and not part["completes"]:
        return  # the item's change comes with the part that completes the file
    if kind == EntryKind.FILE:
        places[item_id] = Place(
            item=metadata["item"],
            disc=number,
            version=metadata["version"],
            path=paths[0] if paths else None,
            original_name=metadata["original_name"],
            albums=metadata["albums"],
            parts=split_parts(number, part) if part else None,
        )
        return
    if place is None:
        # No disc holds its bytes (they were held back after this entry was planned).
        place = places[item_id] = Place(
            metadata["item"], None, metadata["version"], None, metadata["original_name"], metadata["albums"]
        )
    if kind == EntryKind.DELETION:
        place.deleted = True
    else:
        place.original_name, place.albums = metadata["original_name"], metadata["albums"]


def series_before(disc: Disc) -> dict[int, Place]:
    """item id -> :class:`Place`, after the owner's discs numbered below
    ``disc`` (entries held back excluded).  One query, streamed."""
    places: dict[int, Place] = {}
    rows = (
        DiscEntry.objects.filter(disc__owner_id=disc.owner_id, disc__number__lt=disc.number, held_back=False)
        .order_by("disc__number", "id")
        .values_list("item_id", "disc__number", "kind", "paths", "metadata")
    )
    for item_id, number, kind, paths, metadata in rows.iterator(chunk_size=5000):
        _apply(places, item_id, number, kind, paths, metadata)
    return places


# --- manifest.json -------------------------------------------------------------------


def thumbnail_path(item: str, version: int) -> str:
    """Where the offline index keeps an item's thumbnail, when it has one."""
    return f"index/thumbs/{item}-v{version}.jpg"


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def disc_description(disc: Disc, carried: Sequence[DiscEntry]) -> dict[str, Any]:
    owner = disc.owner
    captured = [e.metadata["captured_at"] for e in carried if e.kind == EntryKind.FILE and e.metadata["captured_at"]]
    captured.sort(key=lambda value: (_instant(value), value))
    return {
        "number": disc.number,
        "medium": disc.medium,
        "planned_at": disc.planned_at.isoformat(timespec="seconds"),
        "volume_id": disc.volume_id,
        "subscriber": owner.get_full_name() or owner.get_username(),
        "series": series_id(disc),
        "layout_version": disc.layout_version,
        "first_change": disc.first_seq,
        "last_change": disc.last_seq,
        "captured": {"first": captured[0] if captured else None, "last": captured[-1] if captured else None},
    }


def series_id(disc: Disc) -> str:
    return f"discsub-{disc.owner_id}"


def _sidecar_fields(sidecars: Sequence[str]) -> dict[str, Any]:
    return {"sidecar": sidecars[0] if sidecars else None, "sidecar_links": list(sidecars[1:])}


def describe(
    disc: Disc,
    entries: Sequence[DiscEntry],
    sidecars: Mapping[int, Sequence[str]],
    on_disc: Collection[str],
) -> dict[str, Any]:
    """The manifest document.  ``sidecars``: item id -> its sidecar paths
    (parallel to the entry's paths); ``on_disc``: every path the disc holds
    before the manifest (a thumbnail is named only when it is there)."""
    carried = sorted((e for e in entries if not e.held_back), key=lambda e: (e.metadata["item"], e.kind))
    places = series_before(disc)
    files, added, new_versions, edited, deleted, parts = [], [], [], [], [], []
    for entry in carried:
        meta, before = entry.metadata, places.get(entry.item_id)
        if "part" in meta:
            parts.append(_part_record(disc, entry, sidecars, before))
            if meta["part"]["completes"]:
                _count_file(meta, before, added, new_versions)
        elif entry.kind == EntryKind.FILE:
            replaced = before is not None and before.disc is not None
            thumbnail = thumbnail_path(meta["item"], meta["version"])
            files.append(
                {
                    **{k: meta[k] for k in _SNAPSHOT_KEYS},
                    "change": "new_version" if replaced else "added",
                    "previous_disc": before.disc if replaced else None,
                    "path": entry.paths[0],
                    "links": list(entry.paths[1:]),
                    **_sidecar_fields(sidecars.get(entry.item_id, ())),
                    "thumbnail": thumbnail if thumbnail in on_disc else None,
                    "size": entry.size,
                    "sha256": entry.sha256,
                }
            )
            _count_file(meta, before, added, new_versions)
        elif entry.kind == EntryKind.METADATA:
            edited.append(
                {
                    **{k: meta[k] for k in ("item", "version", "original_name", "albums", "title", "caption")},
                    "captured_at": meta["captured_at"],
                    "disc": before.disc if before else None,
                    "path": entry.paths[0] if entry.paths else None,
                    "links": list(entry.paths[1:]),
                    **_sidecar_fields(sidecars.get(entry.item_id, ())),
                }
            )
        else:
            deleted.append(
                {
                    "item": meta["item"],
                    "original_name": before.original_name if before else meta["original_name"],
                    "last_disc": before.disc if before else None,
                    "version": before.version if before else meta["version"],
                }
            )
        _apply(places, entry.item_id, disc.number, entry.kind, list(entry.paths), meta)
    files.sort(key=lambda f: f["path"])
    parts.sort(key=lambda f: f["part"]["path"])
    held = sorted(
        (
            {"item": e.metadata.get("item"), "original_name": e.metadata.get("original_name"), "reason": e.held_reason}
            for e in entries
            if e.held_back
        ),
        key=lambda h: h["item"],
    )
    document = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "disc": disc_description(disc, carried),
        "files": files,
        "changes": {"added": added, "new_version": new_versions, "edited": edited, "deleted": deleted},
        "held_back": held,
        "catalog": {place.item: place.as_catalog() for place in places.values()},
    }
    if parts:  # only on discs that hold parts: other manifests stay as they were
        document["parts"] = parts
    return document


def _count_file(meta: Mapping[str, Any], before: Place | None, added: list, new_versions: list) -> None:
    if before is not None and before.disc is not None:
        new_versions.append(
            {
                "item": meta["item"],
                "version": meta["version"],
                "previous_disc": before.disc,
                "previous_version": before.version,
            }
        )
    else:
        added.append(meta["item"])


def _part_record(
    disc: Disc, entry: DiscEntry, sidecars: Mapping[int, Sequence[str]], before: Place | None
) -> dict[str, Any]:
    """A ``parts`` record: this disc's part of a split file, and how to join it."""
    meta, part = entry.metadata, entry.metadata["part"]
    where = split_parts(disc.number, part)
    replaced = before is not None and before.disc is not None
    return {
        **{k: meta[k] for k in _SNAPSHOT_KEYS},
        "path": entry.paths[0],  # where the joined file belongs (not on this disc)
        "links": list(entry.paths[1:]),
        **_sidecar_fields(sidecars.get(entry.item_id, ()) if part["completes"] else ()),
        "size": part["whole_size"],
        "sha256": part["whole_sha256"],
        "completes": part["completes"],
        "change": ("new_version" if replaced else "added") if part["completes"] else None,
        "previous_disc": before.disc if replaced and part["completes"] else None,
        "part": {k: part[k] for k in ("number", "count", "path", "offset", "size", "sha256")},
        "parts": [
            {"number": n, "offset": offset, "size": size, "sha256": sha256, "disc": d, "path": p}
            for n, ((offset, size, sha256), (d, p)) in enumerate(zip(part["layout"], where, strict=True), start=1)
        ],
    }


_SNAPSHOT_KEYS = (
    "item",
    "version",
    "original_name",
    "albums",
    "content_type",
    "title",
    "caption",
    "captured_at",
    "uploaded_at",
)


def _dumps(value: Any, depth: int = 0) -> str:
    """JSON, keys sorted; the document and its sections one member per line,
    each record (a file, a catalog entry, a change) compact on one line: the
    catalog of a large series costs little more than its data."""
    expand = depth < 2 or (depth == 2 and isinstance(value, list))
    if not expand or not isinstance(value, dict | list) or not value:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    pad = " " * (depth + 1)
    if isinstance(value, dict):
        members = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_dumps(value[k], depth + 1)}" for k in sorted(value)]
        return "{\n" + ",\n".join(members) + "\n" + " " * depth + "}"
    return "[\n" + ",\n".join(f"{pad}{_dumps(v, depth + 1)}" for v in value) + "\n" + " " * depth + "]"


def manifest_json(document: Mapping[str, Any]) -> bytes:
    """Serialise a manifest document made by :func:`describe`."""
    return (_dumps(document) + "\n").encode("utf-8")
