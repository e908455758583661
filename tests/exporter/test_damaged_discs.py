"""A full CD, built as every disc is, survives the damage of real optical media.

One disc of photo-sized files (0.2-15 MB) and a few large ones, filled to the
CD's capacity by the planner, is damaged in each of the ways a disc fails: dead
sectors scattered all over, a dead band, a dead lead-in, a read cut short,
silently flipped bytes.  The disc's own repair.py, taken off the disc and run
as ``python3 -I`` where nothing of ours can be imported, brings back the
image byte for byte; the disc's own restore.py, given the damaged image,
repairs it by itself and restores every original exactly.
"""

import hashlib
import io
import math
import os
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import bagit
import pytest
from django.core.management import call_command

from exporter import build, ecc, isomd5, verify
from exporter.disc_tools import repair as fmt
from exporter.disc_tools import restore
from exporter.media import CAPACITY_SECTORS
from exporter.models import DiscStatus
from exporter.planning import plan_next_disc
from tests.exporter.extracted import extract_7z
from tests.factories import add_file
from tests.tools import IN_CI, require_tool

pytestmark = pytest.mark.django_db

SECTOR = 2048
MB = 1_000_000


def photo_sizes(rnd: random.Random, total: int) -> list[int]:
    """Photo-sized files (log-uniform 0.2-15 MB) and a few large ones (40-90 MB)."""
    sizes = [rnd.randint(40 * MB, 90 * MB) for _ in range(3)]
    while sum(sizes) < total:
        sizes.append(int(math.exp(rnd.uniform(math.log(0.2 * MB), math.log(15 * MB)))))
    return sizes


def sha256_file(path: Path, limit: int | None = None) -> str:
    digest, left = hashlib.sha256(), limit
    with open(path, "rb") as fh:
        while left is None or left > 0:
            chunk = fh.read(1 << 20 if left is None else min(1 << 20, left))
            if not chunk:
                break
            digest.update(chunk)
            left = None if left is None else left - len(chunk)
    return digest.hexdigest()


def run_disc_tool(tool: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """A tool from the disc, alone in its folder, under ``python3 -I``."""
    python3 = require_tool("python3")
    return subprocess.run(
        [python3, "-I", str(tool), *args],
        capture_output=True,
        text=True,
        cwd=tool.parent,
        timeout=timeout,
        env={"PATH": os.environ["PATH"]},
    )


def _random(rnd: random.Random, n: int, share: float) -> list[int]:
    return rnd.sample(range(n), int(n * share))


# Each pattern: (sectors zeroed, sectors with one byte flipped, the size the file is cut to), given
# the whole image's sectors (the volume and its recovery data: all of the disc) and the volume's.
DAMAGE = {
    "2% of all sectors zeroed at random": lambda rnd, total, n: (_random(rnd, total, 0.02), [], None),
    "a 5% run at the end": lambda rnd, total, n: (range(total - total // 20, total), [], None),
    "a 5% run at the end of the volume": lambda rnd, total, n: (range(n - total // 20, n), [], None),
    "a 5% run in the middle": lambda rnd, total, n: (range(total // 2, total // 2 + total // 20), [], None),
    "the first 64 sectors and 1% at random": lambda rnd, total, n: ([*range(64), *_random(rnd, total, 0.01)], [], None),
    "the last 3% missing": lambda rnd, total, n: ([], [], (total - total * 3 // 100) * SECTOR),
    "one byte flipped in 100 sectors": lambda rnd, total, n: ([], rnd.sample(range(total), 100), None),
}


def volume_sectors(image: Path) -> int:
    """The ISO volume's size, as its primary volume descriptor says."""
    with open(image, "rb") as fh:
        fh.seek(16 * SECTOR + 80)
        return int.from_bytes(fh.read(4), "little")


def damage(image: Path, out: Path, pattern: str) -> None:
    shutil.copyfile(image, out)
    total = out.stat().st_size // SECTOR
    zeroed, flipped, cut = DAMAGE[pattern](random.Random(pattern), total, volume_sectors(out))
    with open(out, "r+b") as fh:
        for s in sorted(zeroed):
            fh.seek(s * SECTOR)
            fh.write(bytes(SECTOR))
        for s in flipped:
            fh.seek(s * SECTOR + 1001)
            byte = fh.read(1)[0]
            fh.seek(s * SECTOR + 1001)
            fh.write(bytes([byte ^ 0xA5]))
        if cut is not None:
            fh.truncate(cut)


@pytest.fixture
def full_cd(alice, tmp_path):
    """Alice's first disc, a full CD of layout 3, and the sha256 of every original it carries."""
    try:
        ecc.isal_cauchy_rows(2, 1)
    except ecc.EccError as exc:
        (pytest.fail if IN_CI else pytest.skip)(f"{exc}; .ci/run installs it")
    rnd = random.Random(1313)
    for n, size in enumerate(photo_sizes(rnd, CAPACITY_SECTORS["cd"] * SECTOR * 21 // 20)):
        add_file(alice, f"IMG_{n:04d}.jpg", os.urandom(size))
    planned = plan_next_disc(alice)  # not partial: the backlog is more than a CD
    assert planned is not None
    disc = build.build_disc(planned.pk)
    assert disc.status == DiscStatus.VERIFIED, disc.last_error
    # What the disc carries, as uploaded (the backlog is more than one CD).
    carried = disc.entries.filter(kind="file").values_list("version__sha256", flat=True)
    return disc, build.image_path(disc), set(carried)


@pytest.mark.slow
def test_a_full_cd_is_read_by_every_reader_and_comes_back_byte_exact_from_every_damage(full_cd, tmp_path, capsys):
    disc, image, originals = full_cd
    files = disc.entries.filter(kind="file").count()
    assert files >= 50
    # Full: the volume and its recovery data fill the CD to within a few sectors per thousand.
    assert disc.image_size == disc.planned_sectors * SECTOR <= disc.capacity_sectors * SECTOR
    assert disc.planned_sectors >= disc.capacity_sectors * 0.97
    layout = fmt.Layout.for_image(volume_sectors(image), disc.sector_parity)
    assert layout.total_sectors == disc.planned_sectors and disc.sector_parity == 32
    volume_sha = sha256_file(image, layout.image_sectors * SECTOR)

    tools = tmp_path / "from-the-disc"
    for name in ("repair.py", "restore.py"):
        tools.mkdir(exist_ok=True)
        (tools / name).write_bytes(restore.IsoImage(str(image)).read_small(name))

    failed = []
    for pattern in DAMAGE:
        damaged, repaired = tmp_path / "damaged.iso", tmp_path / "repaired.iso"
        damage(image, damaged, pattern)
        done = run_disc_tool(tools / "repair.py", str(damaged), "--to", str(repaired))
        if done.returncode != 0 or sha256_file(repaired) != volume_sha:
            failed.append(f"{pattern}: exit {done.returncode}\n{done.stdout}{done.stderr}")
        elif f"image sha256 OK: {volume_sha}" not in done.stdout:
            failed.append(f"{pattern}: the report does not say the sha256 is right:\n{done.stdout}")
    assert failed == []

    # As a subscriber would: the disc's restore.py given the damaged image itself.
    # (manage.py repair_disc and restore_discs run the same code: the drive test below.)
    for pattern in ("the first 64 sectors and 1% at random",):
        damaged, into = tmp_path / "damaged.iso", tmp_path / "restored"
        damage(image, damaged, pattern)
        done = run_disc_tool(tools / "restore.py", "--into", str(into), str(damaged))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "sectors were rebuilt from its recovery data" in done.stdout
        restored = {
            sha256_file(p) for p in into.rglob("*") if p.is_file() and p.suffix == ".jpg" and ".discsub" not in str(p)
        }
        assert restored == originals
        assert not (into / restore.STATE_DIR / restore.REPAIRED).exists()  # the repaired image is not left behind

    readers_read_it(disc, image, tmp_path)  # last: it may skip where a loop mount is not allowed


def readers_read_it(disc, image: Path, tmp_path: Path) -> None:
    """7-Zip, xorriso, isoinfo, udfinfo, checkisomd5, bagit, verify_disc and a loop mount read the
    image as if the recovery data were not there."""
    payload = {p for e in disc.entries.filter(kind="file") for p in e.paths}
    # The UDF view (7-Zip) and the Rock Ridge view (xorriso) hold every file, bag-valid.
    folder = extract_7z(image, tmp_path / "7z")
    assert {p.relative_to(folder).as_posix() for p in (folder / "data").rglob("*.jpg")} == payload
    bagit.Bag(str(folder)).validate()
    xorriso = require_tool("xorriso")
    found = subprocess.run(
        [xorriso, "-indev", str(image), "-find", "/data", "-type", "f", "-name", "*.jpg"],
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0, found.stderr
    assert {line.strip("'")[1:] for line in found.stdout.splitlines() if line.startswith("'/")} == payload
    isoinfo = require_tool("isoinfo", "genisoimage")
    for view in ("-R", "-J"):
        listing = subprocess.run([isoinfo, "-i", str(image), view, "-f"], capture_output=True, text=True, check=True)
        assert "/restore.py" in listing.stdout and "/repair.py" in listing.stdout
    udfinfo = require_tool("udfinfo", "udftools")
    info = subprocess.run([udfinfo, str(image)], capture_output=True, text=True)
    assert info.returncode == 0 and f"label={disc.volume_id}" in info.stdout, info.stdout + info.stderr
    checkisomd5 = require_tool("checkisomd5", "isomd5sum")
    checked = subprocess.run([checkisomd5, "--verbose", str(image)], capture_output=True, text=True)
    assert checked.returncode == 0 and isomd5.implanted(image) == disc.implanted_md5, checked.stdout
    call_command("verify_disc", str(image))
    mount = tmp_path / "mnt"
    mount.mkdir()
    unmount = mounted_image(image, mount)
    try:
        assert {p.relative_to(mount).as_posix() for p in (mount / "data").rglob("*.jpg")} == payload
        assert sha256_file(mount / "manifest.json") == sha256_file(folder / "manifest.json")
    finally:
        subprocess.run(unmount, check=False)


def mounted_image(image: Path, mount: Path) -> list[str]:
    """Mount the image read-only, as a disc in a drive is: with the kernel's loop
    device and ISO 9660 driver, or, on a kernel without them (this machine's),
    with fuseiso (FUSE).  Returns the command that unmounts it."""
    kernel = subprocess.run(
        ["mount", "-t", "iso9660", "-o", "loop,ro", str(image), str(mount)], capture_output=True, text=True
    )
    if kernel.returncode == 0:
        return ["umount", str(mount)]
    fuseiso = require_tool("fuseiso")
    fused = subprocess.run([fuseiso, str(image), str(mount)], capture_output=True, text=True)
    if fused.returncode != 0:
        (pytest.fail if IN_CI else pytest.skip)(
            f"cannot mount an image here: {kernel.stderr.strip()}; fuseiso: {fused.stderr.strip()}"
        )
    return [require_tool("fusermount", "fuse"), "-u", str(mount)]


# --- small discs: what the build, verify_disc and restore.py do around the recovery data ------


def small_disc(owner):
    for n in range(6):
        add_file(owner, f"IMG_{n}.jpg", os.urandom(150_000 + n * 10_000))
    disc = build.build_disc(plan_next_disc(owner, allow_partial=True).pk)
    assert disc.status == DiscStatus.VERIFIED, disc.last_error
    return disc, build.image_path(disc)


def test_an_image_without_its_recovery_data_or_with_garbage_after_the_volume_fails_verification(alice, tmp_path):
    disc, image = small_disc(alice)
    volume = volume_sectors(image) * SECTOR
    assert verify.verify_image(image, build.expected_files(disc), sector_parity=disc.sector_parity).ok
    cut = tmp_path / "cut.iso"
    shutil.copyfile(image, cut)
    os.truncate(cut, volume)
    found = verify.verify_image(cut, build.expected_files(disc), sector_parity=disc.sector_parity)
    assert [(p.expected, p.found) for p in found.problems] == [("sector recovery data after the ISO volume", "none")]
    garbage = tmp_path / "garbage.iso"
    shutil.copyfile(cut, garbage)
    with open(garbage, "ab") as fh:
        fh.write(os.urandom(64 * SECTOR))
    found = verify.verify_image(garbage, build.expected_files(disc), sector_parity=disc.sector_parity)
    assert len(found.problems) == 1 and "none usable (no recovery data found" in found.problems[0].found


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0x5A]))


def _damages(image: Path, layout) -> dict:
    """name -> a change to a copy of ``image``, each one that the recovery data's check must see."""
    big_l = layout.layer
    last_parity = layout.parity_sector(layout.m - 1, big_l - 1)
    table = fmt.pack_crc_table(layout, [0] * layout.crc_entries)  # sectors of the right shape, wrong CRCs

    def crc_sector_everywhere(path):
        # Every copy of one CRC table sector garbled: its sectors have no readable CRC.
        for start in layout.crc_copies:
            _flip(path, (start + 1) * SECTOR + 100)

    def other_sha(path):
        # Sound headers (their own CRCs match) that record another image's sha256.
        with open(path, "r+b") as fh:
            for copy, at in enumerate(layout.headers):
                fh.seek(at * SECTOR)
                fh.write(fmt.pack_header(layout, bytes(32), copy))

    def crcs_of_another_image(path):
        # Sound CRC table copies whose values are not this image's.
        with open(path, "r+b") as fh:
            for start in layout.crc_copies:
                fh.seek(start * SECTOR)
                fh.write(b"".join(table))

    return {
        "an image sector": lambda path: _flip(path, layout.image_sectors // 2 * SECTOR + 5),
        "the first parity sector": lambda path: _flip(path, layout.parity_sector(0, 0) * SECTOR + 7),
        "the last parity sector": lambda path: _flip(path, last_parity * SECTOR + 2047),
        "a parity sector of the second run": lambda path: _flip(
            path, layout.parity_sector(layout.first_half, big_l // 2) * SECTOR
        ),
        "one CRC table sector in every copy": crc_sector_everywhere,
        "the recorded sha256": other_sha,
        "the CRC table": crcs_of_another_image,
        "nothing": lambda path: None,
    }


def test_verify_finds_on_its_one_read_what_the_repair_tools_own_check_finds(alice, tmp_path, monkeypatch):
    # verify_image checks the recovery data on the same read as the files
    # (every sector's CRC beside the sha256s), and leaves the words to
    # repair.check when anything is wrong. Each damage must come out exactly
    # as with repair.check's own read of the whole image (what verify did
    # before), and be seen.
    disc, image = small_disc(alice)
    volume = volume_sectors(image) * SECTOR
    layout = fmt.Layout.for_image(volume // SECTOR, disc.sector_parity)
    expected = build.expected_files(disc)
    folded = verify._sector_check

    def both(path, parity=disc.sector_parity):
        monkeypatch.setattr(verify, "_sector_check", folded)
        one_read = verify.verify_image(path, expected, sector_parity=parity)
        monkeypatch.setattr(verify, "_sector_check", lambda *args: None)
        apart = verify.verify_image(path, expected, sector_parity=parity)
        assert (one_read.problems, one_read.image_sha256) == (apart.problems, apart.image_sha256)
        return one_read

    for name, damage in _damages(image, layout).items():
        copy = tmp_path / "copy.iso"
        shutil.copyfile(image, copy)
        damage(copy)
        found = both(copy)
        seen = [p for p in found.problems if p.path == "copy.iso (recovery data)"]
        assert bool(seen) == (name != "nothing"), (name, found.problems)
    # Expected with other parity: told, as repair.check's header says.
    found = both(image, parity=8)
    assert [(p.expected, p.found) for p in found.problems] == [("8 parity layers", str(disc.sector_parity))]
    # A sound image is read once: repair.check is not needed.
    monkeypatch.setattr(verify, "_sector_check", folded)
    monkeypatch.setattr(verify.repair, "check", lambda *args: pytest.fail("the image was read apart"))
    assert verify.verify_image(image, expected, sector_parity=disc.sector_parity).ok


def test_a_dry_run_repairs_outside_the_folder_and_a_damaged_folder_is_told_how_to_repair(alice, tmp_path):
    disc, image = small_disc(alice)
    readme = restore.IsoImage(str(image)).read_small("README.txt").decode("utf-8-sig").replace("\r\n", "\n")
    assert "REPAIRING A DAMAGED DISC" in readme and "python3 repair.py disc.iso --to repaired.iso" in readme
    assert "any 32 sectors of a group can be lost" in readme
    damaged = tmp_path / "damaged.iso"
    shutil.copyfile(image, damaged)
    with open(damaged, "r+b") as fh:  # the volume descriptors and a payload sector
        fh.write(bytes(40 * SECTOR))
        fh.seek(volume_sectors(image) // 2 * SECTOR)
        fh.write(bytes(SECTOR))
    before = set(Path(tempfile.gettempdir()).glob("discsub-repaired-*"))
    out, err, into = io.StringIO(), io.StringIO(), tmp_path / "restored"
    assert restore.restore([str(damaged)], str(into), dry_run=True, out=out, err=err) == 0, out.getvalue()
    assert "sectors were rebuilt from its recovery data" in out.getvalue()
    assert not into.exists(), "a dry run writes nothing into the folder"
    assert set(Path(tempfile.gettempdir()).glob("discsub-repaired-*")) == before, "nor leaves a repaired image"

    # A disc folder cannot be repaired in place: restore.py says to give it the drive or an image.
    folder = extract_7z(image, tmp_path / "folder")
    victim = next((folder / "data").rglob("*.jpg"))
    victim.chmod(0o644)
    with open(victim, "r+b") as fh:
        fh.seek(5000)
        fh.write(b"\0" * 2048)
    out = io.StringIO()
    assert restore.restore([str(folder)], str(tmp_path / "from-folder"), out=out, err=io.StringIO()) == 1
    assert "give restore.py the drive (e.g. /dev/sr0) or an image read from it" in out.getvalue()


@pytest.fixture
def drive(tmp_path):
    """A read-only loop device over an image file: a drive with a disc in it, as far as our tools can tell."""
    attached = []

    def attach(image: Path) -> str:
        losetup = require_tool("losetup", "mount")
        run = subprocess.run([losetup, "-r", "-f", "--show", str(image)], capture_output=True, text=True)
        if run.returncode != 0:
            (pytest.fail if IN_CI else pytest.skip)(f"cannot attach a loop device here: {run.stderr.strip()}")
        attached.append(run.stdout.strip())
        return attached[-1]

    yield attach
    for device in attached:
        subprocess.run(["losetup", "-d", device], check=False)


def test_a_damaged_disc_in_a_drive_is_repaired_and_restored(alice, tmp_path, drive, capsys):
    disc, image = small_disc(alice)
    damaged = tmp_path / "in-the-drive.iso"
    shutil.copyfile(image, damaged)
    with open(damaged, "r+b") as fh:
        for sector in random.Random(5).sample(range(volume_sectors(image)), 30):
            fh.seek(sector * SECTOR)
            fh.write(bytes(SECTOR))
    device = drive(damaged)
    into = tmp_path / "restored"
    call_command("restore_discs", device, into=str(into))  # restore.py's code, run from here
    assert "sectors were rebuilt from its recovery data" in capsys.readouterr().out
    carried = set(disc.entries.filter(kind="file").values_list("version__sha256", flat=True))
    assert {sha256_file(p) for p in into.rglob("*.jpg")} == carried
    call_command("repair_disc", device, to=str(tmp_path / "from-the-drive.iso"))
    assert sha256_file(tmp_path / "from-the-drive.iso") == sha256_file(image, volume_sectors(image) * SECTOR)
    assert not (tmp_path / "from-the-drive.iso.rescued").exists()
    # A sound disc in the drive is read straight from it.
    out = io.StringIO()
    assert restore.restore([drive(image)], str(tmp_path / "sound"), out=out, err=io.StringIO()) == 0, out.getvalue()
    assert "rebuilt" not in out.getvalue()
    assert {sha256_file(p) for p in (tmp_path / "sound").rglob("*.jpg")} == carried


def damaged_copy(image: Path, out: Path, sectors: int = 20) -> Path:
    shutil.copyfile(image, out)
    with open(out, "r+b") as fh:
        for sector in random.Random(9).sample(range(16, volume_sectors(image)), sectors):
            fh.seek(sector * SECTOR)
            fh.write(bytes(SECTOR))
    return out


def test_the_disc_tools_repair_without_pread_as_on_windows(alice, tmp_path):
    """Windows' Python has no os.pread or os.pwrite: the tools fall back to seek and read."""
    disc, image = small_disc(alice)
    damaged = damaged_copy(image, tmp_path / "damaged.iso")
    tools = tmp_path / "from-the-disc"
    tools.mkdir()
    for name in ("repair.py", "restore.py"):
        (tools / name).write_bytes(restore.IsoImage(str(image)).read_small(name))
    windowsish = (
        "import os, runpy, sys; del os.pread, os.pwrite; sys.argv = sys.argv[1:]; "
        "runpy.run_path(sys.argv[0], run_name='__main__')"
    )
    into = tmp_path / "restored"
    done = run_disc_tool_code(windowsish, tools / "restore.py", "--into", str(into), str(damaged))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sectors were rebuilt from its recovery data" in done.stdout
    carried = set(disc.entries.filter(kind="file").values_list("version__sha256", flat=True))
    assert {sha256_file(p) for p in into.rglob("*.jpg")} == carried


def run_disc_tool_code(code: str, tool: Path, *args: str) -> subprocess.CompletedProcess:
    python3 = require_tool("python3")
    return subprocess.run(
        [python3, "-I", "-c", code, str(tool), *args],
        capture_output=True,
        text=True,
        cwd=tool.parent,
        timeout=300,
        env={"PATH": os.environ["PATH"]},
    )


def test_repair_never_writes_over_the_image_it_reads(alice, tmp_path):
    _disc, image = small_disc(alice)
    damaged = damaged_copy(image, tmp_path / "damaged.iso")
    before = sha256_file(damaged)
    (tmp_path / "link.iso").symlink_to(damaged)
    tool = tmp_path / "repair.py"
    tool.write_bytes(restore.IsoImage(str(image)).read_small("repair.py"))
    done = run_disc_tool(tool, str(damaged), "--to", str(tmp_path / "link.iso"))
    assert done.returncode == 1 and "is the image itself" in done.stderr
    assert sha256_file(damaged) == before


def test_a_repair_that_does_not_fit_the_folder_is_named_and_the_rest_restored(alice, tmp_path, small_filesystem):
    mount, _grow = small_filesystem
    _disc, image = small_disc(alice)
    damaged = damaged_copy(image, tmp_path / "damaged.iso")
    out = io.StringIO()
    assert restore.restore([str(damaged)], str(mount / "restored"), out=out, err=io.StringIO()) == 1
    assert f"damaged.iso: not enough space in {mount / 'restored' / restore.STATE_DIR / restore.REPAIRED}" in (
        out.getvalue()
    )
    assert "Traceback" not in out.getvalue()
