"""Disc damage against every repair route: pattern × medium × route → files recovered, time.

    .venv/bin/python benchmarks/damage_matrix.py [--media cd,dvd] [--workdir /tmp/bench-damage]
        [--par2-media cd] [--par2-percent 14] [--seeds 5] [--skip-confirm] [--clean]

For each medium, an image that fills it with photo-sized files
(benchmarks/_photos.py, fixed seed) is written by ``exporter.iso.write_image``
with its MD5 implanted, then protected by ``exporter.ecc.protect`` (m = 32 of
255, the default), so that image and recovery data together fit the medium.
On the media of ``--par2-media`` the image also carries PAR2 files over the
payload in ``recovery/`` (``exporter.par2``, as layout-2 discs did), so that
every route meets the same damaged bytes.  The source files are deleted as
soon as the image is written.  Each damage pattern of issue 13 is applied in
place to the whole file (image and recovery data: the disc), with an undo
journal beside it (the original bytes of every sector it touches, or the
cut tail); each route repairs it, then the journal puts the bytes back and
checks them, and the whole disc's sha256 is checked once at the end.  So a
BD 25 GB run needs about 50 GB: the source files and the image while it is
written, later the disc, one repaired image and a journal.  The routes:

- ``ours``: the disc's ``repair.py`` run as ``python3 -I repair.py DAMAGED --to OUT``
  (standard library only, pinned to one core); byte-exact when OUT has the
  sha256 of the ISO image; OUT is deleted right after;
- ``dvdisaster``: ``dvdisaster -f`` on the damaged image part (in place: the
  recovery data after it goes into the journal first), with an RS03 ecc
  file made beforehand (``-mRS03 -o file -n normal``, 14.3 %) and kept safe
  elsewhere, as that route requires;
- ``par2``: every file read from its extents in the damaged image (zeros
  where unreadable), then ``par2 repair`` with the PAR2 files read the same way.

"Files" counts the payload files whose bytes, at their place in the repaired
image (or after par2), have their sha256.  Random sectors are drawn from all
the disc's sectors.  Then the largest share of random zeroed sectors the
default still repairs: the code is MDS, so a group comes back if and only if
at most m of its k + m sectors are damaged, and the first failure along a
seeded random order is found exactly by counting (a few seeds); for the
first seed the image is damaged just below and just above that point and
``repair.py --check`` must agree.  Last, the same count for other values of
m on every medium (the redundancy curve), with the encoding time of each m.
Figures and findings: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _photos  # noqa: E402
from sector_ecc import zero as _zero_sectors  # noqa: E402

from exporter import ecc, iso, isomd5, par2, verify  # noqa: E402
from exporter.disc_tools import repair as fmt  # noqa: E402
from exporter.layout import DiscFile  # noqa: E402
from exporter.media import CAPACITY_SECTORS  # noqa: E402

SECTOR = 2048
EPOCH = 1_700_000_000
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
CURVE_PARITY = (8, 16, 24, 32, 48, 64)
ROUTES = ("ours", "dvdisaster", "par2")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the disc -------------------------------------------------------------------------------


@dataclass
class Disc:
    medium: str
    path: Path  # image + recovery data
    image_sectors: int
    total_sectors: int
    iso_sha256: str
    disc_sha256: str  # image + recovery data, to check that every pattern was undone
    payload: dict  # disc path -> (extents, sha256)
    par2_files: dict  # the same for recovery/*.par2
    dvdisaster_ecc: Path | None
    made: dict = field(default_factory=dict)  # step -> seconds


def _stand_ins(data_plan: list[tuple[str, int]], percent: int) -> list[DiscFile]:
    from exporter.names import NameRequest, assign_disc_paths

    disc = assign_disc_paths([NameRequest(r, tuple(r.split("/")[:-1]), r.rsplit("/", 1)[-1]) for r, _ in data_plan])
    files = [DiscFile.stand_in(disc[r], size) for r, size in data_plan]
    if percent:
        files += [DiscFile.stand_in(p, s) for p, s in par2.par2_sizes([(f.path, f.size) for f in files], percent)]
    return files


def fit_plan(medium: str, percent: int, parity: int = fmt.DEFAULT_PARITY) -> tuple[list, int]:
    """The photo plan that fills ``medium`` with the image, its PAR2 files (at
    ``percent``) and the sector recovery data; the image's sectors."""
    capacity = CAPACITY_SECTORS[medium]
    k = fmt.MAX_CODEWORD - parity
    budget = capacity * SECTOR * k / fmt.MAX_CODEWORD * 0.995 / (1 + percent / 100)
    plan = _photos.photo_plan(int(budget), seed=f"{_photos.SEED}:{medium}")
    while True:
        sectors = iso.measure_sectors(_stand_ins(plan, percent), f"DAMAGE_{medium.upper()}")
        over = fmt.Layout.for_image(sectors, parity).total_sectors - capacity
        if over <= 0:
            return plan, sectors
        cut = over * SECTOR * k / fmt.MAX_CODEWORD / (1 + percent / 100) * 1.05
        while cut > 0:
            cut -= plan.pop()[1]


def _extents(image: Path) -> dict:
    import pycdlib

    pyc = pycdlib.PyCdlib()
    pyc.open(str(image))
    try:
        return verify._udf_files(pyc)
    finally:
        pyc.close()


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def make_disc(work: Path, medium: str, percent: int, dvdisaster: bool) -> Disc:
    plan, sectors = fit_plan(medium, percent)
    data = _photos.prepare(work, f"damage-{medium}", plan, log=log)
    payload = _photos.disc_files(data)
    made: dict[str, float] = {}
    recovery: list[DiscFile] = []
    par2_work = work / f"par2-{medium}"
    par2.remove(par2_work)
    if percent:
        recovery_plan = par2.plan([(f.path, f.size) for f in payload], percent)
        log(f"{medium}: par2 create at {percent} % over {data.payload / 1e6:,.0f} MB …")
        recovery, made["par2"] = _timed(lambda: par2.create(recovery_plan, payload, par2_work))
    image = work / f"{medium}.disc"
    log(f"{medium}: writing the image ({len(payload)} files) …")
    _, made["write + implant"] = _timed(
        lambda: iso.write_image(
            payload + recovery,
            image,
            f"DAMAGE_{medium.upper()}",
            EPOCH,
            hash_image=False,
            finalize=lambda p: isomd5.implant(p),
        )
    )
    par2.remove(par2_work)
    shutil.rmtree(data.root)  # the payload's sha256s are in ``payload``, its bytes in the image now
    data.index.unlink()
    if os.path.getsize(image) != sectors * SECTOR:
        raise SystemExit(f"{medium}: the image has {os.path.getsize(image) // SECTOR} sectors, {sectors} measured")
    iso_sha = fmt._sha256_file(str(image))
    extents = _extents(image)
    wanted = {f.path: (extents[f.path], f.sha256) for f in payload}
    par2_files = {f.path: (extents[f.path], f.sha256) for f in recovery}
    dvd_ecc = None
    if dvdisaster and shutil.which("dvdisaster"):
        dvd_ecc = work / f"{medium}.dvdisaster.ecc"
        dvd_ecc.unlink(missing_ok=True)
        log(f"{medium}: dvdisaster ecc file …")
        _, made["dvdisaster"] = _timed(lambda: _dvdisaster(["-i", str(image), "-e", str(dvd_ecc), "-c"]))
    log(f"{medium}: ecc.protect …")
    protection, made["ours"] = _timed(lambda: ecc.protect(image, sha256=iso_sha))
    disc_sha = fmt._sha256_file(str(image))
    return Disc(medium, image, sectors, protection.total_sectors, iso_sha, disc_sha, wanted, par2_files, dvd_ecc, made)


def _dvdisaster(argv: list[str]) -> subprocess.CompletedProcess:
    """dvdisaster, RS03 in an ecc file at "normal" (14.3 %), on both cores; its progress to /dev/null."""
    command = ["dvdisaster", "-mRS03", "-o", "file", "-n", "normal", "-x", "2", *argv]
    return subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")


# --- damage ---------------------------------------------------------------------------------


def _runs(sectors) -> list[tuple[int, int]]:
    """Distinct ``sectors`` as (first, count) runs, in order."""
    runs: list[list[int]] = []
    for s in sorted(set(sectors)):
        if runs and runs[-1][0] + runs[-1][1] == s:
            runs[-1][1] += 1
        else:
            runs.append([s, 1])
    return [(first, count) for first, count in runs]


def _spans(runs, limit: int = 2048):
    """(byte offset, length) pieces of ``runs`` of at most ``limit`` sectors."""
    for first, count in runs:
        for at in range(first, first + count, limit):
            yield at * SECTOR, min(limit, first + count - at) * SECTOR


class Journal:
    """Undo for damage done in place: the original bytes of every sector
    touched (:meth:`sectors`) or of a cut tail (:meth:`tail`), in a file
    beside the disc.  :meth:`undo` puts them back in reverse order and reads
    each step's ranges again against the sha256 they had before that step."""

    def __init__(self, disc: Path, path: Path):
        self.disc, self.path = disc, path
        self.size = os.path.getsize(disc)
        self.entries: list[tuple] = []  # (spans or None, tail offset or None, offset in the journal, sha256)
        self._file = open(path, "w+b")

    def _keep(self, fd: int, spans: list[tuple[int, int]]) -> tuple[int, str]:
        start, sha = self._file.tell(), hashlib.sha256()
        for offset, length in spans:
            data = os.pread(fd, length, offset)
            sha.update(data)
            self._file.write(data)
        return start, sha.hexdigest()

    def sectors(self, sectors) -> None:
        fd = os.open(self.disc, os.O_RDONLY)
        try:
            end = os.fstat(fd).st_size
            spans = [(o, min(n, end - o)) for o, n in _spans(_runs(sectors)) if o < end]
            self.entries.append((spans, None, *self._keep(fd, spans)))
        finally:
            os.close(fd)

    def tail(self, offset: int) -> None:
        """Before the disc file is cut to ``offset`` bytes."""
        fd = os.open(self.disc, os.O_RDONLY)
        try:
            end = os.fstat(fd).st_size
            spans = [(at, min(SECTOR * 2048, end - at)) for at in range(offset, end, SECTOR * 2048)]
            self.entries.append((spans, offset, *self._keep(fd, spans)))
        finally:
            os.close(fd)

    def undo(self) -> None:
        """Put every byte back; raise SystemExit if a range reads back otherwise."""
        self._file.flush()
        fd = os.open(self.disc, os.O_RDWR)
        try:
            for spans, cut, start, sha in reversed(self.entries):
                if cut is not None:
                    os.ftruncate(fd, cut)
                at = start
                for offset, length in spans:
                    os.pwrite(fd, os.pread(self._file.fileno(), length, at), offset)
                    at += length
                got = hashlib.sha256()  # each step reads back as it was before that step
                for offset, length in spans:
                    got.update(os.pread(fd, length, offset))
                if got.hexdigest() != sha:
                    raise SystemExit(f"{self.disc}: a journaled range did not come back")
            size = os.fstat(fd).st_size
            if size != self.size:
                raise SystemExit(f"{self.disc}: {size} bytes after the undo, {self.size} before the damage")
        finally:
            os.close(fd)
            self._file.close()
            self.path.unlink()


def _zero(path: Path, sectors, journal: Journal) -> None:
    journal.sectors(sectors)
    _zero_sectors(path, sectors)


def _truncate(path: Path, size: int, journal: Journal) -> None:
    journal.tail(size)
    os.truncate(path, size)


def _flip(path: Path, sectors, journal: Journal) -> None:
    journal.sectors(sectors)
    fd = os.open(path, os.O_RDWR)
    try:
        for s in sectors:
            at = s * SECTOR + 777
            os.pwrite(fd, bytes([os.pread(fd, 1, at)[0] ^ 0x5A]), at)
    finally:
        os.close(fd)


def patterns(disc: Disc) -> dict:
    """name -> what it does to a disc file (path, journal), drawn with a fixed seed."""
    total, n = disc.total_sectors, disc.image_sectors
    rnd = random.Random(f"damage:{disc.medium}")
    run = total // 20
    scattered2 = rnd.sample(range(total), total // 50)
    first64 = list(range(64)) + rnd.sample(range(total), total // 100)
    flipped = rnd.sample(range(total), 100)
    return {
        "2 % random sectors zeroed": lambda p, j: _zero(p, scattered2, j),
        "5 % run, middle of the image": lambda p, j: _zero(p, range(n // 2 - run // 2, n // 2 - run // 2 + run), j),
        "5 % run, end of the image": lambda p, j: _zero(p, range(n - run, n), j),
        "first 64 sectors + 1 % random": lambda p, j: _zero(p, first64, j),
        "last 3 % missing (truncated)": lambda p, j: _truncate(p, (total - total * 3 // 100) * SECTOR, j),
        "1 byte flipped in 100 sectors": lambda p, j: _flip(p, flipped, j),
    }


def _read_extents(fd: int, extents) -> bytes:
    parts = []
    for offset, length in extents:
        got = os.pread(fd, length, offset)
        parts.append(got + bytes(length - len(got)))  # past a truncated end: zeros, as a rescue tool fills
    return b"".join(parts)


def intact(image: Path, files: dict) -> int:
    """How many of ``files`` have their sha256 at their place in ``image``."""
    fd = os.open(image, os.O_RDONLY)
    try:
        return sum(hashlib.sha256(_read_extents(fd, ext)).hexdigest() == sha for ext, sha in files.values())
    finally:
        os.close(fd)


@dataclass
class Outcome:
    files: int
    exact: bool
    seconds: float
    note: str = ""


def route_ours(disc: Disc, damaged: Path, work: Path, tool: Path) -> Outcome:
    out = work / "repaired.iso"
    argv = [PYTHON, "-I", str(tool), str(damaged), "--to", str(out)]
    if shutil.which("taskset"):
        argv = ["taskset", "-c", "1", *argv]  # one core, whatever else runs
    run, took = _timed(lambda: subprocess.run(argv, capture_output=True, text=True))
    note = next((ln for ln in run.stdout.splitlines() if ln.startswith("checked")), run.stderr.strip()[-120:])
    if not out.exists():
        return Outcome(0, False, took, note)
    exact = fmt._sha256_file(str(out)) == disc.iso_sha256
    files = len(disc.payload) if exact else intact(out, disc.payload)
    out.unlink()
    return Outcome(files, exact, took, note.replace("checked ", ""))


def route_dvdisaster(disc: Disc, damaged: Path, journal: Journal) -> Outcome:
    """In place: the damaged file is cut to the image part first (the ecc file covers only that)."""
    if os.path.getsize(damaged) > disc.image_sectors * SECTOR:
        _truncate(damaged, disc.image_sectors * SECTOR, journal)
    run, took = _timed(lambda: _dvdisaster(["-i", str(damaged), "-e", str(disc.dvdisaster_ecc), "-f"]))
    said = [ln for ln in run.stderr.replace("\r", "\n").splitlines() if ln.startswith(("Repaired", "Good", "Bad"))]
    exact = os.path.getsize(damaged) == disc.image_sectors * SECTOR and fmt._sha256_file(str(damaged)) == (
        disc.iso_sha256
    )
    files = len(disc.payload) if exact else intact(damaged, disc.payload)
    return Outcome(files, exact, took, "; ".join(said)[:120])


def route_par2(disc: Disc, damaged: Path, work: Path) -> Outcome:
    """The files as a user would copy them off the damaged disc (zeros where unreadable), then par2 repair."""
    tree = work / "par2-tree"
    shutil.rmtree(tree, ignore_errors=True)
    fd = os.open(damaged, os.O_RDONLY)
    try:
        for path, (extents, _) in {**disc.payload, **disc.par2_files}.items():
            target = tree / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_read_extents(fd, extents))
    finally:
        os.close(fd)
    indexes = sorted(p for p in disc.par2_files if not Path(p).stem.split(".")[-1].startswith("vol"))
    start = time.perf_counter()
    codes = []
    for index in indexes:
        run = subprocess.run(
            ["par2", "repair", "-q", "-q", f"-B{tree}", str(tree / index)], capture_output=True, text=True
        )
        codes.append(run.returncode)
    took = time.perf_counter() - start
    files = 0
    for path, (_, sha) in disc.payload.items():
        with open(tree / path, "rb") as fh:
            files += hashlib.file_digest(fh, "sha256").hexdigest() == sha
    shutil.rmtree(tree)
    return Outcome(files, files == len(disc.payload), took, f"par2 exit {codes}")


def matrix(disc: Disc, work: Path, tool: Path, routes: list[str]) -> list[tuple[str, str, Outcome]]:
    rows = []
    damaged = disc.path  # damaged in place, then put back from the journal
    for name, damage in patterns(disc).items():
        journal = Journal(damaged, work / "undo.journal")
        damage(damaged, journal)
        # dvdisaster last: it repairs the damaged file in place.
        for route in sorted(routes, key=lambda r: r == "dvdisaster"):
            if route == "par2" and not disc.par2_files or route == "dvdisaster" and not disc.dvdisaster_ecc:
                continue
            log(f"{disc.medium}: {name}: {route} …")
            if route == "ours":
                outcome = route_ours(disc, damaged, work, tool)
            elif route == "par2":
                outcome = route_par2(disc, damaged, work)
            else:
                outcome = route_dvdisaster(disc, damaged, journal)
            log(f"  {outcome.files}/{len(disc.payload)} files, {outcome.seconds:.1f} s {outcome.note}")
            rows.append((name, route, outcome))
        journal.undo()
    _check_disc(disc)
    return rows


def _check_disc(disc: Disc) -> None:
    if fmt._sha256_file(str(disc.path)) != disc.disc_sha256:
        raise SystemExit(f"{disc.path}: the disc's sha256 is not the original after the undo")


# --- how much scattered damage --------------------------------------------------------------


def first_failure(layout: fmt.Layout, seed: int) -> list[int]:
    """Random distinct sectors of the disc (a seeded order), up to and
    including the first one that leaves a group with more than m damaged."""
    n, big_l, m = layout.image_sectors, layout.layer, layout.m
    (p0, p1), h = layout.parity_starts, layout.first_half

    def group(s: int) -> int | None:
        if s < n:
            return s % big_l
        if p0 <= s < p0 + h * big_l:
            return (s - p0) % big_l
        if p1 <= s < p1 + (m - h) * big_l:
            return (s - p1) % big_l
        return None  # a header or CRC table sector: there are 3-4 copies of each

    rnd = random.Random(seed)
    counts = bytearray(big_l)
    seen: set[int] = set()
    order: list[int] = []
    while True:
        s = rnd.randrange(layout.total_sectors)
        if s in seen:
            continue
        seen.add(s)
        order.append(s)
        g = group(s)
        if g is not None:
            counts[g] += 1
            if counts[g] > m:
                return order


def largest_random(layout: fmt.Layout, seeds: int) -> list[float]:
    """Per seed, the largest share (%) of the disc's sectors zeroed at random that still repairs."""
    return [100 * (len(first_failure(layout, seed)) - 1) / layout.total_sectors for seed in range(1, seeds + 1)]


def confirm(disc: Disc, work: Path, tool: Path) -> list[str]:
    """repair.py --check just below and at the first failure of seed 1."""
    layout = fmt.Layout.for_image(disc.image_sectors)
    order = first_failure(layout, 1)
    damaged = disc.path
    journal = Journal(damaged, work / "undo.journal")
    lines = []
    for upto, start in ((len(order) - 1, 0), (len(order), len(order) - 1)):
        _zero(damaged, order[start:upto], journal)
        run = subprocess.run([PYTHON, "-I", str(tool), str(damaged), "--check"], capture_output=True, text=True)
        verdict = "repairable" if run.returncode == 0 else "NOT repairable"
        lines.append(f"{upto:,} sectors ({100 * upto / layout.total_sectors:.3f} %) zeroed: --check says {verdict}")
    journal.undo()
    _check_disc(disc)
    return lines


def curve(media: list[str], seeds: int, encode_image: Path | None, work: Path) -> list[str]:
    """Per m: redundancy (m/k, as RS03 counts it), the share of a full medium
    left for the image, encoding speed, the largest random share repaired
    (min-median over the seeds) per medium, and the longest run repaired."""
    lines = [
        f"  {'m':>3} {'k':>4} {'m/k':>7} {'image/medium':>13} {'encode s/GB':>12} "
        + " ".join(f"{md.upper() + ' max random %':>20}" for md in media)
        + f" {'longest run':>12}"
    ]
    for m in CURVE_PARITY:
        k = fmt.MAX_CODEWORD - m
        encode = ""
        if encode_image is not None:
            copy = work / "encode.iso"
            shutil.copyfile(encode_image, copy)
            sha = fmt._sha256_file(str(copy))
            _, took = _timed(lambda m=m, copy=copy, sha=sha: ecc.protect(copy, parity=m, sha256=sha))
            encode = f"{took / (os.path.getsize(encode_image) / 1e9):.2f}"
            copy.unlink()
        cells, fill, run = [], 0.0, 0.0
        for medium in media:
            capacity = CAPACITY_SECTORS[medium]
            layout = fmt.Layout.for_image(ecc.image_capacity(capacity, m), m)
            shares = largest_random(layout, seeds)
            cells.append(f"{min(shares):6.2f}-{statistics.median(shares):5.2f} %")
            fill = max(fill, 100 * layout.image_sectors / capacity)
            run = max(run, 100 * m * layout.layer / layout.total_sectors)
        lines.append(
            f"  {m:>3} {k:>4} {100 * m / k:6.1f} % {fill:12.1f} % {encode:>12} "
            + " ".join(f"{c:>20}" for c in cells)
            + f" {run:10.1f} %"
        )
    return lines


# --- report ---------------------------------------------------------------------------------


def report(disc: Disc, rows: list, seeds: int, confirmed: list[str]) -> list[str]:
    total = len(disc.payload)
    lines = [
        "",
        f"== {disc.medium.upper()}: {total} payload files; image {disc.image_sectors:,} sectors "
        f"({disc.image_sectors * SECTOR / 1e9:.2f} GB), with recovery data {disc.total_sectors:,} of "
        f"{CAPACITY_SECTORS[disc.medium]:,} sectors; {len(disc.par2_files)} PAR2 files",
        "  made in: " + ", ".join(f"{step} {s:.1f} s" for step, s in disc.made.items()),
        f"  {'pattern':<32} {'route':<11} {'files':>11} {'exact':>6} {'repair s':>9}  what the tool said",
    ]
    for name, route, o in rows:
        lines.append(
            f"  {name:<32} {route:<11} {o.files:>5}/{total:<5} {'yes' if o.exact else 'NO':>6} "
            f"{o.seconds:9.1f}  {o.note}"
        )
    shares = largest_random(fmt.Layout.for_image(disc.image_sectors), seeds)
    lines.append(
        f"  largest random share repaired (m = 32, {seeds} seeds): "
        + ", ".join(f"{s:.2f} %" for s in shares)
        + f" (min {min(shares):.2f} %)"
    )
    lines += [f"  confirmed, seed 1: {c}" for c in confirmed]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--media", default="cd,dvd", help="comma-separated: cd, dvd, dvd-dl, bd")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-damage"))
    parser.add_argument("--par2-media", default="cd", help="media whose image also carries PAR2 files")
    parser.add_argument("--par2-percent", type=int, default=14)
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--skip-confirm", action="store_true", help="no repair.py --check at the failure point")
    parser.add_argument("--skip-curve", action="store_true")
    parser.add_argument("--clean", action="store_true", help="delete the work folder (data sets too) at the end")
    args = parser.parse_args()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    tool = work / "disc" / "repair.py"
    tool.parent.mkdir(exist_ok=True)
    shutil.copyfile(fmt.__file__, tool)
    media = [m for m in args.media.split(",") if m]
    routes = [r for r in args.routes.split(",") if r]
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    lines = []
    encode_image = None
    try:
        for medium in media:
            percent = args.par2_percent if medium in args.par2_media.split(",") and "par2" in routes else 0
            load = os.getloadavg()[0]
            disc = make_disc(work, medium, percent, "dvdisaster" in routes)
            rows = matrix(disc, work, tool, routes)
            confirmed = [] if args.skip_confirm else confirm(disc, work, tool)
            lines += report(disc, rows, args.seeds, confirmed)
            lines.append(
                f"  load average at the start of this medium: {load:.2f}, at its end: {os.getloadavg()[0]:.2f}"
            )
            if encode_image is None and not args.skip_curve:
                encode_image = work / "encode-source.iso"
                shutil.copyfile(disc.path, encode_image)
                os.truncate(encode_image, disc.image_sectors * SECTOR)  # the ISO image alone
            disc.path.unlink()
            if disc.dvdisaster_ecc:
                disc.dvdisaster_ecc.unlink(missing_ok=True)
        if not args.skip_curve:
            lines += ["", "== redundancy curve (k + m = 255; CD, DVD, BD 25 GB filled; counted, not run)"]
            lines += curve(["cd", "dvd", "bd"], args.seeds, encode_image, work)
    finally:
        if encode_image is not None:
            encode_image.unlink(missing_ok=True)
        if args.clean:
            shutil.rmtree(work, ignore_errors=True)
    print(f"Discsub damage matrix, {started}; {os.cpu_count()} cores; repair.py by {PYTHON} -I, pinned to one core")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
