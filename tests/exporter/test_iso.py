import errno
import hashlib
import os
import random
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import time_machine

from exporter import iso, names, verify
from exporter.errors import SourceMismatch
from exporter.layout import DiscFile
from tests.exporter.test_names import HOSTILE
from tests.tools import require_tool

EPOCH = 1_700_000_000  # 2023-11-14 22:13:20 UTC
VOLUME = "DISCSUB_000007_0003"


def content(n: int, size: int = 0) -> bytes:
    head = f"file {n}\n".encode()
    return head + random.Random(n).randbytes(size) if size else head


def hostile_files() -> list[DiscFile]:
    requests = [names.NameRequest(n, folders, name) for n, (folders, name) in enumerate(HOSTILE)]
    paths = names.assign_disc_paths(requests)
    files = [DiscFile.from_bytes(paths[n], content(n)) for n in sorted(paths)]
    # Bigger than one copy block, empty, and linked into two more albums.
    files[0] = DiscFile.from_bytes(files[0].path, content(0, 9 * 1024 * 1024 + 5))
    files[1] = DiscFile.from_bytes(files[1].path, b"")
    linked = files[2]
    files[2] = DiscFile(
        path=linked.path,
        size=linked.size,
        sha256=linked.sha256,
        open=linked.open,
        links=("data/Other album/😀 party 🎉.jpg", "data/Third/copy.jpg"),
    )
    return files


def expected_bytes(files: list[DiscFile]) -> dict[str, bytes]:
    result = {}
    for f in files:
        with f.open() as fh:
            data = fh.read()
        for p in f.all_paths:
            result[p] = data
    return result


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def run(*args: str, **kwargs) -> str:
    out = subprocess.run(args, capture_output=True, check=False, **kwargs)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout.decode("utf-8", errors="surrogateescape")


def xorriso_files(image: Path, *read_opts: str) -> set[str]:
    xorriso = require_tool("xorriso")
    listing = run(xorriso, *read_opts, "-indev", str(image), "-find", "/", "-type", "f")
    return {shlex.split(line)[0].lstrip("/") for line in listing.splitlines() if line.strip()}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    files = hostile_files()
    image = folder / "hostile.iso"
    result = iso.write_image(files, image, VOLUME, EPOCH)
    return files, image, result


def test_a_hostile_image_is_the_size_measured_and_hashed(hostile):
    files, image, result = hostile
    data = image.read_bytes()
    assert result.size == len(data) == result.sectors * 2048
    assert result.sectors == iso.measure_sectors(files, VOLUME)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert [p.name for p in image.parent.iterdir()] == [image.name]
    # Our own read-back agrees, in all four views (16-bit UDF names under 8-bit ones included).
    checked = verify.verify_image(image, {p: (f.size, f.sha256) for f in files for p in f.all_paths})
    assert checked.ok, checked.problems
    assert checked.image_sha256 == result.sha256


def test_7z_lists_and_extracts_the_udf_view_under_the_canonical_names(hostile, tmp_path):
    seven = require_tool("7z", "p7zip-full")
    files, image, _ = hostile
    listing = run(seven, "l", "-slt", str(image))
    entries = listing.split("\n\n")
    listed = {re.search(r"^Path = (.*)$", e, re.M).group(1) for e in entries if "\nFolder = -" in e}
    want = expected_bytes(files)
    assert listed == set(want)
    run(seven, "x", "-y", f"-o{tmp_path / 'x'}", str(image))
    assert tree(tmp_path / "x") == want


def test_xorriso_lists_and_extracts_the_rock_ridge_view_under_the_canonical_names(hostile, tmp_path):
    xorriso = require_tool("xorriso")
    files, image, _ = hostile
    want = expected_bytes(files)
    assert xorriso_files(image) == set(want)
    run(xorriso, "-osirrox", "on", "-indev", str(image), "-extract", "/", str(tmp_path / "x"))
    got = tree(tmp_path / "x")
    assert got == want


def test_every_file_is_in_the_joliet_view(hostile):
    isoinfo = require_tool("isoinfo", "genisoimage")
    files, image, _ = hostile
    shorts = names.short_names(p for f in files for p in f.all_paths)
    joliet = {shorts[p][1].lstrip("/") for f in files for p in f.all_paths}
    assert xorriso_files(image, "-read_fs", "norock", "-joliet", "on") == joliet
    # isoinfo prints Joliet names in latin-1, one "_" per UTF-16 unit beyond it.
    listing = subprocess.run([isoinfo, "-J", "-f", "-i", str(image)], capture_output=True, check=True).stdout

    def as_isoinfo(path: str) -> bytes:
        units = path.encode("utf-16-be")
        codes = (int.from_bytes(units[i : i + 2]) for i in range(0, len(units), 2))
        return bytes(u if u < 256 else ord("_") for u in codes)

    printed = set(listing.splitlines())
    assert {as_isoinfo("/" + p) for p in joliet} <= printed
    long_listing = run(isoinfo, "-J", "-l", "-i", str(image))
    assert len(re.findall(r"^-", long_listing, re.M)) == len(joliet)


def test_every_file_is_in_the_iso9660_view(hostile):
    isoinfo = require_tool("isoinfo", "genisoimage")
    files, image, _ = hostile
    shorts = names.short_names(p for f in files for p in f.all_paths)
    listing = run(isoinfo, "-l", "-i", str(image))
    listed = re.findall(r"^-.*\]  (\S+;1) $", listing, re.M)
    want = [shorts[p][0].rsplit("/", 1)[1] for f in files for p in f.all_paths]
    assert sorted(listed) == sorted(want)
    # Deep albums are relocated into RR_MOVED there, and still complete.
    paths = [p for p in run(isoinfo, "-f", "-i", str(image)).splitlines() if p.endswith(";1")]
    assert len(paths) == len(want)
    assert "/RR_MOVED/LEVEL_6/LEVEL_7/LEVEL_8/LEVEL_9/LEVEL_10/LEVEL_11/DEEP.JPG;1" in paths


def test_udfinfo_reads_the_udf_volume(hostile):
    udfinfo = require_tool("udfinfo", "udftools")
    _, image, _ = hostile
    info = dict(line.split("=", 1) for line in run(udfinfo, str(image)).splitlines() if "=" in line)
    assert info["lvid"] == VOLUME
    # pycdlib's "2.60" mode writes UDF 1.02 structures, and says so in every
    # revision field (docs/disc-layout.md says why we keep 1.02).
    assert (info["udfrev"], info["udfwriterev"]) == ("1.02", "1.02")
    assert info["integrity"] == "closed"


def test_every_timestamp_is_the_epoch_in_utc(hostile):
    seven = require_tool("7z", "p7zip-full")
    xorriso = require_tool("xorriso")
    _, image, _ = hostile
    env = {**os.environ, "TZ": "UTC"}
    listing = run(seven, "l", "-slt", str(image), env=env)
    modified = {m.removesuffix(".000000") for m in re.findall(r"^Modified = (.*)$", listing, re.M)}
    assert modified == {"2023-11-14 22:13:20"}
    info = run(xorriso, "-indev", str(image), "-pvd_info")
    times = set(re.findall(r"^(?:Creation|Modif\.|Eff\.) Time: (\d+)$", info, re.M))
    assert times == {"2023111422132000"}


# --- hard links ------------------------------------------------------------------


def test_hard_links_are_stored_once_and_readable_in_every_view(tmp_path):
    seven = require_tool("7z", "p7zip-full")
    isoinfo = require_tool("isoinfo", "genisoimage")
    data = random.Random(1).randbytes(1024 * 1024)
    single = DiscFile.from_bytes("data/A/photo.jpg", data)
    links = ("data/B/photo.jpg", "data/C/D/photo.jpg", "data/A/again.jpg")
    linked = DiscFile(path=single.path, size=single.size, sha256=single.sha256, open=single.open, links=links)
    alone = iso.measure_sectors([single], VOLUME)
    together = iso.write_image([linked], tmp_path / "l.iso", VOLUME, EPOCH)
    # Three more names and two more folders cost a few sectors, not a copy.
    assert together.sectors - alone < 20
    run(seven, "x", "-y", f"-o{tmp_path / 'x'}", str(tmp_path / "l.iso"))
    assert tree(tmp_path / "x") == dict.fromkeys(linked.all_paths, data)
    xorriso = require_tool("xorriso")
    run(xorriso, "-osirrox", "on", "-indev", str(tmp_path / "l.iso"), "-extract", "/", str(tmp_path / "r"))
    assert tree(tmp_path / "r") == dict.fromkeys(linked.all_paths, data)
    for flag in ("-J", "-R"):
        listing = run(isoinfo, flag, "-l", "-i", str(tmp_path / "l.iso"))
        extents = set(re.findall(r"^-.*\[\s*(\d+) 00\]", listing, re.M))
        assert len(extents) == 1, listing
        assert len(re.findall(r"^-", listing, re.M)) == 4


# --- measuring -------------------------------------------------------------------


def layouts():
    rng = random.Random(3)
    linked = DiscFile.from_bytes("data/x/linked.jpg", rng.randbytes(50_000))
    yield "empty", []
    yield "one file", [DiscFile.from_bytes("data/a.jpg", b"x")]
    yield "exact sectors", [DiscFile.from_bytes("data/a.bin", bytes(4096)), DiscFile.from_bytes("e.txt", b"")]
    yield (
        "many small",
        [DiscFile.from_bytes(f"data/Album {n % 7}/IMG_{n:04d}.jpg", rng.randbytes(n)) for n in range(300)],
    )
    deep = "/".join(f"level {n} " + "x" * 40 for n in range(20))
    yield "deep", [DiscFile.from_bytes(f"data/{deep}/f{n}.jpg", bytes(n)) for n in range(3)]
    yield (
        "hard links",
        [
            DiscFile(
                path=linked.path,
                size=linked.size,
                sha256=linked.sha256,
                open=linked.open,
                links=tuple(f"data/y{n}/linked.jpg" for n in range(40)),
            )
        ],
    )
    yield "long names", [DiscFile.from_bytes(f"data/{'ü' * 120}{n}.jpg", bytes(3000)) for n in range(30)]


@pytest.mark.parametrize("files", [files for _, files in layouts()], ids=[name for name, _ in layouts()])
def test_measured_sectors_are_the_written_size(files, tmp_path):
    sectors = iso.measure_sectors(files, "MEASURE")
    result = iso.write_image(files, tmp_path / "m.iso", "MEASURE", EPOCH)
    assert sectors == result.sectors == os.path.getsize(tmp_path / "m.iso") // 2048
    assert os.path.getsize(tmp_path / "m.iso") % 2048 == 0
    expected = {p: (f.size, f.sha256) for f in files for p in f.all_paths}
    assert verify.verify_image(tmp_path / "m.iso", expected).ok


# --- reproducibility -----------------------------------------------------------------

_SUBPROCESS_BUILD = """
import sys, pathlib
sys.path.insert(0, sys.argv[1])
from exporter import iso
from exporter.layout import DiscFile
src = pathlib.Path(sys.argv[2])
files = [DiscFile.from_bytes(p.relative_to(src).as_posix(), p.read_bytes())
         for p in sorted(src.rglob("*"), reverse=True) if p.is_file()]
iso.write_image(files, pathlib.Path(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
"""


def test_the_same_files_always_build_the_same_bytes(tmp_path, monkeypatch):
    src = tmp_path / "src"
    files = [DiscFile.from_bytes(f"data/Été/{n}.jpg", content(n, n * 1000)) for n in range(20)]
    for f in files:
        (src / f.path).parent.mkdir(parents=True, exist_ok=True)
        (src / f.path).write_bytes(f.open().read())
    first = iso.write_image(files, tmp_path / "a.iso", VOLUME, EPOCH)

    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        with time_machine.travel("2031-02-03 04:05:06+00:00", tick=True):
            again = iso.write_image(list(reversed(files)), tmp_path / "b.iso", VOLUME, EPOCH)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    env = {**os.environ, "TZ": "America/Los_Angeles"}
    root = str(Path(__file__).resolve().parents[2])
    subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_BUILD, root, str(src), str(tmp_path / "c.iso"), VOLUME, str(EPOCH)],
        check=True,
        env=env,
    )
    a, b, c = ((tmp_path / n).read_bytes() for n in ("a.iso", "b.iso", "c.iso"))
    assert a == b == c
    assert first == again
    # The epoch is what varies the image, nothing else.
    other = iso.write_image(files, tmp_path / "d.iso", VOLUME, EPOCH + 1)
    assert other.sha256 != first.sha256 and other.size == first.size


def test_the_clock_is_restored_after_a_build(tmp_path):
    import pycdlib.udf

    iso.write_image([DiscFile.from_bytes("data/a", b"a")], tmp_path / "a.iso", VOLUME, 0)
    assert pycdlib.udf.time is time
    assert pycdlib.udf.random is random


# --- failures -----------------------------------------------------------------------------


class ShortStream:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n=-1):
        # Never more than 1000 bytes at a time, and 10 bytes short overall.
        chunk = self.data[self.pos : min(self.pos + min(n, 1000), len(self.data) - 10)]
        self.pos += len(chunk)
        return chunk

    def close(self):
        pass


def failing_files():
    good = DiscFile.from_bytes("data/good.jpg", content(1, 100_000))
    data = content(2, 100_000)
    sha = hashlib.sha256(data).hexdigest()
    import io

    def missing():
        raise FileNotFoundError("no such object: originals/4")

    return [
        good,
        DiscFile("data/wrong.jpg", len(data), "0" * 64, lambda: io.BytesIO(data), item_id=11),
        DiscFile("data/short.jpg", len(data), sha, lambda: ShortStream(data), item_id=12),
        DiscFile("data/long.jpg", len(data) - 1, hashlib.sha256(data[:-1]).hexdigest(), lambda: io.BytesIO(data)),
        DiscFile("data/missing.jpg", 10, "1" * 64, missing, item_id=14),
        DiscFile("data/empty.jpg", 0, hashlib.sha256(b"").hexdigest(), lambda: io.BytesIO(b"!")),
        DiscFile("data/linked.jpg", len(data), "2" * 64, lambda: io.BytesIO(data), links=("data/b/l.jpg",)),
    ]


def test_source_mismatches_are_all_named_and_leave_nothing(tmp_path):
    out = tmp_path / "images"
    out.mkdir()
    (out / "disc.iso").write_bytes(b"the previous image")
    with pytest.raises(SourceMismatch) as caught:
        iso.write_image(failing_files(), out / "disc.iso", VOLUME, EPOCH)
    problems = caught.value.problems
    assert set(problems) == {11, 12, "data/long.jpg", 14, "data/empty.jpg", "data/linked.jpg"}
    assert "sha256" in problems[11] and "0" * 64 in problems[11]
    assert f"only {len(content(2, 100_000)) - 10} bytes" in problems[12]
    assert "more than" in problems["data/long.jpg"]
    assert "missing" in problems[14]
    assert "more than 0 bytes" in problems["data/empty.jpg"]
    assert [p.name for p in out.iterdir()] == ["disc.iso"]
    assert (out / "disc.iso").read_bytes() == b"the previous image"


def test_an_unexpected_error_leaves_nothing(tmp_path):
    class Boom(Exception):
        pass

    def explode(done, total):
        if done > 1_000_000:
            raise Boom

    files = [DiscFile.from_bytes("data/big.bin", bytes(64 * 1024 * 1024))]
    with pytest.raises(Boom):
        iso.write_image(files, tmp_path / "x.iso", VOLUME, EPOCH, progress=explode)
    assert list(tmp_path.iterdir()) == []


def test_progress_goes_up_to_the_total(tmp_path):
    seen = []
    files = [DiscFile.from_bytes("data/big.bin", bytes(40 * 1024 * 1024))]
    result = iso.write_image(files, tmp_path / "x.iso", VOLUME, EPOCH, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (result.size, result.size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert 3 <= len(seen) < 100


@pytest.mark.parametrize("volume_id", ["", "lower", "A" * 33, "DISC-1", "ÉTÉ"])
def test_a_bad_volume_id_is_refused(volume_id, tmp_path):
    with pytest.raises(ValueError):
        iso.measure_sectors([], volume_id)
    with pytest.raises(ValueError):
        iso.write_image([], tmp_path / "x.iso", volume_id, EPOCH)
    assert list(tmp_path.iterdir()) == []


def test_a_path_given_twice_is_refused():
    f = DiscFile.from_bytes("data/a.jpg", b"a")
    with pytest.raises(ValueError):
        iso.measure_sectors([f, f], VOLUME)


_LIMITED_WRITE = """
import errno, resource, signal, sys, pathlib
sys.path.insert(0, sys.argv[1])
from exporter import iso
from exporter.layout import DiscFile
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (2 * 1024 * 1024, 2 * 1024 * 1024))
try:
    iso.write_image([DiscFile.from_bytes("data/big.bin", bytes(3 * 1024 * 1024))], pathlib.Path(sys.argv[2]), "FULL", 0)
except OSError as exc:
    print(errno.errorcode[exc.errno])
"""


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB filesystem (tmpfs, when we may mount), and a way to grow it."""
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        yield mount, None
        return
    try:
        yield mount, lambda: subprocess.run(["mount", "-o", "remount,size=16m", str(mount)], check=True)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_fails_cleanly_and_a_retry_succeeds(small_disk):
    mount, grow = small_disk
    files = [DiscFile.from_bytes("data/big.bin", bytes(3 * 1024 * 1024))]
    dest = mount / "disc.iso"
    if grow is None:
        # No mounting here: the same failure through a file size limit.
        root = str(Path(__file__).resolve().parents[2])
        out = subprocess.run([sys.executable, "-c", _LIMITED_WRITE, root, str(dest)], capture_output=True, text=True)
        assert out.stdout.strip() == "EFBIG", out.stderr
    else:
        with pytest.raises(OSError) as caught:
            iso.write_image(files, dest, "FULL", 0)
        assert caught.value.errno == errno.ENOSPC
    assert list(mount.iterdir()) == []
    if grow is not None:
        grow()
    result = iso.write_image(files, dest, "FULL", 0)
    assert [p.name for p in mount.iterdir()] == ["disc.iso"]
    assert verify.verify_image(dest, {"data/big.bin": (files[0].size, files[0].sha256)}).ok
    assert result.size == dest.stat().st_size


# --- over 4 GiB --------------------------------------------------------------------------


@pytest.mark.slow
def test_a_file_over_4_gib_works_in_every_view(image_over_4_gib, tmp_path):
    seven = require_tool("7z", "p7zip-full")
    xorriso = require_tool("xorriso")
    isoinfo = require_tool("isoinfo", "genisoimage")
    image, big, marks = image_over_4_gib.image, image_over_4_gib.big, image_over_4_gib.marks
    files, size, result = image_over_4_gib.files, big.size, image_over_4_gib.written
    assert size > 4 * 1024**3
    assert result.sectors == iso.measure_sectors(files, image_over_4_gib.volume) == image.stat().st_size // 2048
    assert size < result.size < size + 2 * 1024 * 1024  # stored once

    # UDF, through 7-Zip.
    listing = run(seven, "l", "-slt", str(image))
    assert listing.count(f"Size = {size}\n") == 2
    piped, length = hashlib.sha256(), 0
    with subprocess.Popen([seven, "x", "-so", str(image), "data/w/same.mov"], stdout=subprocess.PIPE) as proc:
        while chunk := proc.stdout.read(8 << 20):
            piped.update(chunk)
            length += len(chunk)
    assert proc.returncode == 0
    assert length == size and piped.hexdigest() == big.sha256
    # Rock Ridge, through xorriso.
    run(xorriso, "-osirrox", "on", "-indev", str(image), "-extract", "/data/v", str(tmp_path / "rr"))
    extracted = tmp_path / "rr" / "big.mov"
    assert extracted.stat().st_size == size
    with open(extracted, "rb") as fh:
        for offset, mark in marks.items():
            fh.seek(offset)
            assert fh.read(len(mark)) == mark
    extracted.unlink()
    # Joliet and ISO 9660: two directory records per name, adding up.
    for flag in ("-J", "-R", None):
        listing = run(isoinfo, *([flag] if flag else []), "-l", "-i", str(image))
        sizes = [int(s) for s in re.findall(r"^-\S+\s+\d+\s+\d+\s+\d+\s+(\d+) .*(?:big|same|BIG|SAME)", listing, re.M)]
        assert sorted(sizes) == sorted([2**32 - 2048, size - (2**32 - 2048)] * 2), listing
    assert verify.verify_image(image, {p: (f.size, f.sha256) for f in files for p in f.all_paths}).ok


def test_an_image_left_unhashed_is_the_same_bytes_and_its_read_back_gives_the_sha256(tmp_path):
    files = [DiscFile.from_bytes(f"data/{n}.bin", os.urandom(5000 + n)) for n in range(5)]
    hashed = iso.write_image(files, tmp_path / "a.iso", "SAME", 0)
    unhashed = iso.write_image(files, tmp_path / "b.iso", "SAME", 0, hash_image=False)
    assert unhashed.sha256 == "" and unhashed.size == hashed.size
    assert (tmp_path / "a.iso").read_bytes() == (tmp_path / "b.iso").read_bytes()
    read_back = verify.verify_image(tmp_path / "b.iso", {f.path: (f.size, f.sha256) for f in files})
    assert read_back.ok and read_back.image_sha256 == hashed.sha256
