"""Every disc is a BagIt 1.0 bag (RFC 8493) that validates however it is extracted."""

import io
import os
import subprocess
import sys
import unicodedata

import bagit
import pytest

from exporter import bag, build, library, verify
from exporter.layout import DiscFile
from tests.exporter.extracted import extract_both, files_under, next_disc
from tests.factories import add_file, jpeg_bytes

pytestmark = pytest.mark.django_db

NFD = unicodedata.normalize("NFD", "Été à Noël")
HOSTILE = ['a/b\\c:d*e?f"g<h>i|j.jpg', "CON", "tab\there\n.jpg", "  spaces  ", "x" * 260 + ".jpg", "100%.jpg", ".."]


def library_with_every_kind_of_name(owner):
    nfd_album = library.ensure_album_path(owner, [NFD, unicodedata.normalize("NFD", "Crème brûlée")])
    hostile_album = library.ensure_album_path(owner, ["Albüm: <2024>", "..", "CON"])
    both = library.ensure_album_path(owner, ["Best of"])
    items = [
        add_file(owner, unicodedata.normalize("NFD", "Café.jpg"), jpeg_bytes(), albums=[nfd_album, both]),
        add_file(owner, "🎉 party 👨‍👩‍👧.jpg", jpeg_bytes(color=(1, 2, 3)), albums=[nfd_album]),
    ]
    items += [add_file(owner, name, f"hostile {n}".encode(), albums=[hostile_album]) for n, name in enumerate(HOSTILE)]
    return items


def validate(folder) -> None:
    """bagit-python's full validation: structure, Payload-Oxum, completeness, every checksum."""
    bagit.Bag(str(folder)).validate()


def test_a_disc_with_hostile_and_nfd_names_is_a_valid_bag_in_both_extractions(alice, tmp_path):
    items = library_with_every_kind_of_name(alice)
    first = next_disc(alice)
    library.edit_metadata(items[0], caption="edited: only the sidecar ships")
    library.replace_bytes(items[1], io.BytesIO(b"second version"))
    second = next_disc(alice)
    for disc in (first, second):
        for reader, folder in extract_both(disc, tmp_path).items():
            validate(folder)
            # The disc's own read-back agrees, on the folder and on the image.
            result = verify.verify_folder(folder)
            assert result.ok, (reader, result.problems)
        assert verify.verify_image(build.image_path(disc)).ok


def test_bag_info_describes_the_disc_and_its_series(alice, tmp_path, settings):
    settings.DISCSUB_ORGANIZATION = "Example Photos Ltd."
    album = library.ensure_album_path(alice, ["Travel", "Roma"])
    add_file(alice, "IMG_1.jpg", jpeg_bytes(exif_date="2024:05:02 19:44:10", offset="+02:00"), albums=[album])
    next_disc(alice)
    add_file(alice, "IMG_2.jpg", jpeg_bytes(), albums=[album, library.ensure_album_path(alice, ["Best of"])])
    disc = next_disc(alice)
    folder = extract_both(disc, tmp_path)["xorriso"]
    info = bagit.Bag(str(folder)).info
    assert info["Source-Organization"] == "Example Photos Ltd."
    assert info["Bagging-Date"] == disc.planned_at.date().isoformat()
    assert info["Bag-Group-Identifier"] == f"discsub-{alice.pk}"
    assert info["Bag-Count"] == "2 of ?"
    assert info["External-Identifier"] == disc.volume_id
    assert "Disc 2" in info["External-Description"] and "README.txt" in info["External-Description"]
    # Payload-Oxum counts every path an extraction produces: the original in
    # both albums (a hard link on the disc) and a sidecar in each.
    payload = [folder / p for p in files_under(folder) if p.startswith("data/")]
    assert len(payload) == 4
    assert info["Payload-Oxum"] == f"{sum(p.stat().st_size for p in payload)}.4"
    assert all(len(line) <= 79 for line in (folder / "bag-info.txt").read_text("utf-8").splitlines())
    assert (folder / "bagit.txt").read_bytes() == b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def test_the_tag_manifest_covers_every_file_outside_data(alice, tmp_path):
    add_file(alice, "IMG_1.jpg", jpeg_bytes())
    folder = extract_both(next_disc(alice), tmp_path)["7z"]
    listed = {line.split("  ", 1)[1] for line in (folder / "tagmanifest-sha256.txt").read_text("utf-8").splitlines()}
    tag_files = {p for p in files_under(folder) if not p.startswith("data/")}
    assert listed == tag_files - {"tagmanifest-sha256.txt"}
    assert {"bagit.txt", "bag-info.txt", "manifest-sha256.txt", "manifest.json", "README.txt"} <= listed
    payload = {line.split("  ", 1)[1] for line in (folder / "manifest-sha256.txt").read_text("utf-8").splitlines()}
    assert payload == {p for p in files_under(folder) if p.startswith("data/")}


def test_the_bagit_command_line_validates_a_disc(alice, tmp_path):
    add_file(alice, "IMG_1.jpg", jpeg_bytes(), albums=[library.ensure_album_path(alice, [NFD])])
    folder = extract_both(next_disc(alice), tmp_path)["7z"]
    result = subprocess.run([sys.executable, "-m", "bagit", "--validate", str(folder)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "is valid" in result.stderr


def test_a_damaged_payload_file_fails_bag_validation(alice, tmp_path):
    add_file(alice, "IMG_1.jpg", jpeg_bytes())
    folder = extract_both(next_disc(alice), tmp_path)["7z"]
    target = folder / "data" / "IMG_1.jpg"
    os.chmod(target, 0o644)
    target.write_bytes(target.read_bytes()[:-1] + b"\x00")
    with pytest.raises(bagit.BagValidationError):
        validate(folder)


# --- pure functions ------------------------------------------------------------------


def test_long_values_are_folded_and_read_back_whole(tmp_path):
    value = "A description that goes on and on " * 8 + "until the end."
    data = bag.bag_info_txt([("External-Description", value), ("Contact-Name", "Dana\nEvil-Tag: injected\x00")])
    lines = data.decode("utf-8").splitlines()
    assert all(len(line) <= bag.MAX_LINE for line in lines)
    assert all(line.startswith(("External-Description:", "Contact-Name:", " ")) for line in lines)
    (tmp_path / "bag-info.txt").write_bytes(data)
    parsed = dict(bagit._load_tag_file(str(tmp_path / "bag-info.txt")))
    # RFC 8493 §2.2.2 unfolding: drop the line breaks.
    assert parsed["External-Description"].replace("\n", "") == " ".join(value.split())
    assert parsed["Contact-Name"] == "Dana Evil-Tag: injected"
    assert "Evil-Tag" not in parsed


def test_payload_oxum_counts_each_hard_link_path_and_only_the_payload():
    linked = DiscFile.from_bytes("data/A/x.jpg", b"12345")
    files = [
        DiscFile(linked.path, linked.size, linked.sha256, linked.open, links=("data/B/x.jpg",)),
        DiscFile.from_bytes("data/A/x.jpg.xmp", b"123"),
        DiscFile.from_bytes("manifest.json", b"{}" * 100),
    ]
    assert bag.payload_oxum(files) == "13.3"


def test_bag_files_are_the_same_bytes_every_time():
    files = [DiscFile.from_bytes("data/x.jpg", b"x"), DiscFile.from_bytes("README.txt", b"hello")]
    info = [("Bag-Count", "1 of ?")]
    first = [(f.path, f.sha256) for f in bag.bag_files(info, files)]
    assert first == [(f.path, f.sha256) for f in bag.bag_files(info, list(reversed(files)))]
    assert [p for p, _ in first] == ["bagit.txt", "bag-info.txt", "manifest-sha256.txt", "tagmanifest-sha256.txt"]
