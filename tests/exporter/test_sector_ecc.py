"""Sector-level recovery data (exporter/ecc.py) and the disc's standard-library
repair tool (exporter/disc_tools/repair.py), run as ``python3 -I`` from a
folder where nothing else can be imported."""

import hashlib
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from exporter import ecc, iso, isomd5
from exporter.disc_tools import repair as fmt
from exporter.layout import DiscFile
from tests.tools import IN_CI, require_tool

SECTOR = 2048
EPOCH = 1_700_000_000


@pytest.fixture(scope="module", autouse=True)
def isal():
    try:
        ecc.isal_cauchy_rows(2, 1)
    except ecc.EccError as exc:
        (pytest.fail if IN_CI else pytest.skip)(f"{exc}; .ci/run installs it")


def python3() -> str:
    return require_tool("python3")


def repair_tool(folder: Path) -> Path:
    """repair.py alone in a folder, as it is on a disc."""
    folder.mkdir(exist_ok=True)
    tool = folder / "repair.py"
    shutil.copyfile(fmt.__file__, tool)
    return tool


def run_repair(tool: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python3(), "-I", str(tool), *args], capture_output=True, text=True, cwd=tool.parent, timeout=600
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def zero(path: Path, sectors) -> None:
    with open(path, "r+b") as fh:
        for s in sectors:
            fh.seek(s * SECTOR)
            fh.write(bytes(SECTOR))


def real_iso(folder: Path, count: int = 12) -> Path:
    """A small image by the project's own writer, with its implanted MD5."""
    rnd = random.Random(7)
    files = [
        DiscFile.from_bytes(f"data/Album {n % 3}/photo {n}.jpg", rnd.randbytes(rnd.randrange(2_000, 300_000)))
        for n in range(count)
    ]
    image = folder / "real.iso"
    iso.write_image(files, image, "DISCSUB_000001_0001", EPOCH)
    isomd5.implant(image)
    return image


# --- the code -------------------------------------------------------------------------------


@pytest.mark.parametrize("k, m", [(223, 32), (191, 64), (245, 10)])
def test_isal_builds_the_matrix_the_disc_tool_decodes_with(k, m):
    assert ecc.isal_cauchy_rows(k, m) == fmt.cauchy_rows(k, m)


def test_any_m_lost_sectors_of_a_group_are_solvable():
    # Every square submatrix of the Cauchy rows is invertible: spot-check
    # the largest systems the repair can meet, over random erasure patterns.
    k, m = 223, 32
    rows = fmt.cauchy_rows(k, m)
    rnd = random.Random(3)
    for size in (1, 2, 5, 17, 32):
        lost = sorted(rnd.sample(range(k), size))
        use = sorted(rnd.sample(range(m), size))
        matrix = [[rows[j][i] for i in lost] for j in use]
        inverse = fmt.gf_invert(matrix)
        product = [
            [_dot([matrix[r][x] for x in range(size)], [inverse[x][c] for x in range(size)]) for c in range(size)]
            for r in range(size)
        ]
        assert product == [[int(r == c) for c in range(size)] for r in range(size)]


def _dot(a, b):
    acc = 0
    for x, y in zip(a, b, strict=True):
        acc ^= fmt.gf_mul(x, y)
    return acc


@pytest.mark.parametrize("parity", [32, 8])
def test_the_fast_encoder_writes_the_reference_encoders_bytes(tmp_path, parity):
    rnd = random.Random(parity)
    data = rnd.randbytes(5_000 * SECTOR) + bytes(3 * SECTOR)  # ends on all-zero sectors
    fast, reference = tmp_path / "fast.iso", tmp_path / "reference.iso"
    fast.write_bytes(data)
    reference.write_bytes(data)
    made = ecc.protect(fast, parity=parity, engine="isal")
    ecc.protect(reference, parity=parity, engine="python")
    assert made.engine == "isal"
    assert fast.read_bytes() == reference.read_bytes()
    assert fast.read_bytes()[: len(data)] == data
    assert (made.k, made.m, made.image_sectors) == (255 - parity, parity, 5_003)
    # Reproducible: the same image gets the same recovery data.
    again = tmp_path / "again.iso"
    again.write_bytes(data)
    ecc.protect(again, parity=parity, sha256=hashlib.sha256(data).hexdigest())
    assert again.read_bytes() == fast.read_bytes()


# --- a real image ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def protected_real(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    image = real_iso(folder)
    original = image.read_bytes()
    ecc.protect(image, sha256=hashlib.sha256(original).hexdigest())
    return image, original


def test_readers_still_read_an_image_with_recovery_data(protected_real, tmp_path):
    image, original = protected_real
    assert image.stat().st_size > len(original)
    names = {f"photo {n}.jpg" for n in range(12)}
    listing = subprocess.run([require_tool("7z", "p7zip-full"), "l", str(image)], capture_output=True, text=True)
    assert listing.returncode == 0 and all(n in listing.stdout for n in names)
    xorriso = require_tool("xorriso")
    found = subprocess.run([xorriso, "-indev", str(image), "-find", "/", "-type", "f"], capture_output=True, text=True)
    assert found.returncode == 0 and all(n in found.stdout for n in names)
    isoinfo = require_tool("isoinfo", "genisoimage")
    for flag in ("-R", "-J"):
        tree = subprocess.run([isoinfo, "-i", str(image), flag, "-f"], capture_output=True, text=True)
        assert tree.returncode == 0 and "photo 11.jpg" in tree.stdout
    udf = subprocess.run([require_tool("udfinfo", "udftools"), str(image)], capture_output=True, text=True)
    assert udf.returncode == 0, udf.stderr
    # checkisomd5 sums the ISO volume only (its size from the volume descriptor).
    md5 = subprocess.run([require_tool("checkisomd5", "isomd5sum"), str(image)], capture_output=True)
    assert md5.returncode == 0
    data = bytearray(image.read_bytes())
    data[len(original) // 2] ^= 1
    damaged = tmp_path / "damaged.iso"
    damaged.write_bytes(data)
    assert subprocess.run([require_tool("checkisomd5", "isomd5sum"), str(damaged)], capture_output=True).returncode


def test_a_real_image_without_its_volume_descriptors_comes_back(protected_real, tmp_path):
    image, original = protected_real
    damaged = tmp_path / "damaged.iso"
    shutil.copyfile(image, damaged)
    sectors = len(original) // SECTOR
    zero(damaged, list(range(64)) + random.Random(1).sample(range(sectors), sectors // 100))
    tool = repair_tool(tmp_path / "disc")
    out = tmp_path / "repaired.iso"
    done = run_repair(tool, str(damaged), "--to", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes() == original
    assert "image sha256 OK" in done.stdout


def test_an_undamaged_image_checks_clean_and_all_zero_sectors_are_good(tmp_path):
    image = tmp_path / "zeros.iso"
    image.write_bytes(random.Random(2).randbytes(400 * SECTOR) + bytes(600 * SECTOR))
    ecc.protect(image)
    done = run_repair(repair_tool(tmp_path / "disc"), str(image), "--check")
    assert done.returncode == 0, done.stderr
    assert "0 damaged in the image, 0 in the parity layers, 0 without a readable CRC" in done.stdout
    assert "no damage" in done.stdout


# --- damage beyond what the code can repair -------------------------------------------------


@pytest.fixture
def small(tmp_path):
    image = tmp_path / "small.iso"
    original = random.Random(5).randbytes(2_230 * SECTOR)  # 223 layers of 10 sectors
    image.write_bytes(original)
    ecc.protect(image)
    return image, original


def test_too_much_damage_is_named_group_by_group_and_fails(small, tmp_path):
    image, original = small
    # Group 3 loses 33 data sectors (one more than the 32 parity layers).
    lost = [layer * 10 + 3 for layer in range(40, 73)]
    zero(image, lost)
    out = tmp_path / "out.iso"
    done = run_repair(repair_tool(tmp_path / "disc"), str(image), "--to", str(out))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "COULD NOT REPAIR 1 of 10 groups" in done.stdout
    assert "group 3: 33 damaged sectors; image sectors lost: 403, 413, 423" in done.stdout
    assert "IMAGE SHA256 WRONG" in done.stdout and "image sha256 OK" not in done.stdout
    check = run_repair(repair_tool(tmp_path / "disc"), str(image), "--check")
    assert check.returncode == 1 and "group 3: 33 damaged" in check.stdout
    # The other nine groups were still repaired (nothing else was damaged).
    repaired = out.read_bytes()
    assert [
        s for s in range(2_230) if repaired[s * SECTOR : (s + 1) * SECTOR] != original[s * SECTOR : (s + 1) * SECTOR]
    ] == lost


def test_one_sector_less_damage_is_repaired(small, tmp_path):
    image, original = small
    zero(image, [layer * 10 + 3 for layer in range(40, 72)])
    out = tmp_path / "out.iso"
    done = run_repair(repair_tool(tmp_path / "disc"), str(image), "--to", str(out))
    assert done.returncode == 0, done.stdout
    assert out.read_bytes() == original


def test_without_any_crc_table_the_repair_never_claims_success(small, tmp_path):
    image, _original = small
    layout = fmt.Layout.for_image(2_230)
    for copy in layout.crc_copies:
        zero(image, range(copy, copy + layout.crc_sectors))
    zero(image, [100, 1500])
    out = tmp_path / "out.iso"
    done = run_repair(repair_tool(tmp_path / "disc"), str(image), "--to", str(out))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "without a readable CRC" in done.stdout and "IMAGE SHA256 WRONG" in done.stdout


def test_an_image_without_recovery_data_is_refused_plainly(tmp_path):
    image = tmp_path / "plain.iso"
    image.write_bytes(random.Random(4).randbytes(300 * SECTOR))
    done = run_repair(repair_tool(tmp_path / "disc"), str(image), "--to", str(tmp_path / "out.iso"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "no recovery data found" in done.stderr


# The damage of issue 13 on a full CD, built as every disc is: tests/exporter/test_damaged_discs.py.
