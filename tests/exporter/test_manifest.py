"""manifest.json, schema v1 (docs/disc-layout.md): files, changes, held back
items and the running catalog of the series."""

import hashlib
import io
import json
import os

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exporter import build, contents, deletion, iso, library, manifest
from exporter.models import DiscEntry
from exporter.planning import plan_next_disc
from tests.exporter.extracted import extract_7z, manifest_of, next_disc
from tests.factories import add_file, add_sized, jpeg_bytes

pytestmark = pytest.mark.django_db

FILE_KEYS = {
    "item", "version", "change", "previous_disc", "path", "links", "sidecar", "sidecar_links", "thumbnail",
    "original_name", "albums", "size", "sha256", "content_type", "title", "caption", "captured_at", "uploaded_at",
}  # fmt: skip
DISC_KEYS = {
    "number", "series", "subscriber", "medium", "planned_at", "volume_id", "layout_version",
    "first_change", "last_change", "captured",
}  # fmt: skip


def document_of(disc) -> dict:
    entries = list(DiscEntry.objects.filter(disc=disc).select_related("version"))
    listing = next(f for f in contents.disc_files(disc, entries) if f.path == manifest.MANIFEST_JSON)
    with listing.open() as fh:
        return json.loads(fh.read())


def by_item(records):
    return {r["item"]: r for r in records}


def uid(item) -> str:
    return str(item.public_id)


def test_the_manifest_has_every_field(alice, tmp_path):
    alice.first_name, alice.last_name = "Alice", "Liddell"
    alice.save()
    roma = library.ensure_album_path(alice, ["Travel", "Roma"])
    best = library.ensure_album_path(alice, ["Best of"])
    photo = add_file(
        alice,
        "IMG_0001.JPG",
        jpeg_bytes(exif_date="2024:05:02 19:44:10", offset="+02:00"),
        albums=[roma, best],
        caption="Colosseum at dusk",
        title="Roma",
    )
    later = add_file(alice, "IMG_0002.JPG", jpeg_bytes(exif_date="2024:06:01 08:00:00"), albums=[roma])
    disc = next_disc(alice)
    folder = extract_7z(build.image_path(disc), tmp_path / "x")
    document = manifest_of(folder)
    assert set(document) == {"schema", "schema_version", "disc", "files", "changes", "held_back", "catalog"}
    assert (document["schema"], document["schema_version"]) == ("discsub-manifest", 1)
    described = document["disc"]
    assert set(described) == DISC_KEYS
    assert described["number"] == 1 and described["series"] == f"discsub-{alice.pk}"
    assert described["subscriber"] == "Alice Liddell"
    assert described["volume_id"] == disc.volume_id
    assert (described["first_change"], described["last_change"]) == (disc.first_seq, disc.last_seq) == (1, 2)
    assert described["captured"] == {"first": "2024-05-02T19:44:10+02:00", "last": "2024-06-01T08:00:00+00:00"}
    files = by_item(document["files"])
    assert all(set(f) == FILE_KEYS for f in files.values())
    one = files[uid(photo)]
    assert one["path"] == "data/Best of/IMG_0001.JPG"
    assert one["links"] == ["data/Travel/Roma/IMG_0001.JPG"]
    assert one["sidecar"] == "data/Best of/IMG_0001.JPG.xmp"
    assert one["sidecar_links"] == ["data/Travel/Roma/IMG_0001.JPG.xmp"]
    assert one["albums"] == [["Best of"], ["Travel", "Roma"]]
    assert (one["change"], one["previous_disc"], one["version"]) == ("added", None, 1)
    assert one["sha256"] == photo.current_version.sha256 and one["size"] == photo.current_version.size
    assert (one["title"], one["caption"], one["content_type"]) == ("Roma", "Colosseum at dusk", "image/jpeg")
    assert one["captured_at"] == "2024-05-02T19:44:10+02:00"
    # Named only when the offline index put the thumbnail on the disc.
    thumbnail = manifest.thumbnail_path(uid(photo), 1)
    assert one["thumbnail"] == (thumbnail if (folder / thumbnail).is_file() else None)
    assert document["changes"] == {
        "added": sorted([uid(photo), uid(later)]),
        "new_version": [],
        "edited": [],
        "deleted": [],
    }
    assert document["held_back"] == []
    assert document["catalog"][uid(photo)] == {
        "disc": 1, "version": 1, "path": one["path"], "original_name": "IMG_0001.JPG",
        "albums": [["Best of"], ["Travel", "Roma"]], "deleted": False,
    }  # fmt: skip


def test_the_catalog_follows_the_series_and_the_newest_disc_alone_tells_where_everything_is(alice, tmp_path):
    x = library.ensure_album_path(alice, ["X"])
    y = library.ensure_album_path(alice, ["Y"])
    a = add_file(alice, "a.jpg", b"a1", albums=[x])
    b = add_file(alice, "b.jpg", b"b1", albums=[x])
    c = add_file(alice, "c.jpg", b"c1", albums=[x])
    d = add_file(alice, "d.jpg", b"d1", albums=[x])
    disc1 = next_disc(alice)
    # Disc 2: a new version, a caption edit, a move, an addition.
    library.replace_bytes(a, io.BytesIO(b"a2"))
    library.edit_metadata(b, caption="new caption")
    library.move_item(c, [y])
    e = add_file(alice, "e.jpg", b"e1", albums=[y])
    disc2 = next_disc(alice)
    # Disc 3: a deletion, an edit of bytes carried by disc 2, an addition.
    deletion.delete_now(d)
    library.edit_metadata(a, title="A, second version")
    f = add_file(alice, "f.jpg", b"f1")
    disc3 = next_disc(alice)

    second = manifest_of(extract_7z(build.image_path(disc2), tmp_path / "two"))
    assert second["changes"]["added"] == [uid(e)]
    assert second["changes"]["new_version"] == [
        {"item": uid(a), "version": 2, "previous_disc": 1, "previous_version": 1}
    ]
    edited = by_item(second["changes"]["edited"])
    assert set(edited) == {uid(b), uid(c)}
    assert edited[uid(b)]["caption"] == "new caption" and edited[uid(b)]["disc"] == 1
    assert edited[uid(c)]["albums"] == [["Y"]] and edited[uid(c)]["sidecar"] == "data/Y/c.jpg.xmp"
    assert by_item(second["files"])[uid(a)]["change"] == "new_version"
    assert by_item(second["files"])[uid(a)]["previous_disc"] == 1

    third = manifest_of(extract_7z(build.image_path(disc3), tmp_path / "three"))
    assert third["changes"]["deleted"] == [{"item": uid(d), "original_name": "d.jpg", "last_disc": 1, "version": 1}]
    assert [(r["item"], r["disc"]) for r in third["changes"]["edited"]] == [(uid(a), 2)]
    assert third["changes"]["added"] == [uid(f)]
    catalog = third["catalog"]
    assert list(catalog) == sorted(catalog)
    where = {item: (r["disc"], r["version"], r["path"], r["albums"], r["deleted"]) for item, r in catalog.items()}
    assert where == {
        uid(a): (2, 2, "data/X/a.jpg", [["X"]], False),
        uid(b): (1, 1, "data/X/b.jpg", [["X"]], False),
        # Moved: its bytes stay at the old path on disc 1; it now belongs in Y.
        uid(c): (1, 1, "data/X/c.jpg", [["Y"]], False),
        uid(d): (1, 1, "data/X/d.jpg", [["X"]], True),
        uid(e): (2, 1, "data/Y/e.jpg", [["Y"]], False),
        uid(f): (3, 1, "data/f.jpg", [], False),
    }
    # The catalog of each disc is as of that disc: disc 1 knows nothing of e.
    assert uid(e) not in document_of(disc1)["catalog"]
    assert document_of(disc3) == third  # what is rebuilt is what was burned


def test_a_metadata_only_edit_ships_the_sidecar_without_the_bytes(alice, tmp_path):
    album = library.ensure_album_path(alice, ["Trips"])
    item = add_file(alice, "IMG_1.jpg", jpeg_bytes(), albums=[album])
    next_disc(alice)
    library.edit_metadata(item, caption="Better caption")
    disc = next_disc(alice)
    folder = extract_7z(build.image_path(disc), tmp_path / "x")
    assert not (folder / "data" / "Trips" / "IMG_1.jpg").exists()
    sidecar = folder / "data" / "Trips" / "IMG_1.jpg.xmp"
    assert "Better caption" in sidecar.read_text("utf-8")
    document = manifest_of(folder)
    assert document["files"] == []
    assert document["changes"]["edited"][0]["sidecar"] == "data/Trips/IMG_1.jpg.xmp"
    assert (folder / "manifest-sha256.txt").read_text("utf-8").splitlines() == [
        f"{hashlib.sha256(sidecar.read_bytes()).hexdigest()}  data/Trips/IMG_1.jpg.xmp"
    ]


def test_held_back_items_are_listed_and_left_out_of_files_and_catalog(alice):
    good = add_file(alice, "good.jpg", b"good")
    bad = add_file(alice, "bad.jpg", b"bad")
    planned = plan_next_disc(alice, allow_partial=True)
    with default_storage.open(bad.current_version.storage_name, "wb") as fh:
        fh.write(b"rotten")
    disc = build.build_disc(planned.pk)
    document = document_of(disc)
    assert [f["item"] for f in document["files"]] == [uid(good)]
    assert list(document["catalog"]) == [uid(good)]
    [held] = document["held_back"]
    assert held["item"] == uid(bad) and held["original_name"] == "bad.jpg" and "checksum" in held["reason"]


def test_planning_and_building_give_the_same_bytes(alice, monkeypatch):
    """The planner measures an unsaved disc; the builder writes the saved one."""
    album = library.ensure_album_path(alice, ["Été"])
    items = [add_file(alice, f"IMG_{n}.jpg", jpeg_bytes(color=(n, 0, 0)), albums=[album]) for n in range(3)]
    next_disc(alice)
    library.edit_metadata(items[0], caption="edited")
    deletion.delete_now(items[1])
    add_file(alice, "new.jpg", b"new")
    measured = []
    real = iso.measure_sectors
    monkeypatch.setattr(iso, "measure_sectors", lambda files, vid: measured.append(files) or real(files, vid))
    disc = plan_next_disc(alice, allow_partial=True)
    entries = list(DiscEntry.objects.filter(disc=disc).select_related("version"))
    built = {f.path: (f.links, f.size, f.sha256) for f in contents.disc_files(disc, entries)}
    assert {f.path: (f.links, f.size, f.sha256) for f in measured[-1]} == built


def test_the_catalog_is_one_query_however_long_the_series(alice):
    def queries_for_next_disc(count):
        for n in range(count):
            add_sized(alice, 1000, name=f"{count}-{n}.bin")
        disc = plan_next_disc(alice, allow_partial=True)
        entries = list(DiscEntry.objects.filter(disc=disc))
        with CaptureQueriesContext(connection) as captured:
            manifest.describe(disc, entries, {}, set())
        return len(captured)

    few = queries_for_next_disc(3)
    many = queries_for_next_disc(60)
    assert few == many <= 2  # the discs before (one query) and the owner's name


def test_the_catalog_costs_under_200_bytes_an_item(alice):
    albums = [library.ensure_album_path(alice, ["Travel", f"Trip {n}"]) for n in range(10)]
    for n in range(300):
        add_sized(alice, 1000, name=f"IMG_{n:04d}.JPG", albums=[albums[n % 10]])
    disc = plan_next_disc(alice, allow_partial=True)
    document = manifest.describe(disc, list(DiscEntry.objects.filter(disc=disc)), {}, set())
    text = manifest.manifest_json(document).decode("utf-8")
    start, end = text.index('"catalog"'), text.index('"changes"')
    per_item = len(text[start:end].encode("utf-8")) / 300
    # data/Travel/Trip 7/IMG_0007.JPG in one album: about 180 bytes.
    assert per_item < 200, per_item


def test_the_catalog_of_a_million_item_library_is_one_restore_py_and_verify_disc_read():
    # Every disc carries the catalog of the whole series; an item in three
    # albums with camera names is a plain record, and a library of 1,000,000
    # of them must give a manifest.json the disc's own tools read.
    from exporter import verify
    from exporter.disc_tools import restore

    albums = [["Holidays 2019", "Italy"], ["Best of 2019"], ["Family", "Grandparents"]]
    place = manifest.Place("1b4e28ba-2fa1-11d2-883f-0016d3cca427", 123, 1, None, "IMG_20190714_183005.jpg", albums)
    place.path = "data/Holidays 2019/Italy/IMG_20190714_183005.jpg"
    document = {"catalog": {place.item: place.as_catalog()}}
    line = len(manifest._dumps(document).splitlines()[2]) + 1
    catalog = line * 1_000_000
    assert catalog < restore.SMALL_LIMIT
    # verify_disc reads as much as restore.py does (it read at most 64 MiB).
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        assert verify._read_small(fd, ((0, catalog),)) == b""
    finally:
        os.close(fd)
