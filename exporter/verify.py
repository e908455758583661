"""Independent read-back of a disc image or an extracted disc folder.

:func:`verify_image` opens the image afresh with its own pycdlib instance,
finds every file's extents in the UDF directory tree, checks that the Rock
Ridge, Joliet and ISO 9660 trees point at the same data, and then reads the
image once, front to back: one thread hashes the whole image, another every
file's extents.  :func:`verify_folder` does the same for a folder that a
disc was extracted to.  Neither raises on a bad image; every finding is a
:class:`Problem`.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import threading
import unicodedata
import zlib
from array import array
from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pycdlib

from exporter.disc_tools import repair, restore

MANIFEST = "manifest-sha256.txt"
TAG_MANIFEST = "tagmanifest-sha256.txt"
MANIFEST_JSON = "manifest.json"
PAYLOAD = "data/"
# The tag files whose damage the BagIt manifests alone would not show.
TAGGED = (MANIFEST_JSON, MANIFEST)
CHUNK = 4 * 1024 * 1024
SECTOR = 2048

Expected = dict[str, tuple[int | None, str]]


@dataclass(frozen=True)
class Problem:
    path: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, found {self.found}"


@dataclass
class VerifyResult:
    problems: list[Problem] = field(default_factory=list)
    image_sha256: str = ""
    files_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


# --- what to expect ---------------------------------------------------------------

_LINE = re.compile(r"([0-9a-fA-F]{64})[ \t]+\*?(.+)")


def _decode_path(path: str) -> str:
    """RFC 8493 §2.1.3 percent-decoding of a manifest path."""
    return re.sub(r"%(0[dDaA]|25)", lambda m: chr(int(m.group(1), 16)), path)


def parse_manifest(data: bytes, name: str = MANIFEST) -> tuple[Expected, list[Problem]]:
    """``path -> (None, sha256)`` from BagIt manifest lines ``<sha256>  <path>``."""
    entries: Expected = {}
    problems = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return {}, [Problem(name, "UTF-8 text", f"undecodable bytes ({exc.reason} at {exc.start})")]
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            problems.append(Problem(name, "lines of '<sha256>  <path>'", f"line {number}: {line[:80]!r}"))
            continue
        entries[_decode_path(match.group(2))] = (None, match.group(1).lower())
    return entries, problems


def is_unsafe(path: str) -> bool:
    """Could this manifest path point outside the disc (or be read two ways)?"""
    return (
        not path
        or path.startswith(("/", "\\"))
        or re.match(r"[A-Za-z]:", path) is not None
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    )


def _unsafe_problem(path: str) -> Problem:
    return Problem(path, "a path inside the disc", "an unsafe path (not read)")


def _expectations(
    expected: Mapping[str, tuple[int, str]] | None, read: Callable[[str], bytes | None]
) -> tuple[Expected, list[Problem]]:
    """The caller's expectations, or the disc's own manifests (``read(name)``
    gives a root file's bytes, or None when it is absent)."""
    if expected is not None:
        return {p: (size, sha.lower()) for p, (size, sha) in expected.items()}, []
    problems = []
    document = read(MANIFEST_JSON)
    if document is None:
        problems.append(Problem(MANIFEST_JSON, "present", "missing"))
    data = read(MANIFEST)
    if data is None:
        return {}, [*problems, Problem(MANIFEST, "present", "missing")]
    entries, found = parse_manifest(data)
    problems += found
    if document is not None:
        problems += _described(document, entries)
    tags = read(TAG_MANIFEST)
    if tags is None:
        problems.append(Problem(TAG_MANIFEST, "present", "missing"))
    else:
        tag_entries, found = parse_manifest(tags, TAG_MANIFEST)
        problems += found
        problems += [Problem(TAG_MANIFEST, f"{n} listed", "not listed") for n in TAGGED if n not in tag_entries]
        entries.update(tag_entries)
    return entries, problems


def _described(document: bytes, entries: Expected) -> list[Problem]:
    """manifest.json checked against its schema (the restore tool's own check)
    and against the payload manifest: every payload file it names is listed
    there with the same sha256, every listed payload file is described, and
    its size becomes part of what ``entries`` expects."""
    try:
        named = restore.payload_of(restore.load_manifest(document))
    except restore.RestoreError as exc:
        return [Problem(MANIFEST_JSON, "a manifest matching schema discsub-manifest v1", str(exc))]
    problems = []
    for path, (size, sha) in sorted(named.items()):
        listed = entries.get(path)
        if listed is None:
            problems.append(Problem(path, f"listed in {MANIFEST} (it is in {MANIFEST_JSON})", "not listed"))
        elif sha is not None and sha != listed[1]:
            problems.append(Problem(path, f"sha256 {sha} ({MANIFEST_JSON})", f"sha256 {listed[1]} in {MANIFEST}"))
        elif size is not None:
            entries[path] = (size, listed[1])
    for path in sorted(p for p in entries if p.startswith(PAYLOAD) and p not in named and not is_unsafe(p)):
        problems.append(Problem(path, f"a file described by {MANIFEST_JSON}", f"only in {MANIFEST}"))
    return problems


def _compare(path: str, want: tuple[int | None, str], size: int, sha: str) -> list[Problem]:
    want_size, want_sha = want
    if want_size is not None and size != want_size:
        return [Problem(path, f"{want_size} bytes", f"{size} bytes")]
    if sha != want_sha:
        return [Problem(path, f"sha256 {want_sha}", f"sha256 {sha}")]
    return []


# --- hashing on two cores ---------------------------------------------------------------


class _Worker:
    """Runs calls in order on its own thread; the queue bounds the memory."""

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is None:
                try:
                    item[0](*item[1:])
                except BaseException as exc:
                    self.error = exc

    def submit(self, *call: Any) -> None:
        self._queue.put(call)

    def join(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


class _Unit:
    """The bytes of one file (several paths when they are hard links)."""

    def __init__(self, extents: tuple[tuple[int, int], ...]):
        self.extents = extents
        self.size = sum(length for _, length in extents)
        self.sha = hashlib.sha256()
        self.got = 0

    def update(self, data: memoryview) -> None:
        self.sha.update(data)
        self.got += len(data)


class _Dispatcher:
    """Feeds each chunk of the image to the units whose extents it covers."""

    def __init__(self, units: list[_Unit]):
        self._segments = sorted(
            ((start, start + length, unit) for unit in units for start, length in unit.extents), key=lambda s: s[0]
        )
        self._next = 0
        self._active: list[tuple[int, int, _Unit]] = []

    def feed(self, offset: int, chunk: bytes) -> None:
        end = offset + len(chunk)
        view = memoryview(chunk)
        while self._next < len(self._segments) and self._segments[self._next][0] < end:
            self._active.append(self._segments[self._next])
            self._next += 1
        still = []
        for segment in self._active:
            start, stop, unit = segment
            lo, hi = max(start, offset), min(stop, end)
            if lo < hi:
                unit.update(view[lo - offset : hi - offset])
            if stop > end:
                still.append(segment)
        self._active = still


def _merge(extents: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Join touching runs, so that views that split a file differently compare equal."""
    merged: list[tuple[int, int]] = []
    for start, length in extents:
        if length == 0:
            continue
        if merged and merged[-1][0] + merged[-1][1] == start:
            merged[-1] = (merged[-1][0], merged[-1][1] + length)
        else:
            merged.append((start, length))
    return tuple(merged)


def _in_order(extents: tuple[tuple[int, int], ...]) -> bool:
    return all(a + n <= b for (a, n), (b, _) in zip(extents, extents[1:], strict=False))


def _scan(
    fd: int, size: int, units: list[_Unit], volume: list | None = None, sectors: _SectorCheck | None = None
) -> str:
    """One pass over the image: its sha256, and every unit fed its bytes.
    With ``volume`` = [n], it gets the sha256 of the first n bytes too (the
    ISO volume without the recovery data after it) in place of n; with
    ``sectors``, every sector is checked against its CRC on the way."""
    sequential = [u for u in units if _in_order(u.extents)]
    apart = [u for u in units if not _in_order(u.extents)]
    image_sha = hashlib.sha256()
    image_worker, file_worker = _Worker(), _Worker()
    crc_worker = _Worker() if sectors is not None else None
    dispatcher = _Dispatcher(sequential)
    mark = volume[0] if volume else -1

    def capture() -> None:
        volume[0] = image_sha.copy().hexdigest()

    offset = 0
    try:
        while offset < size:
            # A read stops at the end of the volume, where its sha256 is taken.
            wanted = min(CHUNK, size - offset, mark - offset if offset < mark else CHUNK)
            chunk = os.pread(fd, wanted, offset)
            if not chunk:
                break
            image_worker.submit(image_sha.update, chunk)
            if offset + len(chunk) == mark:
                image_worker.submit(capture)
            file_worker.submit(dispatcher.feed, offset, chunk)
            if crc_worker is not None:
                crc_worker.submit(sectors.feed, offset, chunk)
            offset += len(chunk)
    finally:
        image_worker.join()
        file_worker.join()
        if crc_worker is not None:
            crc_worker.join()
    # Extents out of order (no writer of ours makes them): read them apart.
    for unit in apart:
        for start, length in unit.extents:
            while length > 0:
                chunk = os.pread(fd, min(CHUNK, length), start)
                if not chunk:
                    break
                unit.update(memoryview(chunk))
                start, length = start + len(chunk), length - len(chunk)
    return image_sha.hexdigest()


# --- images --------------------------------------------------------------------------


def _udf_files(iso: pycdlib.PyCdlib) -> dict[str, tuple[tuple[int, int], ...]]:
    """path (relative to the disc root) -> merged extents, in the UDF tree.

    Walked from the file identifier descriptors themselves: pycdlib's walk()
    rebuilds parent paths with the child's name encoding, which garbles a
    8-bit parent of a 16-bit child ("data" under a name with "：")."""
    found = {}
    part_start = iso.udf_main_descs.partitions[0].part_start_location
    pending = [("", iso.udf_root)]
    while pending:
        directory, entry = pending.pop()
        for fi_desc in entry.fi_descs.values():
            if fi_desc.is_parent() or fi_desc.file_entry is None:
                continue
            path = f"{directory}/{fi_desc.fi.decode(fi_desc.encoding)}".lstrip("/")
            child = fi_desc.file_entry
            if child.is_dir():
                pending.append((path, child))
                continue
            found[path] = _merge(
                [((part_start + d.log_block_num) * SECTOR + d.offset, d.extent_length) for d in child.alloc_descs]
            )
    return found


def _record_files(iso: pycdlib.PyCdlib, view: str) -> dict[str, tuple[tuple[int, int], ...]]:
    """The same for a directory-record tree (Rock Ridge, Joliet, ISO 9660),
    read from the records themselves: pycdlib's path lookup finds the last
    record of a multi-extent (> 4 GiB) file, not the first."""
    found = {}
    pending = ["/"]
    while pending:
        directory = pending.pop()
        for record in iso.list_children(**{view: directory}):
            if record is None or record.is_dot() or record.is_dotdot():
                continue
            if view == "rr_path":
                name = record.rock_ridge.name().decode("utf-8")
            else:
                name = record.file_identifier().decode("utf-16-be" if view == "joliet_path" else "ascii")
            path = f"{directory.rstrip('/')}/{name}"
            if record.is_dir():
                pending.append(path)
                continue
            extents = []
            while record is not None:
                extents.append((record.extent_location() * SECTOR, record.data_length))
                record = record.data_continuation
            found[path.lstrip("/")] = _merge(extents)
    return found


_VIEWS = {"rr_path": "Rock Ridge", "joliet_path": "Joliet", "iso_path": "ISO 9660"}


def _views(iso: pycdlib.PyCdlib) -> tuple[dict[str, tuple], dict[str, dict[str, tuple]], list[Problem]]:
    problems = []
    try:
        udf = _udf_files(iso)
    except Exception as exc:
        return {}, {}, [Problem("(UDF view)", "a readable directory tree", f"an error: {exc}")]
    others = {}
    for view, label in _VIEWS.items():
        try:
            others[view] = _record_files(iso, view)
        except Exception as exc:
            problems.append(Problem(f"({label} view)", "a readable directory tree", f"an error: {exc}"))
    return udf, others, problems


def _cross_check(
    path: str, extents: tuple, others: dict[str, dict[str, tuple]], indexes: dict[str, set]
) -> list[Problem]:
    problems = []
    rr = others.get("rr_path")
    if rr is not None:
        if path not in rr:
            problems.append(Problem(path, "the file in the Rock Ridge view", "none"))
        elif rr[path] != extents:
            problems.append(Problem(path, "the same data in the Rock Ridge and UDF views", "different extents"))
    for view in ("joliet_path", "iso_path"):
        if view in indexes and extents and extents not in indexes[view]:
            problems.append(Problem(path, f"the file in the {_VIEWS[view]} view", "none"))
    return problems


def _read_small(fd: int, extents: tuple[tuple[int, int], ...], limit: int = restore.SMALL_LIMIT) -> bytes:
    # The restore tool's own limit: a manifest it reads is one verify_disc reads.
    if sum(n for _, n in extents) > limit:
        raise ValueError(f"manifest too large (over {limit} bytes)")
    return b"".join(os.pread(fd, n, start) for start, n in extents)


def _declared_size(fd: int) -> int | None:
    """The image size the primary volume descriptor states, if there is one."""
    pvd = os.pread(fd, 88, 16 * SECTOR)
    if len(pvd) < 88 or pvd[1:6] != b"CD001":
        return None
    return int.from_bytes(pvd[80:84], "little") * SECTOR


class _SectorCheck:
    """The sector recovery data's own check (what ``repair.check`` finds), on
    the scan's way: every image and parity sector's CRC-32 against the CRC
    table, read once with everything else.  Only for recovery data whose
    header describes this very image; ``sound`` stays True while every sector
    has a readable CRC that it matches.  repair.check counts a sector as
    damaged for exactly these reasons (a sector it cannot read is one the
    scan cannot read either), so a sound scan means it would find nothing;
    anything else is left to it, to say what is wrong."""

    def __init__(self, layout: repair.Layout, sha256: bytes, crcs: array, known: bytearray):
        k, big_l, half = layout.k, layout.layer, layout.first_half
        p0, p1 = layout.parity_starts
        # (first sector, end, its CRC table entry): the image, then the two runs of parity layers
        # (parity layer j's sector g has entry (k + j) * L + g, and the layers of a run follow each other).
        self.runs = (
            (0, layout.image_sectors, 0),
            (p0, p0 + half * big_l, k * big_l),
            (p1, p1 + (layout.m - half) * big_l, (k + half) * big_l),
        )
        self.sha256 = sha256.hex()
        self.crcs, self.known = crcs, known
        self.sound = True

    def feed(self, offset: int, chunk: bytes) -> None:
        if not self.sound:
            return
        first, count = offset // SECTOR, len(chunk) // SECTOR
        view, crc32 = memoryview(chunk), zlib.crc32
        for start, end, entry in self.runs:
            lo, hi = max(first, start), min(first + count, end)
            if lo >= hi:
                continue
            at = entry + lo - start
            found = array("I", [crc32(view[(s - first) * SECTOR : (s - first + 1) * SECTOR]) for s in range(lo, hi)])
            if self.known.find(0, at, at + hi - lo) >= 0 or found != self.crcs[at : at + hi - lo]:
                self.sound = False
                return


def _sector_check(fd: int, volume_bytes: int, size: int, parity: int) -> _SectorCheck | None:
    """A check of the recovery data on the scan's way, when its header is the
    one this image should have (else None: :func:`_recovery_problems` then
    reads it apart and says what is wrong)."""
    try:
        reader = repair.Reader(fd)
        layout, sha256, _how = repair.find_header(reader)
        if (layout.image_sectors * SECTOR, layout.total_sectors * SECTOR) != (volume_bytes, size):
            return None
        if parity and layout.m != parity:
            return None
        crcs, known = repair.load_crcs(reader, layout)
    except (repair.RecoveryDataError, OSError):
        return None
    return _SectorCheck(layout, sha256, crcs, known)


def _recovery_problems(image: Path, volume_bytes: int, size: int, volume_sha: str, parity: int) -> list[Problem]:
    """What is wrong with the sector recovery data after the ISO volume
    (exporter.ecc), checked with the disc's own repair tool: it must be found,
    describe this volume, have ``parity`` layers (when given) and find no
    damaged sector anywhere."""
    label = f"{image.name} (recovery data)"
    try:
        report = repair.check(image)
    except (repair.RecoveryDataError, OSError) as exc:
        return [Problem(label, "sector recovery data after the ISO volume", f"none usable ({exc})")]
    layout, problems = report.layout, []
    if (layout.image_sectors * SECTOR, layout.total_sectors * SECTOR) != (volume_bytes, size):
        problems.append(
            Problem(
                label,
                f"an image of {volume_bytes} bytes and {size} bytes in all",
                f"{layout.image_sectors * SECTOR} and {layout.total_sectors * SECTOR}",
            )
        )
    if parity and layout.m != parity:
        problems.append(Problem(label, f"{parity} parity layers", str(layout.m)))
    damaged = report.bad_image + report.bad_recovery + report.no_crc
    if damaged or not report.repairable:
        problems.append(Problem(label, "no damaged sector", "; ".join(report.lines()[1:])))
    elif report.sha256_expected != volume_sha:  # (damage changes the volume's sha256 too: said once)
        problems.append(Problem(label, f"to record the volume's sha256 {volume_sha}", report.sha256_expected))
    return problems


def verify_image(
    image: Path, expected: Mapping[str, tuple[int, str]] | None = None, sector_parity: int | None = None
) -> VerifyResult:
    """Check every file of ``image`` against ``expected`` (canonical path ->
    (size, sha256)), or, when that is None, against the image's own BagIt
    manifests.  Bytes after the ISO volume must be sound sector recovery
    data (:mod:`exporter.ecc`), and with ``sector_parity`` (a disc's) they
    must be there with that many layers (0: there must be none)."""
    image = Path(image)
    label = image.name
    try:
        fh = open(image, "rb", buffering=0)
    except OSError as exc:
        return VerifyResult([Problem(label, "a readable image file", f"an error: {exc.strerror or exc}")])
    with fh:
        fd = fh.fileno()
        size = os.fstat(fd).st_size
        problems: list[Problem] = []
        declared = _declared_size(fd)
        protected = declared is not None and size > declared and sector_parity != 0
        if declared is not None and size != declared and not protected:
            cut = " (the image is truncated)" if size < declared else ""
            problems.append(Problem(label, f"{declared} bytes, as its volume descriptor says", f"{size} bytes{cut}"))
        if sector_parity and declared is not None and size <= declared:
            problems.append(Problem(label, "sector recovery data after the ISO volume", "none"))
        iso = pycdlib.PyCdlib()
        try:
            iso.open_fp(fh)
        except Exception as exc:
            if declared is None or size >= declared:
                problems.append(Problem(label, "a readable ISO 9660/UDF image", f"an unreadable image ({exc})"))
            return VerifyResult(problems, _scan(fd, size, []), 0)
        try:
            udf, others, found = _views(iso)
            problems += found
        finally:
            iso.close()

        def read_root(name: str) -> bytes | None:
            return _read_small(fd, udf[name]) if name in udf else None

        try:
            wanted, found = _expectations(expected, read_root)
        except (OSError, ValueError) as exc:
            wanted, found = {}, [Problem(MANIFEST, "a readable manifest", f"an error: {exc}")]
        problems += found
        indexes = {view: set(files.values()) for view, files in others.items()}
        units: dict[tuple, _Unit] = {}
        checked: dict[str, _Unit] = {}
        for path in sorted(wanted):
            if is_unsafe(path):
                problems.append(_unsafe_problem(path))
            elif path not in udf:
                problems.append(Problem(path, "the file on the disc", "none"))
            else:
                problems += _cross_check(path, udf[path], others, indexes)
                checked[path] = units.setdefault(udf[path], _Unit(udf[path]))
        volume = [declared] if protected else None
        sectors = _sector_check(fd, declared, size, sector_parity or 0) if protected else None
        image_sha = _scan(fd, size, list(units.values()), volume, sectors)
    if sectors is not None and sectors.sound:
        # Found, of this image's shape and parity, no sector damaged: what is left of the check.
        if sectors.sha256 != volume[0]:
            label = f"{image.name} (recovery data)"
            problems.append(Problem(label, f"to record the volume's sha256 {volume[0]}", sectors.sha256))
    elif protected:
        problems += _recovery_problems(image, declared, size, volume[0], sector_parity or 0)
    for path, unit in checked.items():
        if unit.got < unit.size:
            problems.append(Problem(path, f"{unit.size} bytes in the image", "the image ends inside this file"))
        else:
            problems += _compare(path, wanted[path], unit.size, unit.sha.hexdigest())
    payload = set(udf) | set(others.get("rr_path", {}))
    for path in sorted(p for p in payload if p.startswith(PAYLOAD) and p not in wanted):
        problems.append(Problem(path, "no such file (it is not in the manifest)", "an extra file"))
    return VerifyResult(problems, image_sha, len(checked))


# --- folders --------------------------------------------------------------------------


def _hash_file(path: str) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()


def _on_disk(folder: str) -> dict[str, str]:
    """NFC relative path -> relative path as stored (macOS may store NFD)."""
    found = {}
    for directory, dirs, names in os.walk(folder):
        dirs.sort()
        for name in names:
            rel = os.path.relpath(os.path.join(directory, name), folder).replace(os.sep, "/")
            found.setdefault(unicodedata.normalize("NFC", rel), rel)
    return found


def verify_folder(folder: Path, expected: Mapping[str, tuple[int, str]] | None = None) -> VerifyResult:
    """Check an extracted disc folder like :func:`verify_image` checks an image.
    Nothing outside ``folder`` is ever read."""
    root = os.path.realpath(folder)
    if not os.path.isdir(root):
        return VerifyResult([Problem(str(folder), "a folder", "none")])
    on_disk = _on_disk(root)

    def inside(rel: str) -> str | None:
        """The real path of ``rel`` if it stays in the folder, else None."""
        real = os.path.realpath(os.path.join(root, on_disk.get(unicodedata.normalize("NFC", rel), rel)))
        return real if real.startswith(root + os.sep) else None

    def read_root(name: str) -> bytes | None:
        real = inside(name)
        if real is None or not os.path.isfile(real):
            return None
        with open(real, "rb") as fh:
            return fh.read(64 * 1024 * 1024)

    wanted, problems = _expectations(expected, read_root)
    jobs: dict[str, str] = {}
    for path in sorted(wanted):
        real = None if is_unsafe(path) else inside(path)
        if real is None:
            problems.append(_unsafe_problem(path))
        elif not os.path.isfile(real):
            problems.append(Problem(path, "the file on the disc", "none"))
        else:
            jobs[path] = real
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(jobs, pool.map(_hash_or_error, jobs.values()), strict=True))
    for path, result in results.items():
        if isinstance(result, str):
            problems.append(Problem(path, "a readable file", f"an error: {result}"))
        else:
            problems += _compare(path, wanted[path], *result)
    wanted_nfc = defaultdict(list)
    for path in wanted:
        wanted_nfc[unicodedata.normalize("NFC", path)].append(path)
    for path in sorted(p for p in on_disk if p.startswith(PAYLOAD) and p not in wanted_nfc):
        problems.append(Problem(on_disk[path], "no such file (it is not in the manifest)", "an extra file"))
    return VerifyResult(problems, "", len(results))


def _hash_or_error(path: str) -> tuple[int, str] | str:
    try:
        return _hash_file(path)
    except OSError as exc:
        return exc.strerror or str(exc)
