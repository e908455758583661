import hashlib
import json
import os
import random
import subprocess
import unicodedata
from pathlib import Path

import pycdlib
import pytest

from exporter import iso, manifest
from exporter.layout import DiscFile
from exporter.verify import Problem, verify_folder, verify_image
from tests.tools import require_tool

EPOCH = 1_700_000_000
VOLUME = "VERIFY_0001"


def payload() -> list[DiscFile]:
    rng = random.Random(5)
    files = [
        DiscFile.from_bytes("data/Été/Café.jpg", rng.randbytes(300_000)),
        DiscFile.from_bytes("data/Été/empty.txt", b""),
        DiscFile.from_bytes("data/Deep/" + "/".join(f"L{n}" for n in range(10)) + "/x.jpg", rng.randbytes(5000)),
        DiscFile.from_bytes("data/100％ 😀.jpg", rng.randbytes(70_000)),
    ]
    shared = DiscFile.from_bytes("data/A/shared.jpg", rng.randbytes(9000))
    files.append(
        DiscFile(shared.path, shared.size, shared.sha256, shared.open, links=("data/B/shared.jpg",), item_id=7)
    )
    return files


def manifest_document(files: list[DiscFile]) -> bytes:
    """A manifest.json describing ``files`` (each its own item, in no album)."""
    described = [
        {"item": f"i{n}", "version": 1, "original_name": f.path.rsplit("/", 1)[-1], "albums": [], "path": f.path}
        | {"links": list(f.links), "size": f.size, "sha256": f.sha256}
        for n, f in enumerate(files)
    ]
    document = {"schema": "discsub-manifest", "schema_version": 1, "disc": {"number": 1, "series": "discsub-1"}}
    document |= {"files": described, "changes": {}, "held_back": [], "catalog": {}}
    return json.dumps(document).encode()


def disc_files(files: list[DiscFile], manifest_bytes: bytes | None = None) -> list[DiscFile]:
    listing = manifest_bytes if manifest_bytes is not None else manifest.payload_manifest(files)
    tags = [
        DiscFile.from_bytes("manifest.json", manifest_document(files)),
        DiscFile.from_bytes("manifest-sha256.txt", listing),
    ]
    return [*files, *tags, DiscFile.from_bytes("tagmanifest-sha256.txt", manifest.payload_manifest(tags))]


def expected(files: list[DiscFile]) -> dict[str, tuple[int, str]]:
    return {p: (f.size, f.sha256) for f in files for p in f.all_paths}


def extents(image: Path, path: str) -> list[tuple[int, int]]:
    """Where a file's bytes are, as a reader we did not write sees it."""
    reader = pycdlib.PyCdlib()
    reader.open(str(image))
    try:
        return reader.get_file_byte_extents(udf_path="/" + path)
    finally:
        reader.close()


def flip(image: Path, offset: int) -> None:
    with open(image, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x01]))


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "disc.iso"
    iso.write_image(disc_files(payload()), path, VOLUME, EPOCH)
    return path


def test_a_good_image_verifies_against_what_we_expect(image):
    files = disc_files(payload())
    result = verify_image(image, expected(files))
    assert result.ok, result.problems
    assert result.files_checked == len(expected(files)) == 9
    assert result.image_sha256 == hashlib.sha256(image.read_bytes()).hexdigest()


def test_a_good_image_verifies_against_its_own_manifest(image):
    result = verify_image(image)
    assert result.ok, result.problems
    assert result.files_checked == 8  # the payload paths, hard links included, and the two tagged files


def test_a_flipped_byte_is_reported_naming_the_file(image):
    (start, length), *_ = extents(image, "data/Été/Café.jpg")
    flip(image, start + length // 2)
    result = verify_image(image, expected(disc_files(payload())))
    assert [p.path for p in result.problems] == ["data/Été/Café.jpg"]
    problem = result.problems[0]
    assert problem.expected.startswith("sha256 ") and problem.found.startswith("sha256 ")
    assert str(problem) == f"data/Été/Café.jpg: expected {problem.expected}, found {problem.found}"
    assert result.image_sha256 == hashlib.sha256(image.read_bytes()).hexdigest()


def test_a_flipped_byte_in_linked_data_names_every_name(image):
    (start, _), *_ = extents(image, "data/A/shared.jpg")
    flip(image, start)
    result = verify_image(image)
    assert sorted(p.path for p in result.problems) == ["data/A/shared.jpg", "data/B/shared.jpg"]


def test_a_truncated_image_is_a_clear_problem(image):
    whole = image.stat().st_size
    for size in (whole - 2048, whole // 2, 40 * 2048):
        os.truncate(image, size)
        result = verify_image(image, expected(disc_files(payload())))
        assert not result.ok
        assert result.problems[0].path == "disc.iso"
        assert "truncated" in str(result.problems[0]) and str(whole) in str(result.problems[0])


@pytest.mark.parametrize("content", [b"", b"\x00" * 100_000, random.Random(1).randbytes(3_000_000)])
def test_garbage_is_a_clear_problem(tmp_path, content):
    garbage = tmp_path / "garbage.iso"
    garbage.write_bytes(content)
    result = verify_image(garbage)
    assert [p.path for p in result.problems] == ["garbage.iso"]
    assert "unreadable image" in result.problems[0].found
    assert result.image_sha256 == hashlib.sha256(content).hexdigest()


def test_a_missing_image_is_a_clear_problem(tmp_path):
    result = verify_image(tmp_path / "nothing.iso")
    assert not result.ok and "No such file" in result.problems[0].found


def test_missing_extra_and_resized_files_are_reported(image):
    want = expected(disc_files(payload()))
    del want["data/Été/empty.txt"]
    want["data/gone.jpg"] = (10, "0" * 64)
    size, sha = want["data/100％ 😀.jpg"]
    want["data/100％ 😀.jpg"] = (size + 1, sha)
    result = verify_image(image, want)
    assert {(p.path, p.found) for p in result.problems} == {
        ("data/Été/empty.txt", "an extra file"),
        ("data/gone.jpg", "none"),
        ("data/100％ 😀.jpg", f"{size} bytes"),
    }


def test_hostile_manifest_paths_are_reported_and_not_read(tmp_path):
    files = payload()
    secret = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    hostile = (
        manifest.payload_manifest(files)
        + (f"{secret}  ../x\n{secret}  /etc/passwd\n{secret}  data/../../etc/passwd\n{secret}  C:\\x\n").encode()
    )
    path = tmp_path / "disc.iso"
    iso.write_image(disc_files(files, hostile), path, VOLUME, EPOCH)
    result = verify_image(path)
    unsafe = {p.path for p in result.problems if "unsafe" in p.found}
    assert unsafe == {"../x", "/etc/passwd", "data/../../etc/passwd", "C:\\x"}
    assert len(result.problems) == 4


def test_a_disc_without_manifests_is_reported(tmp_path):
    path = tmp_path / "bare.iso"
    iso.write_image(payload(), path, VOLUME, EPOCH)
    found = {(p.path, p.found) for p in verify_image(path).problems}
    assert ("manifest-sha256.txt", "missing") in found and ("manifest.json", "missing") in found


def test_a_garbled_manifest_line_is_reported(tmp_path):
    files = payload()
    path = tmp_path / "disc.iso"
    iso.write_image(disc_files(files, manifest.payload_manifest(files) + b"not a checksum line\n"), path, VOLUME, 0)
    problems = verify_image(path).problems
    assert [(p.path, p.found) for p in problems] == [("manifest-sha256.txt", "line 7: 'not a checksum line'")]


# --- folders -------------------------------------------------------------------------


def write_folder(folder: Path, files: list[DiscFile]) -> None:
    for f in files:
        for path in f.all_paths:
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(f.open().read())


def test_a_folder_extracted_with_7z_verifies(image, tmp_path):
    seven = require_tool("7z", "p7zip-full")
    out = subprocess.run([seven, "x", "-y", f"-o{tmp_path / 'x'}", str(image)], capture_output=True)
    assert out.returncode == 0, out.stderr
    result = verify_folder(tmp_path / "x")
    assert result.ok, result.problems
    assert result.files_checked == 8 and result.image_sha256 == ""
    assert verify_folder(tmp_path / "x", expected(disc_files(payload()))).ok


def test_a_folder_with_a_changed_missing_or_extra_file_is_reported(tmp_path):
    files = disc_files(payload())
    write_folder(tmp_path, files)
    (tmp_path / "data/Été/Café.jpg").write_bytes(b"changed")
    (tmp_path / "data/B/shared.jpg").unlink()
    (tmp_path / "data/Été/stray.jpg").write_bytes(b"stray")
    (tmp_path / ".DS_Store").write_bytes(b"outside the payload: ignored")
    result = verify_folder(tmp_path)
    assert sorted((p.path, p.found) for p in result.problems) == [
        ("data/B/shared.jpg", "none"),
        ("data/Été/Café.jpg", "7 bytes"),  # manifest.json says how large it is
        ("data/Été/stray.jpg", "an extra file"),
    ]


def test_a_folder_with_decomposed_names_verifies(tmp_path):
    files = disc_files(payload())
    write_folder(tmp_path, files)
    # What an HFS+ volume on a Mac does to names.
    nfc = tmp_path / "data" / "Été"
    nfc.rename(tmp_path / "data" / unicodedata.normalize("NFD", "Été"))
    result = verify_folder(tmp_path)
    assert result.ok, result.problems


def test_a_folder_is_never_read_outside(tmp_path):
    folder = tmp_path / "disc"
    folder.mkdir()
    files = payload()
    write_folder(folder, files)
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"secret")
    secret = hashlib.sha256(b"secret").hexdigest()
    (folder / "data" / "link.txt").symlink_to(outside)
    lines = (
        manifest.payload_manifest(files)
        + (
            f"{secret}  ../secret.txt\n{secret}  {outside}\n{secret}  data/../../secret.txt\n{secret}  data/link.txt\n"
        ).encode()
    )
    (folder / "manifest-sha256.txt").write_bytes(lines)
    (folder / "manifest.json").write_bytes(manifest_document(files))
    result = verify_folder(folder)
    unsafe = [p.path for p in result.problems if p.found == "an unsafe path (not read)"]
    assert sorted(unsafe) == sorted(["../secret.txt", str(outside), "data/../../secret.txt", "data/link.txt"])
    others = {(p.path, p.found) for p in result.problems if p.found != "an unsafe path (not read)"}
    assert others == {("data/link.txt", "only in manifest-sha256.txt"), ("tagmanifest-sha256.txt", "missing")}


def test_a_missing_folder_is_a_clear_problem(tmp_path):
    result = verify_folder(tmp_path / "nothing")
    assert not result.ok and result.problems[0].found == "none"


def test_problems_read_as_one_line():
    problem = Problem("data/a.jpg", "sha256 aa", "sha256 bb")
    assert str(problem) == "data/a.jpg: expected sha256 aa, found sha256 bb"
