"""From a planned disc to the files of its image.

Used twice with the same inputs: by the planner, to measure the exact image
size before the disc exists (the disc and its entries are not saved yet),
and by the builder.  Everything comes from the disc's frozen entries and
the discs before it, never from the library's current state, so both calls
give the same bytes.

The files come in groups, each made by one small function that may look at
the groups before it: the payload, the sidecars, the manifest, the README
(with the restore tool), and last the bag files, which list everything.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib.util
import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from exporter import bag, manifest, offline_index, par2, readme, thumbnails, xmp
from exporter.errors import ExportError
from exporter.layout import DiscFile
from exporter.models import Disc, DiscEntry, EntryKind
from exporter.storage import Source

# The restore tool travels on every disc as restore.py (stdlib only).  A disc
# carries the tool of its layout version, frozen when that layout was released,
# so a disc shipped with it rebuilds byte-identical whatever restore.py becomes.
# The current layout's frozen file is identical to restore.py (a test pins every
# file's sha256 and that): an edit to restore.py needs a new layout version.
RESTORE_TOOL = Path(__file__).resolve().parent / "disc_tools" / "restore.py"
FROZEN_RESTORE_TOOLS = {n: RESTORE_TOOL.parent / "frozen" / f"restore-layout-{n}.py" for n in (1, 2, 3)}
# repair.py travels beside it from layout 3 on, frozen the same way.
REPAIR_TOOL = RESTORE_TOOL.parent / "repair.py"
FROZEN_REPAIR_TOOLS = {n: RESTORE_TOOL.parent / "frozen" / f"repair-layout-{n}.py" for n in (3,)}


class ManifestRefused(ExportError):
    """The disc's manifest.json does not pass its own restore tool's check:
    the disc must not be built (nor shipped)."""


def restore_tool(layout_version: int) -> Path:
    """The restore.py that a disc of ``layout_version`` carries."""
    try:
        return FROZEN_RESTORE_TOOLS[layout_version]
    except KeyError:
        raise ExportError(f"no restore tool is frozen for layout version {layout_version}") from None


@functools.cache
def _tool_module(layout_version: int):
    """The restore tool of a layout, loaded from its frozen file (the very code on the disc)."""
    spec = importlib.util.spec_from_file_location(f"_restore_layout_{layout_version}", restore_tool(layout_version))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_manifest(layout_version: int, raw: bytes) -> None:
    """Raise :class:`ManifestRefused` unless the restore tool of
    ``layout_version`` reads ``raw`` (manifest.json) as a valid manifest.
    (The tools of layout 1 check no schema.)"""
    tool = _tool_module(layout_version)
    if not hasattr(tool, "load_manifest"):
        return
    try:
        tool.load_manifest(raw)
    except tool.RestoreError as exc:
        raise ManifestRefused(
            f"manifest.json does not pass the check of the disc's own restore.py, which would refuse the disc: {exc}"
        ) from None


def _opener(storage_name: str):
    return lambda: default_storage.open(storage_name, "rb")


def _local_path(storage_name: str) -> str | None:
    try:
        return default_storage.path(storage_name)
    except NotImplementedError:  # object storage: par2 gets a copy
        return None


def _staged_opener(path: Path):
    return lambda: open(path, "rb")


class _Range(io.RawIOBase):
    """``size`` bytes of a stored file from ``offset``: a part of a split file."""

    def __init__(self, storage_name: str, offset: int, size: int):
        self._fh = default_storage.open(storage_name, "rb")
        self._fh.seek(offset)
        self._left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._left <= 0:
            return 0
        data = self._fh.read(min(len(buffer), self._left))
        buffer[: len(data)] = data
        self._left -= len(data)
        return len(data)

    def close(self) -> None:
        self._fh.close()
        super().close()


def _range_opener(storage_name: str, offset: int, size: int):
    return lambda: _Range(storage_name, offset, size)


def source_of(entry: DiscEntry) -> Source:
    """The bytes of a FILE entry in storage (of its part, for a split file)."""
    offset = entry.metadata["part"]["offset"] if "part" in entry.metadata else 0
    return Source(entry.version.storage_name, offset, entry.size, entry.sha256, entry.item_id)


def sources(entries: Sequence[DiscEntry]) -> list[Source]:
    """What the disc's payload needs from storage."""
    return [source_of(e) for e in entries if e.kind == EntryKind.FILE and not e.held_back]


def payload_files(entries: Sequence[DiscEntry], staged: Mapping[Source, Path] | None = None) -> list[DiscFile]:
    """The originals: one file per carried FILE entry, hard-linked into its
    other albums; read from ``staged`` copies where given (object storage)."""
    files = []
    for entry in entries:
        if entry.kind != EntryKind.FILE or entry.held_back:
            continue
        name = entry.version.storage_name
        local = staged.get(source_of(entry)) if staged else None
        part = entry.metadata.get("part")
        if part:
            # One file, in the first album: the joined file goes to every album on restore.
            paths, opener = (part["path"],), _range_opener(name, part["offset"], entry.size)
            local_path = None  # par2 gets a copy of the part
        else:
            paths, opener, local_path = tuple(entry.paths), _opener(name), _local_path(name)
        files.append(
            DiscFile(
                path=paths[0],
                links=paths[1:],
                size=entry.size,
                sha256=entry.sha256,
                open=_staged_opener(local) if local else opener,
                item_id=entry.item_id,
                local_path=str(local) if local else local_path,
            )
        )
    return files


def _describes(entry: DiscEntry) -> bool:
    """A part of a split file gets its sidecar on the disc that completes it."""
    return "part" not in entry.metadata or entry.metadata["part"]["completes"]


def sidecar_files(entries: Sequence[DiscEntry], before: Sequence[DiscFile]) -> tuple[list[DiscFile], dict[int, list]]:
    """An XMP sidecar next to every path of every carried FILE or METADATA
    entry (a metadata-only edit ships its sidecar without the bytes).
    Returns the files and ``item id -> sidecar paths``."""
    described = sorted(
        (e for e in entries if not e.held_back and e.kind != EntryKind.DELETION and e.paths and _describes(e)),
        key=lambda e: e.paths[0],
    )
    taken = [p for f in before for p in f.all_paths]
    occupied = {*taken, *xmp.folders_of(taken), *(p for e in described for p in e.paths)}
    paths = xmp.sidecar_paths([e.paths for e in described], occupied)
    files = []
    for entry, sidecars in zip(described, paths, strict=True):
        sidecar = DiscFile.from_bytes(sidecars[0], xmp.sidecar_xml(entry.metadata))
        files.append(DiscFile(sidecar.path, sidecar.size, sidecar.sha256, sidecar.open, links=tuple(sidecars[1:])))
    return files, {e.item_id: p for e, p in zip(described, paths, strict=True)}


def manifest_files(
    disc: Disc, entries: Sequence[DiscEntry], before: Sequence[DiscFile], sidecars: dict[int, list]
) -> tuple[list[DiscFile], dict]:
    """manifest.json, and its document for the files that follow."""
    document = manifest.describe(disc, entries, sidecars, {p for f in before for p in f.all_paths})
    return [DiscFile.from_bytes(manifest.MANIFEST_JSON, manifest.manifest_json(document))], document


def checked_manifest(disc: Disc, files: Sequence[DiscFile]) -> None:
    """The builder's check of a disc's files: its manifest.json passes the
    disc's own restore tool (:func:`check_manifest`)."""
    (listing,) = [f for f in files if f.path == manifest.MANIFEST_JSON]
    with listing.open() as fh:
        check_manifest(disc.layout_version, fh.read())


def readme_files(disc: Disc, document: dict, before: Sequence[DiscFile]) -> list[DiscFile]:
    """restore.py, repair.py (from layout 3) and README.txt, which mentions
    only what is on the disc."""
    layout_version = document["disc"]["layout_version"]
    files = [DiscFile.from_bytes(readme.RESTORE_PY, restore_tool(layout_version).read_bytes())]
    if layout_version in FROZEN_REPAIR_TOOLS and disc.sector_parity:
        files.append(DiscFile.from_bytes(readme.REPAIR_PY, FROZEN_REPAIR_TOOLS[layout_version].read_bytes()))
    present = [p for f in [*before, *files] for p in f.all_paths]
    text = readme.readme_txt(document, present, sector_parity=disc.sector_parity)
    files.append(DiscFile.from_bytes(readme.README_TXT, text))
    return files


MakeRecovery = Callable[[par2.Par2Plan, Sequence[DiscFile]], list[DiscFile]]


def recovery_files(disc: Disc, before: Sequence[DiscFile], make: MakeRecovery | None = None) -> list[DiscFile]:
    """recovery/: PAR2 data for everything under data/ (:mod:`exporter.par2`).

    Its sizes follow from the payload's paths and sizes alone.  Without
    ``make`` (the planner) these are size-only stand-ins; the builder's
    ``make(plan, payload)`` makes the real files, which must be the planned ones."""
    payload = [f for f in before if f.path.startswith(par2.PAYLOAD)]
    plan = par2.plan([(p, f.size) for f in payload for p in f.all_paths], disc.recovery_percent)
    if plan is None:
        return []
    if make is None:
        return [DiscFile.stand_in(path, size) for path, size in plan.outputs]
    made = make(plan, payload)
    if [(f.path, f.size) for f in made] != list(plan.outputs):
        raise par2.Par2Error(f"the recovery files are not the planned ones: {[(f.path, f.size) for f in made]}")
    return made


def bag_files(disc: Disc, document: dict, files: Sequence[DiscFile]) -> list[DiscFile]:
    """bagit.txt, bag-info.txt, manifest-sha256.txt and, last, tagmanifest-sha256.txt."""
    described = document["disc"]
    captured = described["captured"]
    dates = f", photos taken {captured['first'][:10]} to {captured['last'][:10]}" if captured["first"] else ""
    info = [
        ("Source-Organization", settings.DISCSUB_ORGANIZATION),
        # The planned date, not today's: a rebuild must be byte-identical.
        ("Bagging-Date", disc.planned_at.astimezone(dt.UTC).date().isoformat()),
        ("Bag-Group-Identifier", described["series"]),
        ("Bag-Count", f"{disc.number} of ?"),
        (
            "External-Description",
            f"Disc {disc.number} of the {settings.DISCSUB_ORGANIZATION} series {described['series']}: "
            f"the photos and videos of {described['subscriber']} added or changed in library changes "
            f"{described['first_change']} to {described['last_change']}{dates}. See README.txt.",
        ),
        ("External-Identifier", disc.volume_id),
    ]
    return bag.bag_files(info, files)


def disc_files(
    disc: Disc,
    entries: Sequence[DiscEntry],
    recovery: MakeRecovery | None = None,
    staged: Mapping[Source, Path] | None = None,
) -> list[DiscFile]:
    """Every file of the image (``recovery``: see :func:`recovery_files`;
    ``staged``: see :func:`payload_files`)."""
    carried = [e for e in entries if not e.held_back]
    files = payload_files(carried, staged)
    sidecars, sidecar_paths = sidecar_files(carried, files)
    files += sidecars
    # Thumbnails before the manifest, which names those it finds.
    files += thumbnails.disc_files(carried)
    listing, document = manifest_files(disc, entries, files, sidecar_paths)
    files += listing
    # index.html (from the manifest document) and recovery/ go here, before the README that mentions them.
    files += offline_index.index_files(document, files)
    files += recovery_files(disc, files, recovery)
    files += readme_files(disc, document, files)
    files += bag_files(disc, document, files)
    return files


def expected_checksums(files: Sequence[DiscFile]) -> dict[str, tuple[int, str]]:
    """canonical path -> (size, sha256) for every path of every file."""
    return {p: (f.size, f.sha256) for f in files for p in f.all_paths}
