"""Planning: fixing what the next disc of a subscriber carries.

``plan_next_disc`` takes the subscriber's pending changes, oldest first,
works out each item's net effect, packs as many items as fit and fixes the
disc's content.  It runs under the lock of the subscriber's export cursor,
so two planners for one subscriber take turns and disc numbers stay gapless.
The whole image (every filesystem's structures and the manifests included)
is measured exactly before the disc is committed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone

from exporter import collector, contents, ecc, iso, names, par2, splitting
from exporter.media import CAPACITY_SECTORS, sectors_for
from exporter.models import (
    Album,
    Change,
    Disc,
    DiscEntry,
    DiscEvent,
    DiscStatus,
    EntryKind,
    ExportCursor,
    ItemIssue,
    ItemStatus,
    ItemVersion,
    MediaItem,
    Resolution,
    Subscription,
)

log = logging.getLogger(__name__)

# 2: restore.py checks manifest.json against its schema (issue #12); discs of
# layout 1 keep carrying the tool they shipped with (exporter.contents).
# 3: sector recovery data after the ISO volume (exporter.ecc), repair.py on
# the disc and a README that explains it; no PAR2 files unless configured.
LAYOUT_VERSION = 3
# Estimates used to choose candidates quickly; the exact layout is measured
# afterwards and always has the last word.
BASE_OVERHEAD_SECTORS = 600
# A file's UDF file entry, its sidecar's entry and the sidecar's one sector.
FILE_OVERHEAD_SECTORS = 3
SIDECAR_SECTORS = 2  # a metadata-only entry ships its sidecar alone
LINK_OVERHEAD_SECTORS = 1
# Every entry's lines in manifest.json, index.html and the bag's manifests.
DESCRIBED_SECTORS = 1
# How many pending items to look past the first one that does not fit, in
# search of smaller ones that do.
LOOKAHEAD = 2000
REFINE_PASSES = 3
CHUNK = 500


@dataclass
class _Candidate:
    item: MediaItem
    kind: str | None
    version: ItemVersion | None
    estimate: int = 0
    album_paths: list[tuple[str, ...]] = field(default_factory=list)
    # A part of a file too large for the medium (exporter.splitting).
    part: dict | None = None


def _album_paths(owner: AbstractBaseUser) -> dict[int, tuple[str, ...]]:
    albums = {a.pk: a for a in Album.objects.filter(owner=owner).only("pk", "name", "parent_id")}
    paths: dict[int, tuple[str, ...]] = {}

    def path_of(pk: int, depth: int = 0) -> tuple[str, ...]:
        if pk in paths:
            return paths[pk]
        album = albums[pk]
        parent = album.parent_id
        prefix = path_of(parent, depth + 1) if parent in albums and depth < 256 else ()
        paths[pk] = (*prefix, album.name)
        return paths[pk]

    for pk in albums:
        path_of(pk)
    return paths


def _net_effect(item: MediaItem, split: bool = False) -> tuple[str | None, ItemVersion | None]:
    """What the next disc must carry of ``item``, given what discs already
    carry; ``split``: earlier discs hold parts of it (a split in progress)."""
    if item.status == ItemStatus.DELETED:
        if split and not item.deletion_planned:
            # Deleted before its last part: the deletion says that the parts
            # on earlier discs (of this version) will never be joined.
            return EntryKind.DELETION, item.current_version
        if item.planned_version_number and not item.deletion_planned:
            return EntryKind.DELETION, None
        return None, None
    if item.status == ItemStatus.TRASHED:
        # Trash is reversible: nothing ships until the item is restored or deleted.
        return None, None
    version = item.current_version
    if version is None:
        return None, None
    if version.number != item.planned_version_number:
        return EntryKind.FILE, version
    if item.metadata_revision != item.planned_metadata_revision:
        return EntryKind.METADATA, version
    return None, None


def _pending_chunks(owner: AbstractBaseUser) -> Iterator[list[tuple[int, int]]]:
    last = 0
    while True:
        rows = list(
            Change.objects.filter(owner=owner, resolution=Resolution.PENDING, seq__gt=last)
            .order_by("seq")
            .values_list("seq", "item_id")[:CHUNK]
        )
        if not rows:
            return
        yield rows
        last = rows[-1][0]


@dataclass
class _Chunk:
    """Items of one chunk of pending changes, in change order; ``by_id`` holds
    those read (and locked) so far, ``blocked`` (item id, version id) pairs
    with open issues or refused by an earlier choice of this plan, ``sizes``
    the sizes of new versions no disc carries yet (read unlocked, on demand)."""

    fresh: list[int]
    by_id: dict[int, MediaItem] = field(default_factory=dict)
    # item id -> the ids of its albums
    albums: dict[int, list[int]] = field(default_factory=dict)
    blocked: set = field(default_factory=set)
    sizes: dict[int, int] | None = None


class _Backlog:
    """The pending changes and their items as one plan reads them: chunk by
    chunk, on demand, each item locked and read once.  What was read is
    kept, so a later choice (with another recovery block size) reads
    nothing twice and locks nothing more than it needs."""

    def __init__(self, owner: AbstractBaseUser, unreadable: Collection[tuple[int, int]] = ()):
        self.owner, self.album_paths = owner, _album_paths(owner)
        # (item id, version id) whose bytes could not be read in this pass (exporter.failures).
        self.unreadable = set(unreadable)
        self._source: Iterator[list[tuple[int, int]]] = _pending_chunks(owner)
        self.resume = resume = splitting.in_progress(owner.pk)
        if resume is not None:
            # The next part of a split file goes first: parts land on consecutive discs.
            self._source = itertools.chain([[(0, resume)]], self._source)
        self._read: list[_Chunk] = []
        self._seen: set[int] = set()

    def __iter__(self) -> Iterator[_Chunk]:
        n = 0
        while True:
            if n == len(self._read):
                rows = next(self._source, None)
                if rows is None:
                    return
                fresh = list(dict.fromkeys(item_id for _, item_id in rows if item_id not in self._seen))
                self._seen.update(fresh)
                self._read.append(_Chunk(fresh))
            yield self._read[n]
            n += 1

    def new_version_sizes(self, chunk: _Chunk) -> dict[int, int]:
        """Sizes of the chunk's new versions not on a disc yet, read without
        locking (one query): enough to pass over what cannot fit."""
        if chunk.sizes is None:
            rows = MediaItem.objects.filter(pk__in=chunk.fresh, status=ItemStatus.LIVE).values_list(
                "pk", "planned_version_number", "current_version__number", "current_version__size"
            )
            chunk.sizes = {pk: size for pk, planned, number, size in rows if number is not None and number != planned}
        return chunk.sizes

    def load(self, chunk: _Chunk, ids: list[int]) -> None:
        """Lock and read the items ``ids`` of the chunk (those not read yet)."""
        wanted = [item_id for item_id in ids if item_id not in chunk.by_id]
        if not wanted:
            return
        # Lock the items: a library change to one of them waits until this
        # plan commits, so what we read is what we resolve.  Nothing is joined
        # to the locking read: one that waited for a writer returns the item
        # row as that writer committed it but, under READ COMMITTED, joined
        # rows as they were before (its new version would be missing).
        # Related rows are read afterwards, and albums created meanwhile are
        # looked up again.
        by_id = {item.pk: item for item in MediaItem.objects.select_for_update().filter(pk__in=wanted)}
        # Their versions and album links, one plain query each (no prefetch:
        # the item objects are what the disc entries point at, the rest is data).
        versions = ItemVersion.objects.in_bulk([i.current_version_id for i in by_id.values() if i.current_version_id])
        for item in by_id.values():
            if item.current_version_id:
                item.current_version = versions[item.current_version_id]
            chunk.albums[item.pk] = []
        links = MediaItem.albums.through.objects.filter(mediaitem_id__in=by_id)
        for item_id, album_id in links.values_list("mediaitem_id", "album_id"):
            chunk.albums[item_id].append(album_id)
        if any(a not in self.album_paths for ids in chunk.albums.values() for a in ids):
            # An album created since the plan began: read them again.
            self.album_paths.update(_album_paths(self.owner))
        chunk.by_id.update(by_id)
        chunk.blocked.update(
            ItemIssue.objects.filter(item_id__in=wanted, resolved_at__isnull=True).values_list("item_id", "version_id")
        )
        if self.unreadable:
            wanted_ids = set(wanted)
            chunk.blocked.update(pair for pair in self.unreadable if pair[0] in wanted_ids)


def _estimate(candidate: _Candidate, percent: int = 0, block: int = 0) -> int:
    """Sectors the candidate adds to the image, with its share of the
    recovery data at ``percent`` % in blocks of at most ``block`` sectors."""
    paths = max(len(candidate.album_paths), 1)
    if candidate.kind == EntryKind.FILE:
        part = candidate.part
        sectors = sectors_for(part["size"] if part else candidate.version.size)
        estimate = sectors + FILE_OVERHEAD_SECTORS + (paths - 1) * LINK_OVERHEAD_SECTORS
        # par2 protects every path (hard links too) in whole blocks (half a
        # block more, on average) and a sidecar per path (a whole block).  A
        # part is one file, in the first album; its sidecars come with the
        # part that completes the file.
        copies, sidecars = (1, paths if part["completes"] else 0) if part else (paths, paths)
        protected = copies * (sectors + block // 2) + sidecars * block
    elif candidate.kind == EntryKind.METADATA:
        estimate = SIDECAR_SECTORS + (paths - 1) * LINK_OVERHEAD_SECTORS
        protected = paths * block
    else:
        estimate, protected = 0, 0
    estimate += DESCRIBED_SECTORS
    if percent and protected:
        # and a copy of the file's description in every recovery file
        estimate += -(-protected * percent // 100) + paths
    return estimate


def _flag_too_large(item: MediaItem, version: ItemVersion, capacity: int, medium: str) -> None:
    exists = ItemIssue.objects.filter(
        item=item, version=version, kind=ItemIssue.Kind.TOO_LARGE, resolved_at__isnull=True
    ).exists()
    if not exists:
        ItemIssue.objects.create(
            item=item,
            version=version,
            kind=ItemIssue.Kind.TOO_LARGE,
            message=(
                f"{version.original_name!r} is {version.size:,} bytes; an empty {medium} disc holds "
                f"{capacity * 2048:,} bytes. It waits until it can be split across discs; "
                "nothing else is held up."
            ),
        )


def _make_part(candidate: _Candidate, capacity: int, medium: str, splits: dict) -> bool:
    """Make ``candidate`` the next part of its file, split across discs."""
    item, version = candidate.item, candidate.version
    if ("size", medium) not in splits:
        # Room for the disc's own files, the series catalog (about 200 bytes
        # an item) and 0.5 % to spare: a later part must fit as well as the first.
        catalog = -(-MediaItem.objects.filter(owner_id=item.owner_id).count() * 256 // 2048)
        reserve = BASE_OVERHEAD_SECTORS + catalog + capacity // 200
        splits["size", medium] = splitting.part_bytes(capacity, recovery_percent(medium), reserve)
    if splits["size", medium] <= 0:
        _flag_too_large(item, version, capacity, medium)
        return False
    candidate.part = splitting.next_part(version, splits["size", medium])
    return candidate.part is not None


def _hash_part(candidate: _Candidate, splits: dict) -> bool:
    """Fill in the sha256 of every part (one read of the stored file, when
    its first part is chosen); a missing or altered source is flagged."""
    part, version = candidate.part, candidate.version
    if part["sha256"] is not None:
        return True
    if version.pk not in splits:
        try:
            splits[version.pk] = splitting.hash_parts(version, part["layout"])
        except splitting.SplitSourceError as exc:
            kind = ItemIssue.Kind.MISSING_OBJECT if exc.missing else ItemIssue.Kind.CHECKSUM_MISMATCH
            ItemIssue.objects.create(item=candidate.item, version=version, kind=kind, message=str(exc))
            return False
        except Exception as exc:  # storage is down: try again at the next plan, nothing else waits
            log.warning("cannot read %s to split it: %s", version.storage_name, exc)
            return False
    candidate.part = splitting.with_hashes(part, splits[version.pk])
    return True


def recovery_percent(medium: str) -> int:
    """The PAR2 redundancy a disc of ``medium`` planned now gets."""
    return int(getattr(settings, "DISCSUB_PAR2_REDUNDANCY", {}).get(medium, 0))


def sector_parity(medium: str) -> int:
    """The parity layers of the sector recovery data a disc of ``medium`` planned now gets
    (none before layout 3)."""
    if LAYOUT_VERSION < 3:
        return 0
    return int(getattr(settings, "DISCSUB_SECTOR_PARITY", {}).get(medium, 0))


def image_capacity(medium: str) -> int:
    """The sectors the ISO volume of a disc of ``medium`` planned now may
    take: the medium's, less the recovery data appended after it."""
    return ecc.image_capacity(CAPACITY_SECTORS[medium], sector_parity(medium))


def _recovery_payload(chosen: list[_Candidate]) -> list[tuple[str, int]]:
    """What par2 will protect on a disc carrying ``chosen``, near enough:
    every path with its album folders and original name (a file's
    description in the recovery files holds its path), and a sidecar per
    path as a one-byte file (it fills one block, as its real size does)."""
    payload = []
    for c in chosen:
        if c.kind == EntryKind.DELETION:
            continue
        name = c.version.original_name if c.version else c.item.original_name
        paths = ["/".join((par2.PAYLOAD.rstrip("/"), *folders, name)) for folders in c.album_paths or [()]]
        if c.part:  # one file, in the first album; the sidecars with the last part
            payload.append((splitting.part_name(paths[0], c.part["number"]), c.part["size"]))
            paths = paths if c.part["completes"] else []
        elif c.kind == EntryKind.FILE and c.version.size:
            payload += [(path, c.version.size) for path in paths]
        payload += [(f"{path}.xmp", 1) for path in paths]
    return payload


def _recovery_block(chosen: list[_Candidate]) -> int:
    """par2's block size, in sectors, for a disc carrying ``chosen``, near
    enough (averaged over its files)."""
    plan = par2.plan(_recovery_payload(chosen), 1)
    if plan is None:
        return 1
    return max(1, sum(s.block_size * len(s.files) for s in plan.sets) // len(plan.files) // 2048)


def _block_guess(backlog: _Backlog, capacity: int) -> int:
    """par2's block size, in sectors, on a full disc of files like the first
    pending ones: each set of at most ``par2.MAX_SET_FILES`` files (a file
    and its sidecar an item) is cut into about ``par2.TARGET_SOURCE_BLOCKS``
    blocks (exporter.par2).  Without sizes to go on, one set."""
    first = next(iter(backlog), None)
    sizes = list(backlog.new_version_sizes(first).values()) if first else []
    sets = 1
    if sizes:
        items = capacity * len(sizes) // max(1, sum(sectors_for(size) + FILE_OVERHEAD_SECTORS for size in sizes))
        sets = max(1, -(-2 * items // par2.MAX_SET_FILES))
    return max(1, capacity // (sets * par2.TARGET_SOURCE_BLOCKS))


def _recovery_sectors(chosen: list[_Candidate], percent: int) -> int:
    """The recovery data par2 will make for exactly these files (not a share per file)."""
    plan = par2.plan(_recovery_payload(chosen), percent) if chosen and percent else None
    return sum(sectors_for(size) for _, size in plan.outputs) if plan else 0


def _fits_alone(candidate: _Candidate, budget: int, percent: int) -> bool:
    """Whether the candidate fits an empty disc with its exact recovery data
    (near the limit the share per file is not enough to tell)."""
    return _estimate(candidate) + _recovery_sectors([candidate], percent) <= budget


def _trim(chosen: list[_Candidate], capacity: int, percent: int) -> bool:
    """Drop the last candidates until the estimate, with the recovery data
    par2 will make for exactly the files left, fits; True if any went."""
    if not percent:
        return False
    budget = capacity - BASE_OVERHEAD_SECTORS
    costs = [0, *itertools.accumulate(_estimate(c) for c in chosen)]

    def excess(n: int) -> int:
        return costs[n] + _recovery_sectors(chosen[:n], percent) - budget

    over = excess(len(chosen))
    if over <= 0:
        return False
    # A first guess from each file's share of recovery data, then halving
    # (fewer files make smaller par2 blocks: the shares are not exact).
    good, bad = 0, len(chosen)
    guess, dropped = bad, 0
    while guess > 0 and dropped < over:
        guess -= 1
        dropped += chosen[guess].estimate
    if not good < guess < bad:
        guess = (good + bad) // 2
    while bad - good > 1:
        good, bad = (guess, bad) if excess(guess) <= 0 else (good, guess)
        guess = (good + bad) // 2
    del chosen[good:]
    return True


def _select(
    backlog: _Backlog, medium: str, capacity: int, block: int, splits: dict
) -> tuple[list[_Candidate], list[int], bool]:
    """Choose candidates oldest first from ``backlog`` (what earlier choices
    of the same plan read is kept there); ``block`` is the par2 block size
    (in sectors) to estimate the recovery data with; ``splits`` caches what
    splitting a file cost.  Returns (chosen, absorbed item ids, full)."""
    budget = capacity - BASE_OVERHEAD_SECTORS
    percent = recovery_percent(medium)
    album_paths = backlog.album_paths
    used = 0
    chosen: list[_Candidate] = []
    absorbed: list[int] = []
    full = False
    passed_over = 0
    for chunk in backlog:
        wanted = chunk.fresh
        if full:
            # Looking ahead for smaller items: a new version bigger than the
            # room left cannot go on this disc, so it is passed over without
            # being locked or read (one of a third of a disc or more is read:
            # with its recovery data it may need splitting).
            room = budget - used
            too_big = {
                item_id
                for item_id, size in backlog.new_version_sizes(chunk).items()
                if room < sectors_for(size) and 3 * sectors_for(size) <= budget
            }
            wanted = [item_id for item_id in chunk.fresh if item_id not in too_big]
        backlog.load(chunk, wanted)
        for item_id in chunk.fresh:
            item = chunk.by_id.get(item_id)
            if item is None:  # passed over unread (above)
                passed_over += 1
                if passed_over > LOOKAHEAD or budget - used <= FILE_OVERHEAD_SECTORS:
                    return chosen, absorbed, full
                continue
            blocked = chunk.blocked
            kind, version = _net_effect(item, split=item_id == backlog.resume)
            if kind is None:
                absorbed.append(item_id)
                continue
            if (item_id, None) in blocked or (
                kind != EntryKind.DELETION and version and (item_id, version.pk) in blocked
            ):
                continue
            paths = sorted(album_paths[a] for a in chunk.albums[item_id] if a in album_paths)
            candidate = _Candidate(item=item, kind=kind, version=version, album_paths=paths)
            candidate.estimate = _estimate(candidate, percent, block)
            # Split: a file too large for an empty disc, and the rest of a
            # split in progress (even on a larger kind of disc since).
            if candidate.estimate > budget or (
                kind == EntryKind.FILE
                and (
                    item_id == backlog.resume
                    or (2 * candidate.estimate > budget and not _fits_alone(candidate, budget, percent))
                )
            ):
                if kind != EntryKind.FILE or not _make_part(candidate, capacity, medium, splits):
                    # Too large and not to be split now: a later choice of
                    # this plan passes it over without asking again.
                    blocked.add((item_id, version.pk if version else None))
                    continue
                candidate.estimate = _estimate(candidate, percent, block)
            if used + candidate.estimate <= budget:
                if candidate.part and not _hash_part(candidate, splits):
                    blocked.add((item_id, version.pk))  # flagged, or its storage is down
                    continue
                chosen.append(candidate)
                used += candidate.estimate
                # A part (but the last) fills its disc.
                full = full or bool(candidate.part and candidate.part["number"] < candidate.part["count"])
            else:
                full = True
                passed_over += 1
            if full and (passed_over > LOOKAHEAD or budget - used <= FILE_OVERHEAD_SECTORS):
                return chosen, absorbed, full
    return chosen, absorbed, full


def _iso_datetime(value: dt.datetime | None, offset_minutes: int | None) -> str | None:
    if value is None:
        return None
    tz = dt.timezone(dt.timedelta(minutes=offset_minutes)) if offset_minutes is not None else dt.UTC
    return value.astimezone(tz).isoformat(timespec="seconds")


def snapshot(item: MediaItem, version: ItemVersion | None, album_paths: list[tuple[str, ...]]) -> dict:
    """The item's metadata as the disc will describe it."""
    return {
        "item": str(item.public_id),
        "version": version.number if version else item.planned_version_number,
        "original_name": version.original_name if version else item.original_name,
        "content_type": version.content_type if version else "",
        "title": item.title,
        "caption": item.caption,
        "captured_at": _iso_datetime(item.captured_at, item.captured_offset_minutes),
        "uploaded_at": _iso_datetime(version.uploaded_at if version else item.uploaded_at, None),
        "albums": [list(p) for p in album_paths],
    }


def _entries(disc: Disc, chosen: list[_Candidate], kinds: dict[int, list[str]]) -> list[DiscEntry]:
    entries = []
    for candidate in chosen:
        item, version = candidate.item, candidate.version
        is_file = candidate.kind == EntryKind.FILE
        part = candidate.part
        metadata = snapshot(item, version, candidate.album_paths)
        if part:
            metadata["part"] = dict(part)
        entries.append(
            DiscEntry(
                disc=disc,
                item=item,
                kind=candidate.kind,
                version=version if is_file else None,
                previous_version_number=item.planned_version_number,
                metadata=metadata,
                metadata_revision=item.metadata_revision,
                # A part carries the item's changes only if it completes the file.
                change_kinds=kinds.get(item.pk, []) if not part or part["completes"] else [],
                size=(part["size"] if part else version.size) if is_file else 0,
                sha256=(part["sha256"] if part else version.sha256) if is_file else "",
            )
        )
    _assign_paths(entries)
    return entries


def _assign_paths(entries: list[DiscEntry]) -> None:
    requests = []
    for index, entry in enumerate(entries):
        if entry.kind == EntryKind.DELETION:
            continue
        # A metadata-only entry gets a path too: its new sidecar goes there.
        folders = entry.metadata["albums"] or [[]]
        for album_index, folder in enumerate(folders):
            requests.append(
                names.NameRequest(key=(index, album_index), folders=tuple(folder), name=entry.metadata["original_name"])
            )
        if "part" in entry.metadata:
            # The part's own file, in the first album; the paths above are
            # where the joined file belongs (and its sidecar goes).
            name = splitting.part_name(entry.metadata["original_name"], entry.metadata["part"]["number"])
            requests.append(names.NameRequest(key=(index, -1), folders=tuple(folders[0]), name=name))
    assigned = names.assign_disc_paths(requests)
    for index, entry in enumerate(entries):
        if entry.kind != EntryKind.DELETION:
            count = len(entry.metadata["albums"]) or 1
            entry.paths = [assigned[(index, i)] for i in range(count)]
        if "part" in entry.metadata:
            entry.metadata["part"]["path"] = assigned[(index, -1)]


def volume_id_for(owner_id: int, number: int) -> str:
    return f"DISCSUB_{owner_id:06d}_{number:04d}"


@collector.paused()  # a disc's worth of items, entries, manifests and layout
def plan_next_disc(
    owner: AbstractBaseUser,
    *,
    medium: str | None = None,
    allow_partial: bool = False,
    now: dt.datetime | None = None,
    unreadable: Collection[tuple[int, int]] = (),
) -> Disc | None:
    """Fix the content of the owner's next disc, or return None.

    Without ``allow_partial`` a disc is planned only when the pending changes
    fill one.  Changes whose net effect is nothing (an item added and trashed
    before any disc) are resolved as absorbed either way.  The (item id,
    version id) pairs in ``unreadable`` are passed over like items with an
    open issue: their changes stay pending for a later disc.
    """
    ExportCursor.objects.get_or_create(owner=owner)
    if medium is None:
        subscription = Subscription.objects.filter(user=owner).first()
        medium = subscription.medium if subscription else "dvd"
    capacity = image_capacity(medium)
    now = (now or timezone.now()).replace(microsecond=0)
    with transaction.atomic():
        cursor = ExportCursor.objects.select_for_update().get(owner=owner)
        # The first choice guesses par2's block size; if the block size it
        # implies is much smaller, another choice with that one packs the
        # disc closer.  The last choice is then checked against the recovery
        # data of exactly its files.
        splits: dict = {}
        percent = recovery_percent(medium)
        backlog = _Backlog(owner, unreadable)
        block = _block_guess(backlog, capacity)
        chosen, absorbed, full = _select(backlog, medium, capacity, block, splits)
        for _ in range(REFINE_PASSES):
            implied = _recovery_block(chosen) if chosen and percent else block
            if implied >= block * 0.9:
                break
            block = implied
            chosen, absorbed, full = _select(backlog, medium, capacity, block, splits)
        if _trim(chosen, capacity, percent):
            full = True  # what was dropped did not fit
        disc = None
        if chosen and (full or allow_partial):
            disc = _fix_disc(owner, cursor, medium, capacity, chosen, now)
        if absorbed:
            Change.objects.filter(owner=owner, item_id__in=absorbed, resolution=Resolution.PENDING).update(
                resolution=Resolution.ABSORBED, resolved_at=now
            )
        _advance(cursor)
    return disc


def _fix_disc(owner, cursor: ExportCursor, medium: str, capacity: int, chosen: list[_Candidate], now) -> Disc | None:
    number = cursor.discs_planned + 1
    disc = Disc(
        owner=owner,
        number=number,
        medium=medium,
        planned_at=now,
        capacity_sectors=CAPACITY_SECTORS[medium],
        planned_sectors=0,
        first_seq=0,
        last_seq=0,
        volume_id=volume_id_for(owner.pk, number),
        layout_version=LAYOUT_VERSION,
        recovery_percent=recovery_percent(medium),
        sector_parity=sector_parity(medium),
    )
    pending = defaultdict(list)
    for item_id, kind, seq in (
        Change.objects.filter(owner=owner, resolution=Resolution.PENDING, item_id__in=[c.item.pk for c in chosen])
        .order_by("seq")
        .values_list("item_id", "kind", "seq")
    ):
        pending[item_id].append((kind, seq))
    kinds = {item_id: list(dict.fromkeys(k for k, _ in rows)) for item_id, rows in pending.items()}

    while True:
        entries = _entries(disc, chosen, kinds)
        # The manifest and README name the changes carried: fix them before measuring.
        seqs = [seq for c in chosen for _, seq in pending[c.item.pk]]
        disc.first_seq, disc.last_seq = min(seqs), max(seqs)
        sectors = iso.measure_sectors(contents.disc_files(disc, entries), disc.volume_id)
        if sectors <= capacity:
            break
        excess = sectors - capacity
        dropped = 0
        while chosen and dropped < excess:
            dropped += chosen.pop().estimate
        if not chosen:
            log.warning("nothing fits on %s disc %s of %s", medium, number, owner)
            return None
    # Exactly once: a part that does not complete its file carries no change
    # (the item's changes stay pending until the disc that completes it).
    resolving = [c for c in chosen if not c.part or c.part["completes"]]
    carried_ids = [c.item.pk for c in resolving]
    # Everything the disc will hold: the ISO volume and its recovery data.
    disc.planned_sectors = ecc.total_sectors(sectors, disc.sector_parity)
    disc.save()
    DiscEntry.objects.bulk_create(entries)
    updated = Change.objects.filter(owner=owner, item_id__in=carried_ids, resolution=Resolution.PENDING).update(
        resolution=Resolution.CARRIED, disc=disc, resolved_at=now
    )
    seqs = [seq for c in resolving for _, seq in pending[c.item.pk]]
    if updated != len(seqs):
        # Under the cursor and item locks this cannot happen; if it does, the
        # transaction is rolled back and nothing is planned.
        raise RuntimeError(f"expected to resolve {len(seqs)} changes, resolved {updated}")
    # Three statements whatever the disc holds (the items are locked, so
    # their current version and metadata revision are what was planned).
    by_kind = defaultdict(list)
    for candidate in resolving:
        by_kind[candidate.kind].append(candidate.item.pk)
    version_number = ItemVersion.objects.filter(pk=OuterRef("current_version_id")).values("number")[:1]
    MediaItem.objects.filter(pk__in=by_kind[EntryKind.FILE]).update(
        planned_version_number=Subquery(version_number), planned_metadata_revision=F("metadata_revision")
    )
    MediaItem.objects.filter(pk__in=by_kind[EntryKind.METADATA]).update(
        planned_metadata_revision=F("metadata_revision")
    )
    MediaItem.objects.filter(pk__in=by_kind[EntryKind.DELETION]).update(deletion_planned=True)
    cursor.discs_planned = number
    DiscEvent.objects.create(disc=disc, from_status="", to_status=DiscStatus.PLANNED, note=f"{len(entries)} entries")
    return disc


def _advance(cursor: ExportCursor) -> None:
    # One statement, one snapshot: read separately, a change committed between
    # the two reads would be counted as resolved while still pending.  Two
    # subqueries, each one step down an index (an aggregate with a filter
    # would read every change of the owner).
    changes = Change.objects.filter(owner_id=OuterRef("owner_id"))
    pending, last = (
        ExportCursor.objects.filter(pk=cursor.pk)
        .values_list(
            Subquery(changes.filter(resolution=Resolution.PENDING).order_by("seq").values("seq")[:1]),
            Subquery(changes.order_by("-seq").values("seq")[:1]),
        )
        .get()
    )
    cursor.position = pending - 1 if pending is not None else last or 0
    cursor.save(update_fields=["position", "discs_planned", "updated_at"])
