"""PAR2 recovery data for a disc's payload, under ``recovery/`` on the disc.

The planner must know the exact size of every recovery file before the disc
exists, from the payload's paths and sizes alone.  So the shape of the set is
ours, not par2cmdline's:

- the payload paths, sorted, are cut into as few runs of at most 1,000
  files as can be, of nearly equal counts, each one PAR2 set: par2's time
  grows with the data times the recovery blocks of its set, and those with
  the files of the set, so sets keep a big disc of many photos in minutes;
- a set's block size is the smallest multiple of 2048 bytes (a sector: files
  start on a sector, so a bad sector spoils exactly one block) that cuts its
  files into at most ``max(2000, 2 × files)`` blocks (par2 takes 32,768);
  ``recovery_blocks = ceil(blocks × percent / 100)``;
- par2cmdline computes the packets (``par2 create -s -c``), and this module
  writes them out again in a fixed arrangement: ``recovery/data.par2`` holds
  the set's description (main, file description and checksum packets, one
  creator packet); the recovery blocks are spread evenly over at most eight
  ``recovery/data.volS+C.par2`` files, each ending with its own copy of the
  description.  With several sets, set N is ``recovery/data-NN.par2`` and
  its ``recovery/data-NN.volS+C.par2`` files.

Every packet par2cmdline makes is defined by the PAR 2.0 specification (the
recovery blocks, the set and file ids), and the arrangement and the creator
packet are ours, so the same payload always gives the same bytes, whichever
par2 version computed them.  A subscriber repairs an extracted disc with::

    cd DISC && par2 repair -B . recovery/data.par2

(the names in the set are relative to the disc root, ``data/…``), once for
each set's index file when there are several.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import struct
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from exporter import children
from exporter.errors import MISSING, UNREADABLE, SourceMismatch
from exporter.layout import DiscFile

SECTOR = 2048
TARGET_SOURCE_BLOCKS = 2000
MAX_SOURCE_BLOCKS = 32768  # par2cmdline's limit (PAR 2.0 allows 32768 input slices)
MAX_VOLUMES = 8
MAX_SET_FILES = 1000
DIRECTORY = "recovery"
INDEX = f"{DIRECTORY}/data.par2"  # the index file of a disc's only set
PAYLOAD = "data/"
CREATOR_TEXT = b"Created by Discsub (PAR 2.0 recovery data for the data folder)."

_MAGIC = b"PAR2\0PKT"
_HEADER = 64
_MAIN = b"PAR 2.0\0Main\0\0\0\0"
_FILE_DESC = b"PAR 2.0\0FileDesc"
_IFSC = b"PAR 2.0\0IFSC\0\0\0\0"
_RECOVERY = b"PAR 2.0\0RecvSlic"
_CREATOR = b"PAR 2.0\0Creator\0"
_COPY = 4 * 1024 * 1024


class Par2Error(RuntimeError):
    """par2 is missing, failed, or made something other than planned."""


def _pad4(n: int) -> int:
    return -(-n // 4) * 4


@dataclass(frozen=True)
class Par2Set:
    """The shape of one recovery set, known before any data is read."""

    name: str  # "data" or "data-01": recovery/<name>.par2
    block_size: int
    source_blocks: int
    recovery_blocks: int
    # (disc path, size) of every non-empty payload path, sorted; par2 skips empty files.
    files: tuple[tuple[str, int], ...]
    # (disc path, size) of every recovery file, the index first.
    outputs: tuple[tuple[str, int], ...]
    # (first exponent, count) of each volume file, in the order of outputs[1:].
    volumes: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Par2Plan:
    """A disc's recovery sets."""

    sets: tuple[Par2Set, ...]

    @property
    def outputs(self) -> tuple[tuple[str, int], ...]:
        """(disc path, size) of every recovery file, set by set, each index first."""
        return tuple(o for s in self.sets for o in s.outputs)

    @property
    def files(self) -> tuple[tuple[str, int], ...]:
        return tuple(f for s in self.sets for f in s.files)

    @property
    def indexes(self) -> tuple[str, ...]:
        """The index file of each set: what ``par2 repair`` is given."""
        return tuple(s.outputs[0][0] for s in self.sets)


def _blocks(sizes: Sequence[int], block_size: int) -> int:
    return sum(-(-s // block_size) for s in sizes)


def choose_block_size(sizes: Sequence[int]) -> int:
    """The smallest multiple of a sector that cuts ``sizes`` (all > 0) into at
    most ``max(2000, 2 × files)`` blocks (32,768 at most)."""
    if len(sizes) > MAX_SOURCE_BLOCKS:
        raise Par2Error(f"{len(sizes)} files are more than one PAR2 set can hold ({MAX_SOURCE_BLOCKS})")
    limit = min(MAX_SOURCE_BLOCKS, max(TARGET_SOURCE_BLOCKS, 2 * len(sizes)))
    lo, hi = 1, max(1, -(-max(sizes) // SECTOR))  # in sectors; at hi every file is one block
    while lo < hi:
        mid = (lo + hi) // 2
        if _blocks(sizes, mid * SECTOR) <= limit:
            hi = mid
        else:
            lo = mid + 1
    return lo * SECTOR


def _critical_size(files: Sequence[tuple[str, int]], block_size: int) -> int:
    """The main, file description and checksum packets: one copy of the set's description."""
    main = _HEADER + 12 + 16 * len(files)
    descriptions = sum(_HEADER + 56 + _pad4(len(path.encode("utf-8"))) for path, _ in files)
    checksums = sum(_HEADER + 16 + 20 * -(-size // block_size) for _, size in files)
    return main + descriptions + checksums


def creator_packet_size() -> int:
    return _HEADER + _pad4(len(CREATOR_TEXT))


def plan(payload: Iterable[tuple[str, int]], percent: int) -> Par2Plan | None:
    """The recovery sets for payload ``(disc path, size)`` pairs (every path
    of every file under ``data/``, hard links included) at ``percent`` %
    redundancy; None when there is nothing to protect or ``percent`` is 0."""
    if not 0 <= percent <= 100:
        raise ValueError(f"PAR2 redundancy must be 0-100 %, not {percent}")
    files = sorted((p, s) for p, s in payload if s > 0 and p.startswith(PAYLOAD))
    if percent == 0 or not files:
        return None
    count = -(-len(files) // MAX_SET_FILES)
    if count == 1:
        return Par2Plan((_plan_set("data", tuple(files), percent),))
    width = max(2, len(str(count)))
    base, extra = divmod(len(files), count)
    sets = []
    start = 0
    for n in range(count):
        end = start + base + (1 if n < extra else 0)
        sets.append(_plan_set(f"data-{n + 1:0{width}d}", tuple(files[start:end]), percent))
        start = end
    return Par2Plan(tuple(sets))


def _plan_set(name: str, files: tuple[tuple[str, int], ...], percent: int) -> Par2Set:
    block_size = choose_block_size([s for _, s in files])
    source_blocks = _blocks([s for _, s in files], block_size)
    recovery_blocks = -(-source_blocks * percent // 100)
    description = _critical_size(files, block_size) + creator_packet_size()
    count = min(MAX_VOLUMES, recovery_blocks)
    base, extra = divmod(recovery_blocks, count)
    width = len(str(recovery_blocks))
    outputs = [(f"{DIRECTORY}/{name}.par2", description)]
    volumes = []
    first = 0
    for n in range(count):
        blocks = base + (1 if n < extra else 0)
        volumes.append((first, blocks))
        volume = f"{DIRECTORY}/{name}.vol{first:0{width}d}+{blocks:0{width}d}.par2"
        outputs.append((volume, blocks * (_HEADER + 4 + block_size) + description))
        first += blocks
    return Par2Set(name, block_size, source_blocks, recovery_blocks, files, tuple(outputs), tuple(volumes))


def par2_sizes(payload: Iterable[tuple[str, int]], percent: int) -> list[tuple[str, int]]:
    """``(disc path, size)`` of every recovery file (names count: a file's
    description packet holds its path), set by set, each index first."""
    p = plan(payload, percent)
    return list(p.outputs) if p else []


# --- making the set --------------------------------------------------------------------


def _tool() -> str:
    path = shutil.which("par2")
    if path is None:
        raise Par2Error("par2 is not installed (Debian package par2, par2cmdline): it makes the disc's recovery data")
    return path


def _problem_key(f: DiscFile):
    return f.item_id if f.item_id is not None else f.path


def _expected(f: DiscFile, found: str) -> str:
    """Worded like the image writer's findings (:mod:`exporter.iso`)."""
    return f"expected sha256 {f.sha256} ({f.size} bytes), found {found}"


def stage(files: Sequence[DiscFile], root: Path, only: Collection[str] | None = None) -> None:
    """Lay out the payload under ``root`` with its disc paths (those in
    ``only``, if given): a symlink to the local file where there is one, else
    a copy.  A missing or wrongly sized source raises
    :class:`SourceMismatch`, like the image writer."""
    problems: dict = {}
    kinds: dict = {}
    for f in files:
        paths = [p for p in f.all_paths if p.startswith(PAYLOAD) and (only is None or p in only)]
        if not paths or f.size == 0:
            continue
        first = root / paths[0]
        first.parent.mkdir(parents=True, exist_ok=True)
        local = f.local_path
        try:
            if local:
                info = os.stat(local)
                if not stat.S_ISREG(info.st_mode):
                    problems[_problem_key(f)] = _expected(f, "unreadable source (not a regular file)")
                    kinds[_problem_key(f)] = UNREADABLE
                    continue
                found = info.st_size
                if found != f.size:
                    problems[_problem_key(f)] = _expected(f, f"{found} bytes")
                    continue
                os.symlink(os.path.abspath(local), first)
            else:
                with f.open() as src, open(first, "xb") as dst:
                    shutil.copyfileobj(src, dst, _COPY)
                found = first.stat().st_size
                if found != f.size:
                    problems[_problem_key(f)] = _expected(f, f"{found} bytes")
                    continue
        except FileNotFoundError as exc:
            problems[_problem_key(f)] = _expected(f, f"missing source ({exc})")
            kinds[_problem_key(f)] = MISSING
            continue
        except Exception as exc:  # storage is a black box: any failure is this file's problem
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):  # the build area's fault
                raise
            problems[_problem_key(f)] = _expected(f, f"unreadable source ({exc.__class__.__name__}: {exc})")
            kinds[_problem_key(f)] = UNREADABLE
            continue
        for link in paths[1:]:
            target = root / link
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(os.readlink(first) if first.is_symlink() else first.resolve(), target)
    if problems:
        raise SourceMismatch(problems, kinds)


def _packets(path: Path):
    """(type, body offset, length, packet hash, set id) of every packet of a par2 file we trust."""
    with open(path, "rb") as fh:
        offset = 0
        while header := fh.read(_HEADER):
            if len(header) < _HEADER or header[:8] != _MAGIC:
                raise Par2Error(f"{path.name}: not a PAR2 packet at byte {offset}")
            (length,) = struct.unpack_from("<Q", header, 8)
            if length < _HEADER or length % 4:
                raise Par2Error(f"{path.name}: bad packet length at byte {offset}")
            yield header[48:64], offset, length, header[16:32], header[32:48]
            fh.seek(offset + length)
            offset += length


def _read(path: Path, offset: int, length: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    if len(data) != length or hashlib.md5(data[32:]).digest() != data[16:32]:
        raise Par2Error(f"{path.name}: a damaged packet at byte {offset}")
    return data


def _creator(set_id: bytes) -> bytes:
    body = CREATOR_TEXT.ljust(_pad4(len(CREATOR_TEXT)), b"\0")
    tail = set_id + _CREATOR + body
    return _MAGIC + struct.pack("<Q", _HEADER + len(body)) + hashlib.md5(tail).digest() + tail


class _Out:
    """A recovery file being written, hashed as it goes."""

    def __init__(self, path: Path):
        self.path = path
        self.sha = hashlib.sha256()
        self.size = 0
        self._fh = open(path, "xb")

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self.sha.update(data)
        self.size += len(data)

    def close(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()


def _copy_packet(src: Path, offset: int, length: int, out: _Out) -> None:
    """Copy one (large) packet, checking its MD5 on the way."""
    md5 = hashlib.md5()
    with open(src, "rb") as fh:
        fh.seek(offset)
        head = fh.read(_HEADER)
        out.write(head)
        md5.update(head[32:])
        left = length - _HEADER
        while left:
            chunk = fh.read(min(_COPY, left))
            if not chunk:
                raise Par2Error(f"{src.name}: truncated packet at byte {offset}")
            out.write(chunk)
            md5.update(chunk)
            left -= len(chunk)
    if md5.digest() != head[16:32]:
        raise Par2Error(f"{src.name}: a damaged packet at byte {offset}")


def create(
    recovery: Par2Plan,
    payload: Sequence[DiscFile],
    workdir: Path,
    *,
    memory_mb: int = 512,
    threads: int = 2,
) -> list[DiscFile]:
    """Make the recovery files of ``recovery`` for ``payload`` (the files
    under ``data/``) in ``workdir``, which must be empty or absent.  The
    returned files read from ``workdir/disc/recovery``: keep it until the
    image is written.  ``memory_mb`` bounds par2's buffers (with less than
    the recovery data's size it reads the payload several times)."""
    tool = _tool()
    workdir = Path(workdir).resolve()
    final = workdir / "disc"
    (final / DIRECTORY).mkdir(parents=True)
    planned = {p for p, _ in recovery.files}
    paths = {p for f in payload for p in f.all_paths if f.size and p.startswith(PAYLOAD)}
    if paths != planned:
        raise Par2Error("the payload is not the one the recovery data was planned for")
    made: list[DiscFile] = []
    for one in recovery.sets:
        staged, raw = workdir / f"stage-{one.name}", workdir / f"par2-{one.name}"
        raw.mkdir()
        stage(payload, staged, {p for p, _ in one.files})
        command = [
            tool, "create", "-q", "-q",
            f"-s{one.block_size}", f"-c{one.recovery_blocks}", "-n1", "-u",
            f"-t{threads}", f"-m{memory_mb}", f"-B{staged}", "-R",
            str(raw / "set.par2"), str(staged / "data"),
        ]  # fmt: skip
        run = children.run(command)
        if run.returncode != 0:
            detail = (run.stderr or run.stdout).strip().splitlines()[-3:]
            raise Par2Error(f"par2 create failed (exit {run.returncode}): {' '.join(detail)}")
        made += _rearrange(one, raw, final)
        # Only the rearranged files are read from here on (the image writer reads the payload from storage).
        shutil.rmtree(raw)
        shutil.rmtree(staged)
    return made


def _rearrange(recovery: Par2Set, raw: Path, final: Path) -> list[DiscFile]:
    """par2cmdline's packets, written out in our arrangement (see the module docstring)."""
    critical: dict[bytes, tuple[bytes, bytes]] = {}  # packet hash -> (type, packet)
    slices: dict[int, tuple[Path, int, int]] = {}
    set_ids = set()
    for path in sorted(raw.glob("*.par2")):
        for kind, offset, length, packet_hash, set_id in _packets(path):
            set_ids.add(set_id)
            if kind == _RECOVERY:
                with open(path, "rb") as fh:
                    fh.seek(offset + _HEADER)
                    (exponent,) = struct.unpack("<I", fh.read(4))
                slices.setdefault(exponent, (path, offset, length))
            elif kind in (_MAIN, _FILE_DESC, _IFSC) and packet_hash not in critical:
                critical[packet_hash] = (kind, _read(path, offset, length))
    if len(set_ids) != 1:
        raise Par2Error("par2 made more than one recovery set")
    (set_id,) = set_ids
    description = _describe(recovery, critical)
    if sorted(slices) != list(range(recovery.recovery_blocks)):
        raise Par2Error("par2 made other recovery blocks than planned")
    creator = _creator(set_id)
    made: list[DiscFile] = []
    outputs = dict(recovery.outputs)
    plan_volumes = zip(recovery.outputs[1:], recovery.volumes, strict=True)
    index = recovery.outputs[0][0]
    for name, blocks in [(index, range(0)), *((n, range(a, a + c)) for (n, _), (a, c) in plan_volumes)]:
        out = _Out(final / name)
        try:
            for exponent in blocks:
                _copy_packet(*slices[exponent], out)
            out.write(description)
            out.write(creator)
        finally:
            out.close()
        if out.size != outputs[name]:
            raise Par2Error(f"{name}: {out.size} bytes, {outputs[name]} planned")
        made.append(_disc_file(name, out))
    return made


def _disc_file(name: str, out: _Out) -> DiscFile:
    path = out.path
    return DiscFile(path=name, size=out.size, sha256=out.sha.hexdigest(), open=lambda: open(path, "rb"))


def _describe(recovery: Par2Set, critical: dict[bytes, tuple[bytes, bytes]]) -> bytes:
    """One copy of the set's description, checked against the plan: the main
    packet, then each file's description and checksums in file id order."""
    mains = [p for kind, p in critical.values() if kind == _MAIN]
    if len(mains) != 1:
        raise Par2Error("par2 made no single main packet")
    main = mains[0]
    (block_size,) = struct.unpack_from("<Q", main, _HEADER)
    (count,) = struct.unpack_from("<I", main, _HEADER + 8)
    if block_size != recovery.block_size or count != len(recovery.files):
        raise Par2Error(f"par2 made a set of {count} files in {block_size}-byte blocks, other than planned")
    names = {}
    checksums = {}
    for kind, p in critical.values():
        file_id = p[_HEADER : _HEADER + 16]
        if kind == _FILE_DESC:
            names[file_id] = (p[_HEADER + 56 :].rstrip(b"\0").decode("utf-8", "surrogateescape"), p)
        elif kind == _IFSC:
            checksums[file_id] = p
    ids = [main[_HEADER + 12 + 16 * i : _HEADER + 28 + 16 * i] for i in range(count)]
    if sorted(n for n, _ in names.values()) != [p for p, _ in recovery.files] or set(ids) != set(names):
        raise Par2Error("par2 named the files otherwise than planned")
    if set(ids) != set(checksums):
        raise Par2Error("par2 made no checksums for some files")
    parts = [main]
    for file_id in sorted(ids):
        parts += [names[file_id][1], checksums[file_id]]
    return b"".join(parts)


def remove(workdir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(workdir)
