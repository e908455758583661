"""Files larger than a disc: split into parts on consecutive discs.

A file version too large for an empty disc of its medium is cut into parts
of one fixed size (the last one shorter), fixed when its first part is
planned: the largest size that, with its share of the PAR2 recovery data and
room for the disc's own files, fits an empty disc.  Each part is a payload
file of its own (``<name>.001``, ``<name>.002`` … in the item's first album
folder), with its own sha256; every part's DiscEntry carries the whole
layout (offset, size and sha256 of every part) and the whole file's size and
sha256 in ``metadata["part"]``, frozen at planning like the rest.

Exactly once: the item's changes stay pending until the part that
*completes* the set is planned (normally the last one); that disc carries
the change, its manifest lists the item as added (or a new version) and its
catalog points at every part.  The discs before carry parts only.  The
planner puts the next part of a split in progress first on the next disc, so
parts land on consecutive discs (a part held back by a failed source check
is planned again once staff resolve it).  See docs/disc-layout.md.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.core.files.storage import default_storage
from django.db.models import Q

from exporter import par2, storage
from exporter.media import SECTOR_SIZE, sectors_for
from exporter.models import DiscEntry, EntryKind, ItemVersion, MediaItem

_CHUNK = 1024 * 1024


def part_name(original_name: str, number: int) -> str:
    """``IMG.MOV`` part 2 → ``IMG.MOV.002``: the names 7-Zip and HJSplit use,
    which ``copy /b`` and ``cat`` join in name order."""
    return f"{original_name}.{number:03d}"


def part_bytes(capacity_sectors: int, percent: int, reserve_sectors: int) -> int:
    """The largest part (a whole number of sectors) that fits an empty disc
    of ``capacity_sectors`` with its PAR2 recovery data at ``percent`` %,
    leaving ``reserve_sectors`` for everything else on the disc."""

    def fits(sectors: int) -> bool:
        payload = [("data/p/part.001", sectors * SECTOR_SIZE), ("data/p/part.xmp", 2 * SECTOR_SIZE)]
        plan = par2.plan(payload, percent)
        recovery = sum(sectors_for(size) for _, size in plan.outputs) if plan else 0
        return sectors + recovery + reserve_sectors <= capacity_sectors

    low, high = 0, capacity_sectors
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low * SECTOR_SIZE


def layout(size: int, part_size: int) -> list[list[Any]]:
    """``[offset, size, sha256]`` of every part (sha256 not known yet: None)."""
    return [[offset, min(part_size, size - offset), None] for offset in range(0, size, part_size)]


class SplitSourceError(Exception):
    """The stored bytes cannot be split: missing, or not the recorded ones."""

    def __init__(self, message: str, missing: bool):
        super().__init__(message)
        self.missing = missing


def hash_parts(version: ItemVersion, parts: list[list[Any]]) -> list[list[Any]]:
    """Read the stored file once, as a stream (object storage included), and
    fill in every part's sha256, checking the whole file against the sha256
    recorded at upload.  Raises :class:`SplitSourceError`; other storage
    errors propagate."""
    whole = hashlib.sha256()
    digests = [hashlib.sha256() for _ in parts]
    position = 0
    source = storage.Source(version.storage_name, 0, version.size, version.sha256)
    try:
        for chunk in storage.read_range(default_storage, source):
            view = memoryview(chunk)
            whole.update(view)
            while view:
                index = min(position // parts[0][1], len(parts) - 1)
                offset, size, _ = parts[index]
                take = min(len(view), offset + size - position)
                if take <= 0:  # longer than recorded: the whole-file check below says so
                    position += len(view)
                    break
                digests[index].update(view[:take])
                view, position = view[take:], position + take
    except FileNotFoundError as exc:
        raise SplitSourceError(f"the stored object {version.storage_name} is missing", missing=True) from exc
    except Exception as exc:
        if storage.is_missing(exc):
            raise SplitSourceError(f"the stored object {version.storage_name} is missing", missing=True) from exc
        raise
    if position != version.size or whole.hexdigest() != version.sha256:
        raise SplitSourceError(
            f"the stored bytes ({position:,}) have sha256 {whole.hexdigest()}, recorded at upload "
            f"{version.size:,} bytes with {version.sha256}",
            missing=False,
        )
    return [[offset, size, digest.hexdigest()] for (offset, size, _), digest in zip(parts, digests, strict=True)]


def planned_parts(item_id: int, version_id: int) -> list[tuple[int, dict]]:
    """(disc number, metadata["part"]) of the parts of this version already
    on planned discs (held-back ones excluded), by part number."""
    rows = DiscEntry.objects.filter(
        item_id=item_id, version_id=version_id, kind=EntryKind.FILE, held_back=False, metadata__has_key="part"
    ).values_list("disc__number", "metadata")
    return sorted(((number, metadata["part"]) for number, metadata in rows), key=lambda r: r[1]["number"])


def next_part(version: ItemVersion, part_size: int) -> dict | None:
    """The part of ``version`` the next disc carries, as ``metadata["part"]``
    will hold it (``path`` is filled in when names are assigned; ``sha256``
    is None until :func:`hash_parts` has run for a first part).  None when
    every part is planned."""
    planned = planned_parts(version.item_id, version.pk)
    if planned:
        parts = planned[0][1]["layout"]
    else:
        parts = layout(version.size, part_size)
    have = {p["number"] for _, p in planned}
    missing = [n for n in range(1, len(parts) + 1) if n not in have]
    if not missing:
        return None
    number = missing[0]
    offset, size, sha256 = parts[number - 1]
    return {
        "number": number,
        "count": len(parts),
        "offset": offset,
        "size": size,
        "sha256": sha256,
        "layout": parts,
        "whole_size": version.size,
        "whole_sha256": version.sha256,
        # The change is carried by the part that completes the set.
        "completes": len(missing) == 1,
        "earlier": [[disc, p["path"], p["number"]] for disc, p in planned],
        "path": None,
    }


def with_hashes(part: dict, parts: list[list[Any]]) -> dict:
    offset, size, sha256 = parts[part["number"] - 1]
    return {**part, "layout": parts, "sha256": sha256}


def in_progress(owner_id: int) -> int | None:
    """The item whose split the owner's newest part entry left unfinished:
    its next part goes first on the next disc.  None once that split is
    over without completing: the item's deletion is planned, or a new
    version replaced the one in parts (it starts afresh)."""
    row = (
        DiscEntry.objects.filter(disc__owner_id=owner_id, kind=EntryKind.FILE, metadata__has_key="part")
        .order_by("-disc__number", "-id")
        .values_list("item_id", "version_id", "metadata")
        .first()
    )
    if row is None or row[2]["part"]["completes"]:
        return None
    item_id, version_id, _ = row
    over = MediaItem.objects.filter(Q(deletion_planned=True) | ~Q(current_version_id=version_id), pk=item_id)
    return None if over.exists() else item_id
