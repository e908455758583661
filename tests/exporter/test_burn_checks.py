"""Checks for burned discs: the implanted MD5 (checkisomd5) and the PAR2
recovery data (par2 repair), planned to the byte and proven on real tools."""

import hashlib
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from exporter import build, contents, iso, isomd5, library, names, par2, planning, verify
from exporter.layout import DiscFile
from exporter.media import CAPACITY_SECTORS
from exporter.models import Disc, DiscStatus
from exporter.planning import plan_next_disc
from tests.exporter.test_names import HOSTILE
from tests.factories import add_file
from tests.tools import require_tool

SECTOR = 2048

# Albums and names a subscriber might use, hostile ones included.
ALBUMS = [("Holidays", "Été 2024"), ("😀 Party",), ("Reserved", "CON"), ()]
NAMES = ["IMG_0001.JPG", "Café.jpg", "a" * 240 + ".jpg", "100%.jpg", "x:y?.jpg", "漢字.png", "abc.jpg", "v.mp4"]


def built_disc(owner, count: int = 12, seed: int = 1):
    """A small disc of random (incompressible, unique) files in several albums."""
    rng = random.Random(seed)
    for n in range(count):
        album = library.ensure_album_path(owner, list(ALBUMS[n % len(ALBUMS)]))
        data = rng.randbytes(rng.randint(20_000, 200_000))
        add_file(owner, NAMES[n % len(NAMES)], data, albums=[album] if album else [])
    planned = plan_next_disc(owner, allow_partial=True)
    disc = build.build_disc(planned.pk)
    assert disc.status == DiscStatus.VERIFIED, disc.last_error
    return disc


def extract(image: Path, out: Path) -> Path:
    seven = require_tool("7z", "p7zip-full")
    run = subprocess.run([seven, "x", "-y", f"-o{out}", str(image)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return out


def payload_extents(image: bytes, folder: Path) -> dict[str, tuple[int, int]]:
    """disc path -> (first byte, size) in the image of every non-empty payload
    file, found by its bytes (the originals are random; two sidecars may be
    alike); files start on a sector."""
    found = {}
    for path in sorted((folder / "data").rglob("*")):
        if path.is_file() and path.stat().st_size:
            data = path.read_bytes()
            offset = image.find(data)
            assert offset > 0 and offset % SECTOR == 0, path
            found[path.relative_to(folder).as_posix()] = (offset, len(data))
    return found


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- checkisomd5 ----------------------------------------------------------------------------


def test_checkisomd5_passes_on_a_built_image_and_fails_after_one_flipped_byte(alice, tmp_path):
    check = require_tool("checkisomd5", "isomd5sum")
    disc = built_disc(alice)
    image = build.image_path(disc)
    assert disc.implanted_md5 == isomd5.implanted(image) and len(disc.implanted_md5) == 32
    assert subprocess.run([check, str(image)], capture_output=True).returncode == 0

    data = bytearray(image.read_bytes())
    extents = payload_extents(bytes(data), extract(image, tmp_path / "x"))
    victim, (offset, size) = sorted((p, e) for p, e in extents.items() if not p.endswith(".xmp"))[3]
    data[offset + size // 2] ^= 0x01
    damaged = tmp_path / "damaged.iso"
    damaged.write_bytes(data)
    assert subprocess.run([check, str(damaged)], capture_output=True).returncode != 0
    # verify_disc reads the image against its own manifests and names the file.
    result = verify.verify_image(damaged)
    # The file, and the sector the recovery data after the volume finds damaged.
    found = {p.path: p for p in result.problems}
    assert set(found) == {victim, "damaged.iso (recovery data)"}
    assert "1 damaged in the image" in found["damaged.iso (recovery data)"].found
    with pytest.raises(CommandError, match="2 problem"):
        call_command("verify_disc", str(damaged))


def test_the_implant_changes_no_file_and_verify_accepts_it(alice):
    disc = built_disc(alice, count=3)
    result = verify.verify_image(build.image_path(disc), build.expected_files(disc))
    assert result.ok, result.problems
    assert result.image_sha256 == disc.image_sha256


def test_a_built_image_carries_the_bytes_implantisomd5_would_implant(alice, tmp_path, monkeypatch):
    # The builder takes the sums on its way through the image: implantisomd5
    # is not run, but it must find nothing to change.
    tool = require_tool("implantisomd5", "isomd5sum")
    monkeypatch.setenv("PATH", "/nonexistent")
    disc = built_disc(alice, count=3)
    copy = tmp_path / "copy.iso"
    shutil.copyfile(build.image_path(disc), copy)
    run = subprocess.run([tool, "--force", str(copy)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert copy.read_bytes() == build.image_path(disc).read_bytes()


@pytest.mark.parametrize("count, extra", [(1, 0), (4, 0), (30, 0), (3, 2_000_000), (1, 30_000_000)])
def test_the_implant_is_implantisomd5s_byte_for_byte(tmp_path, count, extra):
    # From an image shorter than 21 of implantisomd5's reads (its fragment
    # sums then skip some 21sts) to one of many thousand reads; streamed by
    # the writer, and read back.
    tool = require_tool("implantisomd5", "isomd5sum")
    rnd = random.Random(count + extra)
    files = [
        DiscFile.from_bytes(f"data/{n}.jpg", rnd.randbytes(rnd.randrange(1, 200_000) + extra)) for n in range(count)
    ]
    theirs, read_back = tmp_path / "theirs.iso", tmp_path / "read-back.iso"
    streamed = iso.write_image(files, tmp_path / "streamed.iso", "X", 0, implant_md5=True)
    for path in (theirs, read_back):
        iso.write_image(files, path, "X", 0)
    assert subprocess.run([tool, "--force", str(theirs)], capture_output=True).returncode == 0
    assert isomd5.implant(read_back) == streamed.implanted_md5 == isomd5.implanted(theirs)
    assert read_back.read_bytes() == theirs.read_bytes() == (tmp_path / "streamed.iso").read_bytes()
    assert streamed.sha256 == hashlib.sha256(theirs.read_bytes()).hexdigest()


@pytest.fixture
def par2_discs(settings, monkeypatch):
    """Discs as layout 2 made them, with PAR2 files (a rebuild of one must still make them)."""
    monkeypatch.setattr(planning, "LAYOUT_VERSION", 2)
    settings.DISCSUB_PAR2_REDUNDANCY = dict.fromkeys(settings.DISCSUB_PAR2_REDUNDANCY, 10)


def test_a_build_without_par2_fails_clearly(alice, monkeypatch, par2_discs):
    add_file(alice, "a.jpg")
    planned = plan_next_disc(alice, allow_partial=True)
    real = shutil.which
    monkeypatch.setattr(par2.shutil, "which", lambda name: None if name == "par2" else real(name))
    disc = build.build_disc(planned.pk)
    assert disc.status == DiscStatus.FAILED
    assert "par2 is not installed (Debian package par2" in disc.last_error


# --- PAR2 sizes ------------------------------------------------------------------------------


def random_layout(rng: random.Random) -> list[DiscFile]:
    """Payload files with hostile disc paths, sizes around block edges, empty files and links."""
    requests = [names.NameRequest(n, folders, name) for n, (folders, name) in enumerate(HOSTILE)]
    paths = list(names.assign_disc_paths(requests).values())
    rng.shuffle(paths)
    files = []
    for n, path in enumerate(paths[: rng.randint(1, 24)]):
        size = rng.choice([0, 1, 3, 4, 2047, 2048, 2049, 4096, rng.randint(1, 60_000), rng.randint(1, 400_000)])
        f = DiscFile.from_bytes(path, rng.randbytes(size))
        links = (f"data/Links {n}/{path.rsplit('/', 1)[-1]}",) if rng.random() < 0.2 else ()
        files.append(DiscFile(f.path, f.size, f.sha256, f.open, links=links))
    return files


def test_par2_sizes_are_predicted_exactly(tmp_path, monkeypatch):
    tool = require_tool("par2")
    rng = random.Random(20261126)
    for trial in range(12):
        # Some discs with several sets.
        monkeypatch.setattr(par2, "MAX_SET_FILES", rng.choice([1000, 1000, 4, 9]))
        files = random_layout(rng)
        percent = rng.choice([1, 5, 10, 10, 25, 100])
        plan = par2.plan([(p, f.size) for f in files for p in f.all_paths], percent)
        if plan is None:
            assert all(f.size == 0 for f in files)
            continue
        predicted = par2.par2_sizes([(p, f.size) for f in files for p in f.all_paths], percent)
        made = par2.create(plan, files, tmp_path / str(trial))
        assert [(f.path, f.size) for f in made] == predicted, (trial, plan)
        assert [(f.path, (tmp_path / str(trial) / "disc" / f.path).stat().st_size) for f in made] == predicted
        assert len(plan.sets) == -(-len(plan.files) // par2.MAX_SET_FILES)
        # par2 itself accepts every set, with the payload where the disc has it.
        par2.stage(files, tmp_path / str(trial) / "disc")
        for index in plan.indexes:
            check = subprocess.run(
                [tool, "verify", "-q", "-q", "-B", ".", index], cwd=tmp_path / str(trial) / "disc", capture_output=True
            )
            assert check.returncode == 0, (trial, index, check.stdout, check.stderr)


def test_the_block_size_is_the_smallest_sector_multiple_within_the_block_limit():
    rng = random.Random(7)
    for _ in range(200):
        sizes = [rng.randint(1, rng.choice([5_000, 3_000_000, 400_000_000])) for _ in range(rng.randint(1, 3000))]
        limit = min(par2.MAX_SOURCE_BLOCKS, max(par2.TARGET_SOURCE_BLOCKS, 2 * len(sizes)))
        size = par2.choose_block_size(sizes)
        assert size % SECTOR == 0
        assert sum(-(-s // size) for s in sizes) <= limit
        assert size == SECTOR or sum(-(-s // (size - SECTOR)) for s in sizes) > limit


def test_the_recovery_files_are_the_same_bytes_every_time(tmp_path):
    require_tool("par2")
    files = random_layout(random.Random(3))
    plan = par2.plan([(p, f.size) for f in files for p in f.all_paths], 10)
    first = par2.create(plan, files, tmp_path / "a", threads=2)
    second = par2.create(plan, list(reversed(files)), tmp_path / "b", threads=1)
    assert [f.sha256 for f in first] == [f.sha256 for f in second]


# --- on a disc -------------------------------------------------------------------------------


def test_the_planner_counts_the_recovery_data_and_the_image_is_reproducible(alice, tmp_path, settings, par2_discs):
    disc = built_disc(alice)
    assert disc.recovery_percent == settings.DISCSUB_PAR2_REDUNDANCY["cd"] == 10
    expected = build.expected_files(disc)
    payload = [(p, size) for p, (size, _) in expected.items() if p.startswith("data/")]
    recovery = {p: size for p, (size, _) in expected.items() if p.startswith("recovery/")}
    assert recovery == dict(par2.par2_sizes(payload, 10)) and par2.INDEX in recovery
    assert [[p, s] for p, s, _ in disc.recovery_files] == [[p, s] for p, s in par2.par2_sizes(payload, 10)]
    assert disc.image_size == disc.planned_sectors * SECTOR <= CAPACITY_SECTORS["cd"] * SECTOR
    # The bag lists the recovery files, so bagit.py and sha256sum -c check them too.
    tags = verify.parse_manifest(
        (extract(build.image_path(disc), tmp_path / "x") / "tagmanifest-sha256.txt").read_bytes()
    )
    assert {p for p in tags[0] if p.startswith("recovery/")} == set(recovery)
    # A changed setting does not change a planned disc.
    settings.DISCSUB_PAR2_REDUNDANCY = {**settings.DISCSUB_PAR2_REDUNDANCY, "cd": 30}
    call_command("rebuild_disc", disc.pk, to=str(tmp_path / "again.iso"))
    assert sha256_of(tmp_path / "again.iso") == disc.image_sha256


def test_a_disc_planned_without_recovery_data_has_none(alice, settings):
    settings.DISCSUB_PAR2_REDUNDANCY = {**settings.DISCSUB_PAR2_REDUNDANCY, "cd": 0}
    disc = built_disc(alice, count=2)
    assert disc.recovery_percent == 0 and disc.recovery_files == []
    assert not [p for p in build.expected_files(disc) if p.startswith("recovery/")]
    assert disc.implanted_md5


def test_a_disc_first_built_without_an_implanted_md5_is_rebuilt_without_one(alice, settings, tmp_path):
    settings.DISCSUB_PAR2_REDUNDANCY = {**settings.DISCSUB_PAR2_REDUNDANCY, "cd": 0}
    disc = built_disc(alice, count=2)
    # A disc of those days had no sector recovery data either.
    Disc.objects.filter(pk=disc.pk).update(sector_parity=0)
    disc.refresh_from_db()
    entries = list(disc.entries.select_related("version").order_by("id"))
    old = iso.write_image(
        contents.disc_files(disc, entries), tmp_path / "old.iso", disc.volume_id, int(disc.planned_at.timestamp())
    )
    Disc.objects.filter(pk=disc.pk).update(image_sha256=old.sha256, implanted_md5="")
    call_command("rebuild_disc", disc.pk, to=str(tmp_path / "again.iso"))
    assert sha256_of(tmp_path / "again.iso") == old.sha256
    assert isomd5.implanted(tmp_path / "again.iso") is None


@pytest.mark.parametrize("set_files", [1000, 12])
def test_par2_repairs_a_disc_with_2_percent_of_its_payload_sectors_zeroed(
    alice, tmp_path, monkeypatch, set_files, par2_discs
):
    """Like a subscriber: the damaged disc reads back with zeroed sectors; they
    copy it to a folder and run par2 repair as the README says (once per set)."""
    tool = require_tool("par2")
    monkeypatch.setattr(par2, "MAX_SET_FILES", set_files)
    disc = built_disc(alice, count=16, seed=2)
    image = build.image_path(disc).read_bytes()
    extents = payload_extents(image, extract(build.image_path(disc), tmp_path / "clean"))
    sectors = sorted(
        {(offset + i * SECTOR) // SECTOR for offset, size in extents.values() for i in range(-(-size // SECTOR))}
    )
    # Every 50th payload sector, spread over every file, starting at a random one.
    bad = sectors[random.Random(4).randrange(50) :: 50]
    assert len(bad) >= len(sectors) // 50
    damaged = bytearray(image)
    for sector in bad:
        damaged[sector * SECTOR : (sector + 1) * SECTOR] = bytes(SECTOR)
    (tmp_path / "damaged.iso").write_bytes(damaged)
    folder = extract(tmp_path / "damaged.iso", tmp_path / "disc")
    expected = build.expected_files(disc)
    broken = [p for p, (_, sha) in expected.items() if sha256_of(folder / p) != sha]
    assert len(broken) >= 3

    indexes = sorted(p for p in expected if p.startswith("recovery/") and ".vol" not in p)
    assert indexes == (
        ["recovery/data.par2"]
        if set_files == 1000
        else ["recovery/data-01.par2", "recovery/data-02.par2", "recovery/data-03.par2"]
    )
    for index in indexes:
        run = subprocess.run([tool, "repair", "-B", ".", index], cwd=folder, capture_output=True, text=True)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr

    assert [p for p, (_, sha) in expected.items() if sha256_of(folder / p) != sha] == []
