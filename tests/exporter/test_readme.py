"""README.txt: what the disc is, and how to check and restore it, on any system."""

import re
import shutil
import subprocess
import sys

import pytest

from exporter import library, readme
from tests.exporter.extracted import extract_both, manifest_of, next_disc
from tests.factories import add_file, jpeg_bytes
from tests.tools import require_tool

pytestmark = pytest.mark.django_db


def commands(text: str, program: str) -> list[str]:
    """The indented command lines of the README that run ``program``."""
    return [line.strip() for line in text.splitlines() if line.startswith("    " + program)]


def read(folder) -> str:
    return (folder / "README.txt").read_bytes().decode("utf-8-sig")


@pytest.fixture
def disc_folder(alice, tmp_path):
    alice.first_name, alice.last_name = "Zoë", "Ångström"
    alice.save()
    album = library.ensure_album_path(alice, ["Été 2024"])
    add_file(alice, "IMG_1.jpg", jpeg_bytes(exif_date="2024:05:02 19:44:10", offset="+02:00"), albums=[album])
    add_file(alice, "IMG_2.jpg", jpeg_bytes(exif_date="2024:08:30 10:00:00"), albums=[album])
    next_disc(alice)
    add_file(alice, "IMG_3.jpg", jpeg_bytes(exif_date="2024:09:01 10:00:00"), albums=[album])
    return extract_both(next_disc(alice), tmp_path)["xorriso"]


def test_the_readme_is_utf8_with_crlf_lines_for_notepad(disc_folder):
    data = (disc_folder / "README.txt").read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    text = data.decode("utf-8-sig")
    assert max(len(line) for line in text.splitlines() if "Get-FileHash" not in line) <= 79


def test_the_readme_says_what_the_disc_is(disc_folder):
    text = read(disc_folder)
    document = manifest_of(disc_folder)
    assert text.startswith("DISC 2 OF THE PHOTO LIBRARY OF ZOË ÅNGSTRÖM\r\n")
    assert "Zoë Ångström" in text
    assert f"{document['disc']['series']}, disc 2" in text
    assert document["disc"]["volume_id"] in text
    assert "Photos taken      2024-09-01 to 2024-09-01" in text
    assert f"Library changes   {document['disc']['first_change']} to {document['disc']['last_change']}" in text
    assert "1 file: 1 new, 0 new versions" in text
    for name in ("data/", "manifest.json", "manifest-sha256.txt", "tagmanifest-sha256.txt", "bagit.txt"):
        assert name in text


def test_the_readme_tells_how_to_check_on_windows_macos_and_linux(disc_folder):
    text = read(disc_folder)
    [certutil] = commands(text, "certutil")
    assert certutil == 'certutil -hashfile "D:\\data\\Été 2024\\IMG_3.jpg" SHA256'
    [powershell] = commands(text, "$bad = 0")
    assert "Get-FileHash -Algorithm SHA256 -LiteralPath $p" in powershell and "manifest-sha256.txt" in powershell
    assert commands(text, "checkisomd5") == ["checkisomd5 --verbose /dev/sr0"]


def test_the_readmes_own_commands_pass_on_the_extracted_disc(disc_folder):
    text = read(disc_folder)
    lines = commands(text, "sha256sum") + commands(text, "shasum") + commands(text, "bagit.py")
    assert len(lines) == 5
    for line in lines:
        argv = line.split()
        if argv[0] == "bagit.py":
            argv = [sys.executable, "-m", "bagit", *argv[1:]]
        elif shutil.which(argv[0]) is None:
            pytest.skip(f"{argv[0]} is not installed")
        result = subprocess.run(argv, cwd=disc_folder, capture_output=True, text=True)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        assert "FAILED" not in result.stdout


def test_the_repair_and_restore_sections_follow_what_is_on_the_disc(disc_folder):
    document = manifest_of(disc_folder)
    bare = readme.readme_txt(document, ["manifest.json"]).decode("utf-8-sig")
    assert "par2" not in bare and "restore.py" not in bare and "index.html" not in bare
    assert "Copy the data folder of every disc" in bare
    present = ["index.html", "restore.py", "recovery/data.vol000+01.par2", "recovery/data.par2"]
    full = readme.readme_txt(document, present).decode("utf-8-sig")
    assert commands(full, "par2") == ["par2 repair -B . recovery/data.par2"]
    assert "python3 restore.py --into FOLDER DISC..." in full
    assert "index.html" in full


def test_a_hostile_name_stays_on_its_line(alice, tmp_path):
    alice.first_name, alice.last_name = "Mallory\r\nBagIt-Version: 0.9", ""
    alice.save()
    add_file(alice, "x.jpg", b"x")
    folder = extract_both(next_disc(alice), tmp_path)["7z"]
    text = read(folder)
    assert text.splitlines()[0] == "DISC 1 OF THE PHOTO LIBRARY OF MALLORY BAGIT-VERSION: 0.9"
    assert not re.search(r"^BagIt-Version", (folder / "bag-info.txt").read_text("utf-8"), re.MULTILINE)


def test_the_readmes_repair_command_repairs_a_copied_disc(disc_folder):
    par2 = require_tool("par2")
    payload = sorted(str(p.relative_to(disc_folder)) for p in (disc_folder / "data").rglob("*") if p.is_file())
    if not list(disc_folder.glob("recovery/*.par2")):  # made here until the builder makes it
        (disc_folder / "recovery").mkdir()
        made = subprocess.run(
            [par2, "create", "-q", "-r30", f"-B{disc_folder}", "recovery/data.par2", *payload],
            cwd=disc_folder,
            capture_output=True,
            text=True,
        )
        assert made.returncode == 0, made.stdout + made.stderr
    present = [str(p.relative_to(disc_folder)) for p in (disc_folder / "recovery").iterdir()]
    [command] = commands(readme.readme_txt(manifest_of(disc_folder), present).decode("utf-8-sig"), "par2")
    damaged = disc_folder / payload[0]
    good = damaged.read_bytes()
    damaged.write_bytes(good[:100] + b"\x00" * 50 + good[150:])
    repaired = subprocess.run(command.split(), cwd=disc_folder, capture_output=True, text=True)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert damaged.read_bytes() == good


def test_a_disc_with_several_par2_sets_gets_a_repair_command_for_each(disc_folder):
    present = [
        "recovery/data-01.par2",
        "recovery/data-01.vol000+04.par2",
        "recovery/data-02.par2",
        "recovery/data-02.vol000+04.par2",
    ]
    text = readme.readme_txt(manifest_of(disc_folder), present).decode("utf-8-sig")
    assert commands(text, "par2") == [
        "par2 repair -B . recovery/data-01.par2",
        "par2 repair -B . recovery/data-02.par2",
    ]
