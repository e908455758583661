import datetime as dt
import hashlib
import io

import pytest
from django.core.files.storage import default_storage

from exporter import deletion, library
from exporter.models import Change, ChangeKind
from tests.factories import add_file, jpeg_bytes

pytestmark = pytest.mark.django_db


def test_it_stores_bytes_and_their_sha256(alice):
    data = jpeg_bytes(exif_date="2023:07:14 18:30:05", offset="+02:00")
    item = add_file(alice, "Été à Nice.jpg", data, caption="Beach")
    version = item.current_version
    assert version.sha256 == hashlib.sha256(data).hexdigest()
    assert version.size == len(data)
    assert version.content_type == "image/jpeg"
    assert item.original_name == "Été à Nice.jpg"
    with default_storage.open(version.storage_name) as fh:
        assert fh.read() == data
    # The name never reaches the storage key.
    assert "Nice" not in version.storage_name


def test_it_reads_the_exif_capture_date_with_its_offset(alice):
    item = add_file(alice, "a.jpg", jpeg_bytes(exif_date="2023:07:14 18:30:05", offset="+02:00"))
    assert item.captured_at == dt.datetime(2023, 7, 14, 16, 30, 5, tzinfo=dt.UTC)
    assert item.captured_offset_minutes == 120


@pytest.mark.parametrize("data", [b"", jpeg_bytes()[:100], b"not an image at all"])
def test_unreadable_or_empty_files_still_import_without_a_date(alice, data):
    item = add_file(alice, "broken.jpg", data)
    assert item.captured_at is None
    assert item.current_version.size == len(data)


def test_every_change_gets_the_next_sequence_number(alice, bob):
    album = library.ensure_album_path(alice, ["Trips", "Rome"])
    item = add_file(alice, "a.jpg")
    add_file(bob, "b.jpg")
    library.replace_bytes(item, io.BytesIO(b"new bytes"))
    library.edit_metadata(item, caption="Hello")
    library.move_item(item, [album])
    deletion.trash_item(item)
    deletion.restore_item(item)
    deletion.delete_now(item)
    changes = list(Change.objects.filter(owner=alice).order_by("seq"))
    assert [c.seq for c in changes] == list(range(1, 8))
    assert [c.kind for c in changes] == [
        ChangeKind.ADDED,
        ChangeKind.NEW_VERSION,
        ChangeKind.EDITED,
        ChangeKind.MOVED,
        ChangeKind.TRASHED,
        ChangeKind.RESTORED,
        ChangeKind.DELETED,
    ]
    assert list(Change.objects.filter(owner=bob).values_list("seq", flat=True)) == [1]


def test_a_new_version_keeps_the_old_bytes(alice):
    item = add_file(alice, "a.jpg", b"first")
    old = item.current_version
    new = library.replace_bytes(item, io.BytesIO(b"second"))
    assert (old.number, new.number) == (1, 2)
    with default_storage.open(old.storage_name) as fh:
        assert fh.read() == b"first"
    item.refresh_from_db()
    assert item.current_version == new


def test_an_edit_that_changes_nothing_records_nothing(alice):
    item = add_file(alice, "a.jpg", caption="Same")
    library.edit_metadata(item, caption="Same")
    assert Change.objects.filter(owner=alice).count() == 1


def test_nested_albums_are_created_once(alice):
    first = library.ensure_album_path(alice, ["A", "B", "C"])
    second = library.ensure_album_path(alice, ["A", "B", "C"])
    assert first == second
    assert first.path() == ["A", "B", "C"]


def test_items_cannot_go_into_another_subscribers_album(alice, bob):
    item = add_file(alice, "a.jpg")
    bobs = library.ensure_album_path(bob, ["Bob's"])
    with pytest.raises(library.LibraryError):
        library.move_item(item, [bobs])
    assert not item.albums.exists()


# --- the bounds every disc's restore.py checks manifest.json against -----------------


def test_albums_nest_at_most_as_deep_as_the_restore_tool_reads(alice):
    from exporter.disc_tools.restore import MAX_ALBUM_DEPTH

    deepest = library.ensure_album_path(alice, [f"level {n}" for n in range(MAX_ALBUM_DEPTH)])
    assert len(deepest.path()) == MAX_ALBUM_DEPTH
    with pytest.raises(library.LibraryError, match=f"nested at most {MAX_ALBUM_DEPTH} deep"):
        library.ensure_album_path(alice, [f"level {n}" for n in range(MAX_ALBUM_DEPTH + 1)])


def test_an_item_goes_into_no_album_deeper_than_the_restore_tool_reads(alice):
    from exporter.disc_tools.restore import MAX_ALBUM_DEPTH
    from exporter.models import Album

    # An album made deeper some other way (an older release, the admin) is still refused.
    parent = None
    for n in range(MAX_ALBUM_DEPTH + 1):
        parent = Album.objects.create(owner=alice, parent=parent, name=f"level {n}")
    item = add_file(alice, "a.jpg", jpeg_bytes())
    with pytest.raises(library.LibraryError, match="nested at most"):
        library.move_item(item, [parent])
    with pytest.raises(library.LibraryError, match="nested at most"):
        library.add_item(alice, io.BytesIO(jpeg_bytes()), "b.jpg", albums=[parent])
    assert list(item.albums.all()) == []


def test_an_item_is_in_at_most_as_many_albums_as_the_restore_tool_reads(alice):
    from exporter.disc_tools.restore import MAX_ALBUMS
    from exporter.models import Album

    albums = Album.objects.bulk_create(Album(owner=alice, name=f"album {n}") for n in range(MAX_ALBUMS + 1))
    item = add_file(alice, "a.jpg", jpeg_bytes())
    library.move_item(item, albums[:MAX_ALBUMS])
    assert item.albums.count() == MAX_ALBUMS
    with pytest.raises(library.LibraryError, match=f"at most {MAX_ALBUMS} albums"):
        library.move_item(item, albums)
    with pytest.raises(library.LibraryError, match=f"at most {MAX_ALBUMS} albums"):
        library.add_item(alice, io.BytesIO(jpeg_bytes()), "b.jpg", albums=albums)
    assert item.albums.count() == MAX_ALBUMS


def test_a_caption_or_title_is_at_most_as_long_as_the_restore_tool_reads(alice):
    from exporter.disc_tools.restore import MAX_TEXT

    item = add_file(alice, "a.jpg", jpeg_bytes())
    with pytest.raises(library.LibraryError, match="caption can be at most"):
        library.edit_metadata(item, caption="x" * (MAX_TEXT + 1))
    with pytest.raises(library.LibraryError, match="caption can be at most"):
        library.add_item(alice, io.BytesIO(jpeg_bytes()), "b.jpg", caption="x" * (MAX_TEXT + 1))
    item.refresh_from_db()
    assert item.caption == ""


def test_a_file_name_is_at_most_as_long_as_the_restore_tool_reads(alice):
    from exporter.disc_tools.restore import MAX_NAME

    with pytest.raises(library.LibraryError, match="file name can be at most"):
        library.add_item(alice, io.BytesIO(jpeg_bytes()), "x" * MAX_NAME + ".jpg")
    item = add_file(alice, "a.jpg", jpeg_bytes())
    with pytest.raises(library.LibraryError, match="file name can be at most"):
        library.replace_bytes(item, io.BytesIO(jpeg_bytes()), "x" * MAX_NAME + ".jpg")
