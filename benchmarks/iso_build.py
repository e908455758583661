"""Building a disc, the whole pipeline, against the tools a careful user would chain by hand.

    .venv/bin/python benchmarks/iso_build.py [--size-gb 2] [--big-gb 0] [--workdir /tmp/bench-iso]
        [--rounds 3] [--max-wait 20] [--only CONTENDER,...] [--clean]

The data set is generated once under ``--workdir`` and reused
(benchmarks/_photos.py): photos of 0.2-15 MB in nested albums and a few
videos, ``--size-gb`` in all; ``--big-gb`` adds a set of one big file (a
dvd-dl disc, a file over 4 GiB), for the image writer alone.  For the whole
pipeline the photos are imported once (untimed) into a scratch site under
the work folder: SQLite, its own data folder, ``manage.py migrate`` and
``manage.py import_media``, the database then kept aside and put back before
each run.  The contenders, each in processes of its own, each after the page
cache is dropped:

- ``toolchain``, the baseline: what a careful user chains by hand on the
  same files: ``genisoimage`` (ISO 9660 level 3 + Joliet + Rock Ridge +
  UDF), ``implantisomd5``, ``dvdisaster -mRS03 -o file -n normal -x 2 -c``
  (an RS03 ecc file at 14.3 %, both cores), then an fsync of both files;
- ``pipeline``, ours: ``exporter.planning.plan_next_disc`` then
  ``exporter.build.build_disc`` in one child process: plan, write, implant
  the MD5, recovery data, fsync, read-back verification;
- ``genisoimage`` alone and an fsync, and ``build``, our ``write_image``
  alone (source check, fsync, rename): the image writers side by side;
- ``copy``: ``cat`` of the same bytes into one file and an fsync, the floor.

It first waits for a quiet machine (load under 1, nobody's pytest running),
then, before each contender, for idle cores; a run during which someone's
pytest started is run again.  Each contender runs ``--rounds`` times, in
rotated orders, and the table gives the median.  Figures and findings:
docs/benchmarks.md.

Peak memory is the child's VmHWM: our children report their own at exit,
and the tools' is polled from /proc while they run (wait4's ru_maxrss would
include the RSS this process had when it forked them).  The project's code
is copied to the work folder first, so that every contender of one run runs
the same code even while the tree is being edited.  Needs root to drop the
page cache; without it every contender starts after the same warm-up.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _photos import DataSet, photo_plan, prepare  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
GB = 1_000_000_000
EPOCH = 1_700_000_000
CHUNK = 8 * 1024 * 1024
ISO_FILE_LIMIT = 4 * 1024**3 - 1  # genisoimage refuses bigger files without -allow-limited-size
SUBSCRIBER = "bench"
CODE_PARTS = ("discsub", "exporter", "templates", "manage.py")

CONTENDERS = {
    "toolchain": "toolchain by hand (baseline)",
    "pipeline": "ours: plan + build_disc",
    "genisoimage": "genisoimage + fsync",
    "build": "ours: write_image alone",
    "copy": "cat > one file + fsync (floor)",
}
PIPELINE_ONLY = ("pipeline",)  # contenders that need the photos imported into a site
RSS_TARGET_MB = 200
POLL_SECONDS = 30
QUIET_BEFORE_EACH = 300  # seconds to wait for the cores to idle before each contender
RETRIES = 2  # repeats of a run that another test run disturbed
HWM_POLL = 0.02


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the children: our contenders ------------------------------------------------------------


def _vm(field_name: str) -> int:
    """A /proc/self/status memory field, in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def child_build(args: argparse.Namespace) -> dict:
    """Our image writer alone, on the data set's files."""
    from exporter.iso import write_image
    from exporter.layout import DiscFile

    saved = json.loads(Path(args.index).read_text())
    root = Path(args.root)
    files = [
        DiscFile(path=f["disc"], size=f["size"], sha256=f["sha256"], open=lambda p=root / f["rel"]: open(p, "rb"))
        for f in saved["files"]
    ]
    result: dict = {"rss_before": _vm("VmRSS")}
    start = time.perf_counter()
    image = write_image(files, Path(args.out), "DISCSUB_BENCH", EPOCH, hash_image=False)
    result.update(write_s=time.perf_counter() - start, size=image.size)
    return result


def child_pipeline(args: argparse.Namespace) -> dict:
    """Plan the subscriber's next disc from the imported photos, then build it as a worker does."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from exporter import build, planning
    from exporter.models import DiscEntry

    owner = get_user_model().objects.get(username=SUBSCRIBER)
    result: dict = {"rss_before": _vm("VmRSS")}
    start = time.perf_counter()
    disc = planning.plan_next_disc(owner, medium=args.medium, allow_partial=True)
    result["plan_s"] = time.perf_counter() - start
    if disc is None:
        raise SystemExit("nothing was planned")
    start = time.perf_counter()
    done = build.build_disc(disc.pk)
    result["build_s"] = time.perf_counter() - start
    result.update(
        status=done.status,
        error=done.last_error,
        size=done.image_size,
        sha256=done.image_sha256,
        entries=DiscEntry.objects.filter(disc=done).count(),
        layout=getattr(done, "layout_version", None),
        parity=getattr(done, "sector_parity", None),
    )
    return result


def child(args: argparse.Namespace) -> None:
    """Runs in the measured process: one of our contenders; the result as JSON."""
    sys.path.insert(0, args.code)
    result = child_pipeline(args) if args.child == "pipeline" else child_build(args)
    result["hwm"] = _vm("VmHWM")
    Path(args.result).write_text(json.dumps(result))


# --- the scratch site --------------------------------------------------------------------------


@dataclass
class Site:
    root: Path
    env: dict

    @property
    def database(self) -> Path:
        return self.root / "discsub.sqlite3"

    @property
    def imported(self) -> Path:
        return self.root.parent / "imported.sqlite3"

    def reset(self) -> None:
        """The site as it was after the import: no disc planned, no image."""
        for name in ("images", "build"):
            shutil.rmtree(self.root / name, ignore_errors=True)
        for suffix in ("-wal", "-shm"):
            Path(f"{self.database}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.imported, self.database)


def prepare_site(workdir: Path, data: DataSet, code: Path) -> Site:
    """A site whose one subscriber has imported the data set (done once, kept while the data set stays)."""
    root = workdir / "site" / "data"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DISCSUB_PAR2_PERCENT")}
    env.update(
        DISCSUB_DATA_DIR=str(root),
        DJANGO_SETTINGS_MODULE="discsub.settings",
        DJANGO_DEBUG="0",  # no query log growing in the child
        PYTHONPATH=str(code),
    )
    site = Site(root, env)
    marker = workdir / "site" / "imported-from.txt"
    # A new migration in the code makes the kept database stale.
    migrations = sorted(p.name for p in (code / "exporter" / "migrations").glob("*.py"))
    stamp = hashlib.sha256(data.index.read_bytes() + "\n".join(migrations).encode()).hexdigest()
    if site.imported.exists() and marker.exists() and marker.read_text() == stamp:
        log(f"site: reusing the import of {data.name} under {root}")
        return site
    shutil.rmtree(workdir / "site", ignore_errors=True)
    root.mkdir(parents=True)
    manage = [sys.executable, str(code / "manage.py")]
    log(f"site: migrating and importing {len(data.files)} files (untimed) …")
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    subprocess.run(
        [*manage, "import_media", SUBSCRIBER, str(data.root), "--create-user"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,  # a line per queued thumbnail
    )
    with sqlite3.connect(site.database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(site.database, site.imported)
    marker.write_text(stamp)
    return site


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


def _tool_steps(contender: str, data: DataSet, out: Path) -> list[list[str]]:
    """The commands of a tool contender, run one after the other."""
    argv = ["genisoimage", "-quiet", "-iso-level", "3", "-J", "-joliet-long", "-R", "-udf"]
    if any(f["size"] > ISO_FILE_LIMIT for f in data.files):
        argv.append("-allow-limited-size")
    steps = [[*argv, "-o", str(out), str(data.root)]]
    if contender == "toolchain":
        steps += [
            ["implantisomd5", "--force", str(out)],
            ["dvdisaster", "-i", str(out), "-e", f"{out}.ecc", "-mRS03", "-o", "file", "-n", "normal"]
            + ["-x", "2", "-c"],
        ]
    return steps


def measure(contender: str, data: DataSet, workdir: Path, code: Path, site: Site | None) -> Run:
    out = workdir / "out" / f"{data.name}-{contender}.iso"
    out.parent.mkdir(exist_ok=True)
    result_file = workdir / "out" / f"{data.name}-{contender}.json"
    sources = [data.root / f["rel"] for f in sorted(data.files, key=lambda f: f["rel"])]
    env, stdout, synced = None, subprocess.DEVNULL, [out]
    quiet = contender in ("genisoimage", "toolchain")  # dvdisaster's progress goes to stderr
    if contender in ("genisoimage", "toolchain"):
        steps = _tool_steps(contender, data, out)
        synced = [out, Path(f"{out}.ecc")] if contender == "toolchain" else [out]
    elif contender == "copy":
        steps = [["cat", *map(str, sources)]]
        stdout = open(out, "wb")  # closed below, once cat is gone
    else:
        argv = [sys.executable, str(Path(__file__).resolve()), "--child", contender, "--code", str(code)]
        argv += ["--index", str(data.index), "--root", str(data.root), "--out", str(out), "--result", str(result_file)]
        if contender == "pipeline":
            site.reset()
            env, argv = site.env, [*argv, "--medium", "dvd"]
        steps, synced = [argv], []  # ours fsyncs what it writes itself
    wall, peak, cpu, foreign, detail = 0.0, 0, 0.0, set(), {"steps": {}}
    try:
        for argv in steps:
            start = time.perf_counter()
            proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.DEVNULL if quiet else None, env=env)
            step_peak, step_cpu, step_foreign = _watch(proc)
            if proc.returncode != 0:
                raise SystemExit(f"{contender} failed with exit status {proc.returncode}: {argv[:12]}")
            took = time.perf_counter() - start
            detail["steps"][Path(argv[0]).name if quiet or contender == "copy" else "process"] = took
            wall, cpu, peak = wall + took, cpu + step_cpu, max(peak, step_peak)
            foreign.update(step_foreign)
        start = time.perf_counter()
        for path in synced:
            _fsync(path)
        if synced:
            detail["steps"]["fsync"] = time.perf_counter() - start
            wall += detail["steps"]["fsync"]
    finally:
        if stdout is not subprocess.DEVNULL:
            stdout.close()
    if result_file.exists():
        detail.update(json.loads(result_file.read_text()))
        result_file.unlink()
        peak = max(peak, detail["hwm"])
    if out.exists():
        detail["image_size"] = out.stat().st_size
        out.unlink()
    Path(f"{out}.ecc").unlink(missing_ok=True)
    if contender == "pipeline":
        shutil.rmtree(site.root / "images", ignore_errors=True)
    return Run(contender, wall, peak, cpu, detail, sorted(foreign))


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
    """A copy of the project's code, and a description of what it is."""
    code = workdir / "code"
    if code.exists():
        shutil.rmtree(code)
    code.mkdir(parents=True)
    for part in CODE_PARTS:
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, code / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / part, code / part)

    def git(*argv: str) -> str:
        done = subprocess.run(["git", "-C", str(REPO), *argv], capture_output=True, text=True)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    dirty = " + uncommitted changes" if git("status", "--porcelain", "--", *CODE_PARTS) else ""
    return code, f"code at {head}{dirty}"


# --- report --------------------------------------------------------------------------------------


def _ratio(label: str, ours: float, theirs: float, target: float) -> str:
    ratio = ours / theirs
    return f"  {label:<44} {ratio:5.2f}×   (target ≤ {target}×: {'met' if ratio <= target else 'MISSED'})"


def _steps(measured: list[Run]) -> str:
    names = list(measured[0].detail["steps"])
    parts = [f"{n} {statistics.median(r.detail['steps'].get(n, 0) for r in measured):.1f}" for n in names]
    for key in ("plan_s", "build_s", "write_s"):
        if key in measured[0].detail:
            parts.append(f"{key[:-2]} {statistics.median(r.detail[key] for r in measured):.1f}")
    return ", ".join(parts)


def report(data: DataSet, runs: dict[str, list[Run]], notes: list[str]) -> str:
    payload = data.payload
    lines = [
        "",
        f"== {data.name}: {len(data.files)} files, {payload / MB:,.0f} MB of payload",
        f"  {'contender':<34} {'wall s':>7} {'MB/s':>6} {'CPU s':>6} {'peak RSS MB':>12}   rounds (wall s); steps (s)",
    ]
    wall, rss = {}, {}
    for key, label in CONTENDERS.items():
        measured = runs.get(key)
        if not measured:
            continue
        wall[key] = statistics.median(r.wall for r in measured)
        rss[key] = max(r.peak_rss for r in measured) / MB
        cpu = statistics.median(r.cpu for r in measured)
        rounds = " ".join(f"{r.wall:.1f}" for r in measured)
        lines.append(
            f"  {label:<34} {wall[key]:7.1f} {payload / MB / wall[key]:6.0f} {cpu:6.1f} {rss[key]:12.1f}"
            f"   {rounds}; {_steps(measured)}"
        )
    if "pipeline" in wall and "toolchain" in wall:
        lines.append(_ratio("whole pipeline: ours / toolchain by hand", wall["pipeline"], wall["toolchain"], 1.0))
    if "build" in wall and "genisoimage" in wall:
        lines.append(_ratio("image writer: write_image / genisoimage", wall["build"], wall["genisoimage"], 1.1))
    ours = [rss[k] for k in ("pipeline", "build") if k in rss]
    if ours:
        peak = max(ours)
        verdict = "met" if peak < RSS_TARGET_MB else "MISSED"
        lines.append(f"  {'peak memory, ours':<44} {peak:5.0f} MB (target < {RSS_TARGET_MB} MB: {verdict})")
    if runs.get("pipeline"):
        done = [r.detail for r in runs["pipeline"]]
        shas = {d["sha256"] for d in done}
        first = done[0]
        lines.append(
            f"  pipeline: {first['entries']} entries, disc {', '.join(sorted({d['status'] for d in done}))}, "
            f"layout {first['layout']}, "
            f"sector parity {first['parity']}, image {first['size'] / MB:,.0f} MB with its recovery data; "
            + (
                f"sha256 {next(iter(shas))[:16]}… in every build"
                if len(shas) == 1
                else "sha256 differs between builds, as each run plans anew at its own time (the image dates)"
            )
        )
        lines += [f"  pipeline error: {d['error']}" for d in done if d.get("error")][:3]
    if runs.get("toolchain"):
        size = runs["toolchain"][0].detail.get("image_size", 0)
        lines.append(f"  toolchain: image {size / MB:,.0f} MB, and its ecc file beside it")
    lines += [f"  note: {n}" for n in notes]
    return "\n".join(lines)


def _few(items: list[str], shown: int = 2) -> str:
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return "; ".join(items[:shown]) + more


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2, help="photo data set size (GB = 10^9 bytes)")
    parser.add_argument("--big-gb", type=float, default=0, help="add a data set of one big file of this size (GB)")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-iso"))
    parser.add_argument("--rounds", type=int, default=3, help="runs of each contender, in alternating orders")
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument(
        "--max-wait", type=float, default=20, help="minutes to wait for a quiet machine at the start, and between runs"
    )
    parser.add_argument("--clean", action="store_true", help="delete the work folder at the end")
    for internal in ("--child", "--code", "--index", "--root", "--out", "--result", "--medium"):
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
    missing = [t for t in ("genisoimage", "implantisomd5", "dvdisaster") if shutil.which(t) is None]
    if missing:
        raise SystemExit(f"not installed: {', '.join(missing)} (apt-get install genisoimage isomd5sum dvdisaster)")
    chosen = [c for c in CONTENDERS if not args.only or c in args.only.split(",")]
    datasets = [prepare(workdir, "photos", photo_plan(int(args.size_gb * GB)), log=log)]
    if args.big_gb:
        datasets.append(prepare(workdir, "big", [("dvd-dl/movie.bin", int(args.big_gb * GB))], log=log))
    code, code_description = snapshot_code(workdir)
    site = prepare_site(workdir, datasets[0], code) if "pipeline" in chosen else None

    busy = wait_until_quiet(args.max_wait * 60)
    can_drop = can_drop_caches()
    notes = [] if can_drop else ["could not drop the page cache: every contender ran after reading the sources once"]
    if busy:
        notes.append(f"the machine was busy at the start: {_few(busy)}")
    started = time.strftime("%Y-%m-%d %H:%M %Z")
    load_start = os.getloadavg()
    patience = args.max_wait * 60  # for all the waits between contenders together
    tables = []
    for data in datasets:
        runs: dict[str, list[Run]] = {key: [] for key in chosen}
        sources = [data.root / f["rel"] for f in data.files]
        order = [c for c in chosen if data is datasets[0] or c not in PIPELINE_ONLY]
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
                    run = measure(key, data, workdir, code, site)
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

    print(f"Discsub disc build benchmark, {started}")
    ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    print(f"{os.cpu_count()} cores, {ram:.0f} GiB RAM, Linux {platform.release()}, Python {platform.python_version()}")
    tools = [
        subprocess.run(["genisoimage", "--version"], capture_output=True, text=True).stdout.strip(),
        subprocess.run(["dvdisaster", "--version"], capture_output=True, text=True).stdout.strip().split("\n")[0],
    ]
    print(f"{code_description}; pycdlib {importlib.metadata.version('pycdlib')}; {'; '.join(tools)}")
    print(
        f"page cache dropped before each contender: {'yes' if can_drop else 'no'}; rounds: {args.rounds} "
        f"(wall s is the median); MB = 10^6 bytes of payload per second; load average at the start "
        f"{load_start[0]:.2f}, at the end {os.getloadavg()[0]:.2f}"
    )
    print("\n".join(tables))
    if args.clean:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
