"""Building a disc image: exporter.iso against genisoimage, in wall time and peak memory.

    .venv/bin/python benchmarks/iso_build.py [--size-gb 4] [--big-gb 5] [--workdir /tmp/bench-iso] [--skip-big]
        [--rounds 3] [--max-wait 20] [--clean]

Two data sets are generated once under ``--workdir`` (and reused): photo-sized
files of 0.5-15 MB in nested albums, and one big file (a dvd-dl disc, and a
file over 4 GiB).  Their sha256 is computed at generation, as it is at upload.
For each data set, four contenders run, each in its own process, each after
the page cache is dropped:

- ``genisoimage`` (ISO 9660 level 3 + Joliet + Rock Ridge + UDF) and an fsync;
- ``cat`` of the same bytes into one file and an fsync: the floor;
- ``write_image``: our build step (source check, fsync, rename; the image
  sha256 belongs to the full pipeline, where the read-back computes it);
- ``write_image`` then ``verify_image``: the full pipeline, read-back included.

It first waits for a quiet machine (load under 1, nobody's pytest running),
then, before each contender, for idle cores; a run during which someone's
pytest started is run again.  Each contender runs ``--rounds`` times, in
rotated orders, and the table gives the median.  Figures and findings:
docs/benchmarks.md.

Peak memory is the child's VmHWM: our children report their own at exit,
and the tools' is polled from /proc while they run (wait4's ru_maxrss would
include the RSS this process had when it forked them).  The exporter package
is copied to the work folder first, so that every contender of one run runs
the same code even while the tree is being edited.  Needs root to drop the
page cache; without it every contender starts after the same warm-up.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
GB = 1_000_000_000
SEED = "discsub-bench-1"
EPOCH = 1_700_000_000
CHUNK = 8 * 1024 * 1024
DATA_VERSION = 1
ISO_FILE_LIMIT = 4 * 1024**3 - 1  # genisoimage refuses bigger files without -allow-limited-size

# Where photos go: a few albums, some nested, one with a non-ASCII name.
ALBUMS = [
    ("2019", "Summer in Brittany"),
    ("2019", "Summer in Brittany", "Beach"),
    ("2020", "Grandma's 80th"),
    ("2021", "Été à Québec"),
    ("2021", "Été à Québec", "Day 2", "Old town"),
    ("Phone uploads",),
]
PHOTO_MIN, PHOTO_MAX = 0.5 * MB, 15 * MB

CONTENDERS = {
    "genisoimage": "genisoimage + fsync (baseline)",
    "copy": "cat > one file + fsync (floor)",
    "build": "ours: write_image",
    "full": "ours: write_image + verify_image",
}
TARGETS = {"build": 1.1, "full": 1.6}
RSS_TARGET_MB = 200
POLL_SECONDS = 30
QUIET_BEFORE_EACH = 300  # seconds to wait for the cores to idle before each contender
RETRIES = 2  # repeats of a run that another test run disturbed
HWM_POLL = 0.02


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- data sets ----------------------------------------------------------------------------


@dataclass
class DataSet:
    name: str
    root: Path
    files: list[dict]  # rel (below root), disc (canonical disc path), size, sha256

    @property
    def payload(self) -> int:
        return sum(f["size"] for f in self.files)


def _photo_plan(target: int) -> list[tuple[str, int]]:
    """(relative path, size) of photos adding up to about ``target`` bytes;
    sizes are log-uniform, as in a phone library (many small, a few big)."""
    rng = random.Random(f"{SEED}:photos")
    plan, total, n = [], 0, 0
    while total < target:
        n += 1
        size = int(math.exp(rng.uniform(math.log(PHOTO_MIN), math.log(PHOTO_MAX))))
        size = min(size, max(target - total, int(PHOTO_MIN)))
        album = "/".join(rng.choice(ALBUMS))
        plan.append((f"{album}/IMG_{n:05d}.JPG", size))
        total += size
    return plan


def _write_random(path: Path, size: int, seed: str, bar) -> str:
    """Write ``size`` seeded random bytes to ``path`` (atomically); their sha256."""
    rng = random.Random(seed)
    sha = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as out:
        left = size
        while left:
            data = rng.randbytes(min(CHUNK, left))
            sha.update(data)
            out.write(data)
            left -= len(data)
            bar.update(len(data))
    os.replace(tmp, path)
    return sha.hexdigest()


def _reusable(index: Path, params: dict, root: Path) -> list[dict] | None:
    try:
        saved = json.loads(index.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("params") != json.loads(json.dumps(params)):
        return None
    for f in saved["files"]:
        try:
            if (root / f["rel"]).stat().st_size != f["size"]:
                return None
        except OSError:
            return None
    return saved["files"]


def prepare(workdir: Path, name: str, plan: list[tuple[str, int]]) -> DataSet:
    """The data set ``name``, generated under ``workdir`` unless it is there already."""
    from tqdm import tqdm

    from exporter.names import NameRequest, assign_disc_paths

    root = workdir / "data" / name
    index = workdir / "data" / f"{name}.json"
    params = {"version": DATA_VERSION, "seed": SEED, "plan": plan}
    files = _reusable(index, params, root)
    if files is not None:
        log(f"{name}: reusing {len(files)} files under {root}")
        return DataSet(name, root, files)
    if root.exists():
        shutil.rmtree(root)
    disc = assign_disc_paths([NameRequest(rel, tuple(rel.split("/")[:-1]), rel.rsplit("/", 1)[-1]) for rel, _ in plan])
    files = []
    total = sum(size for _, size in plan)
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"generating {name}", file=sys.stderr) as bar:
        for rel, size in plan:
            sha = _write_random(root / rel, size, f"{SEED}:{name}:{rel}", bar)
            files.append({"rel": rel, "disc": disc[rel], "size": size, "sha256": sha})
    os.sync()
    index.write_text(json.dumps({"params": params, "files": files}))
    return DataSet(name, root, files)


# --- the child: our contenders ----------------------------------------------------------------


def _vm(field_name: str) -> int:
    """A /proc/self/status memory field, in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def child(args: argparse.Namespace) -> None:
    """Runs in the measured process: build (and verify) one image, write the result as JSON."""
    sys.path.insert(0, args.code)
    from exporter.iso import write_image
    from exporter.layout import DiscFile
    from exporter.verify import verify_image

    saved = json.loads(Path(args.index).read_text())
    root = Path(args.root)
    files = [
        DiscFile(
            path=f["disc"],
            size=f["size"],
            sha256=f["sha256"],
            open=lambda p=root / f["rel"]: open(p, "rb"),
        )
        for f in saved["files"]
    ]
    result: dict = {"rss_before": _vm("VmRSS")}
    start = time.perf_counter()
    # The image sha256 is the read-back's job (issue #2: the full pipeline is
    # build, image sha256, read-back verification), so the writer skips it.
    image = write_image(files, Path(args.out), "DISCSUB_BENCH", EPOCH, hash_image=False)
    result.update(write_s=time.perf_counter() - start, size=image.size, sha256=image.sha256)
    if args.child == "full":
        start = time.perf_counter()
        verified = verify_image(Path(args.out), {f.path: (f.size, f.sha256) for f in files})
        result.update(
            verify_s=time.perf_counter() - start,
            verify_sha256=verified.image_sha256,
            files_checked=verified.files_checked,
            problems=[str(p) for p in verified.problems[:5]],
            problem_count=len(verified.problems),
        )
    result["hwm"] = _vm("VmHWM")
    Path(args.result).write_text(json.dumps(result))


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Run:
    contender: str
    wall: float
    peak_rss: int  # bytes
    cpu: float  # user + system seconds of the contender's process
    detail: dict = field(default_factory=dict)
    foreign: list[str] = field(default_factory=list)  # other test runs seen while it ran


def _foreign_tests() -> list[str]:
    """Command lines of pytest processes that are not ours."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "pytest" in cmdline or "py.test" in cmdline:
            found.append(f"{pid}: {cmdline.strip()[:100]}")
    return found


def _cpu_busy(seconds: float = 2) -> float:
    """The share of all cores that was busy (not idle, not waiting for I/O) for ``seconds``."""

    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = values[3] + values[4]
        return sum(values) - idle, sum(values)

    busy_before, total_before = sample()
    time.sleep(seconds)
    busy_after, total_after = sample()
    return (busy_after - busy_before) / max(1, total_after - total_before)


def wait_until_quiet(max_wait: float, load_limit: float | None = 1) -> list[str]:
    """Wait (up to ``max_wait`` seconds) for a quiet machine: no pytest, the
    load average under ``load_limit`` (or, when None, the cores idle right
    now, as after our own previous contender the load average is still up);
    what was still busy."""
    deadline = time.monotonic() + max_wait
    while True:
        if load_limit is None:
            share = _cpu_busy()
            busy = [f"cores {share:.0%} busy"] if share > 0.15 else []
        else:
            load = os.getloadavg()[0]
            busy = [f"load {load:.2f}"] if load >= load_limit else []
        busy += [f"pytest {p}" for p in _foreign_tests()]
        if not busy:
            if load_limit is not None:
                log(f"machine quiet (load {load:.2f})")
            return []
        if time.monotonic() >= deadline:
            log("still busy, measuring anyway: " + "; ".join(busy))
            return busy
        log(f"busy ({'; '.join(busy)}); retrying in {POLL_SECONDS} s")
        time.sleep(POLL_SECONDS)


def _settle(can_drop: bool, sources: list[Path]) -> None:
    """The same starting point for every contender: nothing dirty, a cold cache
    (or, without root, the sources freshly read)."""
    os.sync()
    if can_drop:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
    else:
        for path in sources:
            with open(path, "rb", buffering=0) as fh:
                while fh.read(CHUNK):
                    pass
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        meminfo = Path("/proc/meminfo").read_text().split("\n")
        pending = sum(int(line.split()[1]) for line in meminfo if line.startswith(("Dirty:", "Writeback:")))
        if pending < 16 * 1024:
            break
        time.sleep(0.5)
    time.sleep(2)


def can_drop_caches() -> bool:
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("3\n")
        return True
    except OSError:
        return False


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def measure(contender: str, data: DataSet, workdir: Path, code: Path, index: Path) -> Run:
    out = workdir / "out" / f"{data.name}-{contender}.iso"
    out.parent.mkdir(exist_ok=True)
    result_file = workdir / "out" / f"{data.name}-{contender}.json"
    sources = [data.root / f["rel"] for f in sorted(data.files, key=lambda f: f["rel"])]
    stdout, sync_after = subprocess.DEVNULL, True
    if contender == "genisoimage":
        argv = ["genisoimage", "-quiet", "-iso-level", "3", "-J", "-joliet-long", "-R", "-udf"]
        if any(f["size"] > ISO_FILE_LIMIT for f in data.files):
            argv.append("-allow-limited-size")
        argv += ["-o", str(out), str(data.root)]
    elif contender == "copy":
        argv = ["cat", *map(str, sources)]
        stdout = open(out, "wb")  # closed below, once cat is gone
    else:
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", contender, "--code", str(code)]
        argv += ["--index", str(index), "--root", str(data.root), "--out", str(out), "--result", str(result_file)]
        sync_after = False  # write_image fsyncs the image and its folder itself
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout)
        peak, cpu, foreign = _watch(proc)
        if proc.returncode != 0:
            raise SystemExit(f"{contender} failed with exit status {proc.returncode}: {argv[:12]}")
        if sync_after:
            _fsync(out)
        wall = time.perf_counter() - start
    finally:
        if stdout is not subprocess.DEVNULL:
            stdout.close()
    detail = {"image_size": out.stat().st_size}
    if result_file.exists():
        detail.update(json.loads(result_file.read_text()))
        result_file.unlink()
        peak = max(peak, detail["hwm"])
    out.unlink()
    return Run(contender, wall, peak, cpu, detail, foreign)


def _watch(proc: subprocess.Popen) -> tuple[int, float, list[str]]:
    """Wait for ``proc``: the highest VmHWM seen meanwhile (bytes), its CPU
    seconds, and the other test runs seen meanwhile."""
    peak, foreign, next_scan = 0, set(_foreign_tests()), time.monotonic() + 1
    status = Path(f"/proc/{proc.pid}/status")
    while True:
        pid, code, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(code)
            return peak, usage.ru_utime + usage.ru_stime, sorted(foreign)
        try:
            for line in status.read_text().split("\n"):
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except (OSError, ValueError, IndexError):
            pass  # exiting: its memory was already seen
        if time.monotonic() >= next_scan:
            foreign.update(_foreign_tests())
            next_scan = time.monotonic() + 1
        time.sleep(HWM_POLL)


def snapshot_code(workdir: Path) -> tuple[Path, str]:
    """A copy of the exporter package, and a description of what it is."""
    code = workdir / "code"
    if code.exists():
        shutil.rmtree(code)
    shutil.copytree(REPO / "exporter", code / "exporter", ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    iso_sha = hashlib.sha256((code / "exporter" / "iso.py").read_bytes()).hexdigest()[:12]

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", "exporter") else ""
    return code, f"exporter/ at {head}{dirty} (iso.py sha256 {iso_sha}…)"


# --- report --------------------------------------------------------------------------------------


def _ratio_line(label: str, ours: float, theirs: float, target: float, inside: float) -> str:
    ratio = ours / theirs
    verdict = "met" if ratio <= target else "MISSED"
    return (
        f"  {label:<34} {ratio:5.2f}×   (target ≤ {target}×: {verdict}; "
        f"{inside / theirs:.2f}× counting only the time inside the calls)"
    )


def _work(run: Run) -> float | None:
    """Seconds spent inside write_image (and verify_image), without process start."""
    if "write_s" not in run.detail:
        return None
    return run.detail["write_s"] + run.detail.get("verify_s", 0)


def report(data: DataSet, runs: dict[str, list[Run]], notes: list[str]) -> str:
    payload = data.payload
    typical = runs["build"][0].detail
    lines = [
        "",
        f"== {data.name}: {len(data.files)} files, {payload / MB:,.0f} MB of payload, "
        f"image {typical['size'] / MB:,.0f} MB ({typical['size'] // 2048:,} sectors)",
        f"  {'contender':<34} {'wall s':>7} {'MB/s':>6} {'CPU s':>6} {'peak RSS MB':>12} {'in calls s':>11}"
        "   rounds (wall s)",
    ]
    wall, rss, work, cpu = {}, {}, {}, {}
    for key, label in CONTENDERS.items():
        measured = runs[key]
        wall[key] = statistics.median(r.wall for r in measured)
        rss[key] = max(r.peak_rss for r in measured) / MB
        cpu[key] = statistics.median(r.cpu for r in measured)
        inside = [w for r in measured if (w := _work(r)) is not None]
        work[key] = statistics.median(inside) if inside else None
        shown = f"{work[key]:11.1f}" if work[key] is not None else f"{'':11}"
        rounds = " ".join(f"{r.wall:.1f}" for r in measured)
        lines.append(
            f"  {label:<34} {wall[key]:7.1f} {payload / MB / wall[key]:6.0f} {cpu[key]:6.1f} {rss[key]:12.1f}"
            f" {shown}   {rounds}"
        )
    full = runs["full"][0].detail
    lines += [
        f"  (full pipeline: write_image {statistics.median(r.detail['write_s'] for r in runs['full']):.1f} s, "
        f"verify_image {statistics.median(r.detail['verify_s'] for r in runs['full']):.1f} s; "
        f"our process start and imports, cold: {wall['build'] - work['build']:.1f} s and "
        f"{typical['rss_before'] / MB:.0f} MB)",
        _ratio_line(
            "build step: ours / genisoimage", wall["build"], wall["genisoimage"], TARGETS["build"], work["build"]
        ),
        _ratio_line(
            "full pipeline: ours / genisoimage", wall["full"], wall["genisoimage"], TARGETS["full"], work["full"]
        ),
        f"  {'build step: ours / plain copy':<34} {wall['build'] / wall['copy']:5.2f}×",
    ]
    peak = max(rss["build"], rss["full"])
    lines.append(
        f"  {'peak memory, ours':<34} {peak:5.0f} MB (target < {RSS_TARGET_MB} MB: "
        f"{'met' if peak < RSS_TARGET_MB else 'MISSED'})"
    )
    sha = {r.detail["verify_sha256"] for r in runs["full"]}
    checks = [
        "image sha256 " + (f"{next(iter(sha))[:16]}… in every build" if len(sha) == 1 else "DIFFERS between builds"),
        f"verify_image checked {full['files_checked']} files, {full['problem_count']} problems",
    ]
    lines.append("  " + "; ".join(checks))
    lines += [f"  problem: {p}" for p in full["problems"]]
    if data.payload != runs["copy"][0].detail["image_size"]:
        lines.append("  the plain copy has the wrong size")
    lines += [f"  note: {n}" for n in notes]
    return "\n".join(lines)


def _few(items: list[str], shown: int = 2) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return "; ".join(items[:shown]) + more


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=4, help="photo data set size (GB = 10^9 bytes)")
    parser.add_argument("--big-gb", type=float, default=5, help="size of the single big file (GB)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-iso"))
    parser.add_argument("--skip-big", action="store_true", help="only the photo data set")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each contender, in alternating orders")
    parser.add_argument(
        "--max-wait", type=float, default=20, help="minutes to wait for a quiet machine at the start, and between runs"
    )
    parser.add_argument("--clean", action="store_true", help="delete the work folder at the end")
    for internal in ("--child", "--code", "--index", "--root", "--out", "--result"):
        parser.add_argument(internal, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    sys.path.insert(0, str(REPO))
    workdir = args.workdir.resolve()
    if workdir == REPO or REPO in workdir.parents:
        raise SystemExit("the work folder must be outside the repository")
    workdir.mkdir(parents=True, exist_ok=True)
    if shutil.which("genisoimage") is None:
        raise SystemExit("genisoimage is not installed (apt-get install genisoimage)")
    datasets = [prepare(workdir, "photos", _photo_plan(int(args.size_gb * GB)))]
    if not args.skip_big:
        datasets.append(prepare(workdir, "big", [("dvd-dl/movie.bin", int(args.big_gb * GB))]))
    code, code_description = snapshot_code(workdir)

    busy = wait_until_quiet(args.max_wait * 60)
    can_drop = can_drop_caches()
    notes = [] if can_drop else ["could not drop the page cache: every contender ran after reading the sources once"]
    if busy:
        notes.append(f"the machine was busy at the start: {_few(busy)}")
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    patience = args.max_wait * 60  # for all the waits between contenders together
    tables = []
    for data in datasets:
        runs: dict[str, list[Run]] = {key: [] for key in CONTENDERS}
        index = workdir / "data" / f"{data.name}.json"
        sources = [data.root / f["rel"] for f in data.files]
        order = list(CONTENDERS)
        retried = 0
        for r in range(args.rounds):
            # Rotate, and reverse every other round, so that no contender
            # always follows the same one.
            this = order[r % len(order) :] + order[: r % len(order)]
            if r % 2:
                this.reverse()
            for key in this:
                for attempt in range(1 + RETRIES):
                    waited = time.monotonic()
                    wait_until_quiet(min(QUIET_BEFORE_EACH, patience), load_limit=None)
                    patience = max(0.0, patience - (time.monotonic() - waited))
                    _settle(can_drop, sources)
                    log(f"{data.name} round {r + 1}/{args.rounds}: {CONTENDERS[key]} …")
                    run = measure(key, data, workdir, code, index)
                    log(f"  {run.wall:.1f} s, {run.cpu:.1f} CPU s, peak RSS {run.peak_rss / MB:.1f} MB")
                    if not run.foreign:
                        break
                    log(f"  disturbed by another test run ({'; '.join(run.foreign)})")
                    if attempt < RETRIES:
                        retried += 1
                runs[key].append(run)
        extra = list(notes)
        if any(f["size"] > ISO_FILE_LIMIT for f in data.files):
            extra.append(
                "genisoimage needs -allow-limited-size for a file over 4 GiB; its ISO 9660 view then "
                "shows a truncated size (ours writes multi-extent records)"
            )
        if retried:
            extra.append(f"{retried} run(s) were repeated because another test run started meanwhile")
        seen = sorted({p for rs in runs.values() for r in rs for p in r.foreign})
        if seen:
            extra.append(f"other test runs were seen during the measurements kept: {_few(seen)}")
        tables.append(report(data, runs, extra))

    print(f"Discsub image build benchmark, {started}")
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    print(f"{os.cpu_count()} cores, {ram:.0f} GiB RAM, Linux {platform.release()}, Python {platform.python_version()}")
    tool = subprocess.run(["genisoimage", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"{code_description}; pycdlib {importlib.metadata.version('pycdlib')}; {tool}")
    print(
        f"page cache dropped before each contender: {'yes' if can_drop else 'no'}; rounds: {args.rounds} "
        "(wall s is the median); MB = 10^6 bytes of payload per second"
    )
    print("\n".join(tables))
    if args.clean:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
