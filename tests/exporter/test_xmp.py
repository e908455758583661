"""XMP sidecars: valid XML in the XMP namespaces, read back by exiftool."""

import json
import subprocess
import xml.etree.ElementTree as ET

import pytest

from exporter import build, library, names, xmp
from tests.exporter.extracted import extract_both, files_under, manifest_of, next_disc
from tests.factories import add_file, jpeg_bytes
from tests.tools import require_tool

pytestmark = pytest.mark.django_db

NS = xmp.NAMESPACES
HOSTILE_CAPTION = 'Tom & Jerry\'s "<best>" day ]]> \x01\x0b bell\x07 tab\t CR\r\nLF\n 🎉👨‍👩‍👧 \ufffe end'
# What XML can carry of it: characters outside XML 1.0 become U+FFFD.
CARRIED_CAPTION = 'Tom & Jerry\'s "<best>" day ]]> \ufffd\ufffd bell\ufffd tab\t CR\r\nLF\n 🎉👨‍👩‍👧 \ufffd end'


def snapshot(**overrides):
    metadata = {
        "item": "7f1c0000-0000-4000-8000-000000000001",
        "version": 2,
        "original_name": "IMG_0001.JPG",
        "content_type": "image/jpeg",
        "title": "Roma <3",
        "caption": HOSTILE_CAPTION,
        "captured_at": "2024-05-02T19:44:10+02:00",
        "uploaded_at": "2024-05-03T08:00:00+00:00",
        "albums": [["Travel", "Roma"], ["Best of"], ["A|B", "C/D"]],
    }
    return {**metadata, **overrides}


def lang_alt(root, tag):
    [li] = root.findall(f".//{{{NS['rdf']}}}Description/{tag}/{{{NS['rdf']}}}Alt/{{{NS['rdf']}}}li")
    assert li.get("{http://www.w3.org/XML/1998/namespace}lang") == "x-default"
    return li.text


def items_of(root, tag, kind):
    return [
        li.text for li in root.findall(f".//{{{NS['rdf']}}}Description/{tag}/{{{NS['rdf']}}}{kind}/{{{NS['rdf']}}}li")
    ]


def test_a_sidecar_is_xml_in_the_xmp_namespaces_with_every_field_escaped():
    data = xmp.sidecar_xml(snapshot())
    root = ET.fromstring(data)
    assert root.tag == f"{{{NS['x']}}}xmpmeta"
    assert lang_alt(root, f"{{{NS['dc']}}}title") == "Roma <3"
    assert lang_alt(root, f"{{{NS['dc']}}}description") == CARRIED_CAPTION
    assert items_of(root, f"{{{NS['dc']}}}subject", "Bag") == sorted(["A|B", "Best of", "C/D", "Roma", "Travel"])
    # A separator inside an album name would split it: it becomes its look-alike.
    assert items_of(root, f"{{{NS['lr']}}}hierarchicalSubject", "Bag") == ["A｜B|C/D", "Best of", "Travel|Roma"]
    assert items_of(root, f"{{{NS['digiKam']}}}TagsList", "Seq") == ["A|B/C／D", "Best of", "Travel/Roma"]
    for ns, tag in (("xmp", "CreateDate"), ("photoshop", "DateCreated"), ("exif", "DateTimeOriginal")):
        assert root.find(f".//{{{NS[ns]}}}{tag}").text == "2024-05-02T19:44:10+02:00"
    assert root.find(f".//{{{NS['xmpMM']}}}PreservedFileName").text == "IMG_0001.JPG"
    assert data.startswith('<?xpacket begin="\ufeff"'.encode()) and data.rstrip().endswith(b'<?xpacket end="w"?>')
    assert xmp.sidecar_xml(snapshot()) == data  # same snapshot, same bytes


def test_empty_fields_are_left_out():
    root = ET.fromstring(xmp.sidecar_xml(snapshot(title="", caption="", captured_at=None, albums=[])))
    description = root.find(f".//{{{NS['rdf']}}}Description")
    assert [child.tag for child in description] == [f"{{{NS['xmpMM']}}}PreservedFileName"]


def test_each_album_folder_gets_its_sidecar_and_a_users_own_xmp_file_keeps_its_name():
    sidecars = xmp.sidecar_paths(
        [["data/A/x.jpg", "data/B/x.jpg"], ["data/A/y.jpg"], ["data/L/" + "ł" * 120 + ".jpg"]],
        occupied={"data/A/x.jpg", "data/B/x.jpg", "data/A/y.jpg", "data/A/Y.JPG.XMP", "data/L/" + "ł" * 120 + ".jpg"},
    )
    assert sidecars[0] == ["data/A/x.jpg.xmp", "data/B/x.jpg.xmp"]
    assert sidecars[1] == ["data/A/y.jpg (2).xmp"]  # y.jpg.xmp is taken, whatever its case
    [long] = sidecars[2]
    assert long.endswith(".xmp") and names.fits_everywhere(long.rsplit("/", 1)[1])


def test_exiftool_reads_every_sidecar_of_a_disc(alice, tmp_path):
    exiftool = require_tool("exiftool", "libimage-exiftool-perl")
    roma = library.ensure_album_path(alice, ["Travel", "Roma"])
    best = library.ensure_album_path(alice, ["Best of"])
    photo = add_file(
        alice,
        "IMG_0001.JPG",
        jpeg_bytes(exif_date="2024:05:02 19:44:10", offset="+02:00"),
        albums=[roma, best],
        title="Roma",
        caption="Colosseum <&\"'> at dusk 🌇",
    )
    plain = add_file(alice, "plain.jpg", jpeg_bytes(), albums=[best])
    disc = next_disc(alice)
    for folder in extract_both(disc, tmp_path).values():
        sidecars = sorted(p for p in files_under(folder) if p.endswith(".xmp"))
        assert sidecars == [
            "data/Best of/IMG_0001.JPG.xmp",
            "data/Best of/plain.jpg.xmp",
            "data/Travel/Roma/IMG_0001.JPG.xmp",
        ]
        for path in sidecars:
            ET.fromstring((folder / path).read_bytes())  # well-formed, strictly
        out = subprocess.run([exiftool, "-j", "-G", *sidecars], cwd=folder, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        read = {r["SourceFile"]: r for r in json.loads(out.stdout)}
        for path in ("data/Best of/IMG_0001.JPG.xmp", "data/Travel/Roma/IMG_0001.JPG.xmp"):
            tags = read[path]
            assert tags["XMP:Title"] == "Roma"
            assert tags["XMP:Description"] == "Colosseum <&\"'> at dusk 🌇"
            assert tags["XMP:DateTimeOriginal"] == "2024:05:02 19:44:10+02:00"
            assert tags["XMP:CreateDate"] == tags["XMP:DateCreated"] == "2024:05:02 19:44:10+02:00"
            assert tags["XMP:Subject"] == ["Best of", "Roma", "Travel"]
            assert tags["XMP:HierarchicalSubject"] == ["Best of", "Travel|Roma"]
            assert tags["XMP:TagsList"] == ["Best of", "Travel/Roma"]
        plain_tags = read["data/Best of/plain.jpg.xmp"]
        assert plain_tags["XMP:Subject"] == "Best of"  # exiftool gives one keyword as a string
        assert "XMP:Title" not in plain_tags and "XMP:DateTimeOriginal" not in plain_tags
        # The sidecar of each album folder is the same file, stored once.
        document = manifest_of(folder)
        entry = next(f for f in document["files"] if f["item"] == str(photo.public_id))
        assert [entry["sidecar"], *entry["sidecar_links"]] == [sidecars[0], sidecars[2]]
    assert str(plain.public_id) in manifest_of(folder)["catalog"]
    assert build.image_path(disc).exists()


def test_exiftool_reads_a_hostile_caption_back(alice, tmp_path):
    exiftool = require_tool("exiftool", "libimage-exiftool-perl")
    add_file(alice, "hostile.jpg", b"x", caption=HOSTILE_CAPTION, title="<script>&amp;")
    folder = extract_both(next_disc(alice), tmp_path)["7z"]
    out = subprocess.run([exiftool, "-j", "data/hostile.jpg.xmp"], cwd=folder, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    [tags] = json.loads(out.stdout)
    assert tags["Title"] == "<script>&amp;"
    # exiftool prints newlines as they are; nothing else is lost but what XML cannot hold.
    assert tags["Description"] == CARRIED_CAPTION
