import pytest
from django.core.cache import cache

from exporter import build, deletion, library
from tests.factories import add_file, jpeg_bytes, verified_disc, walk_copy


@pytest.fixture(autouse=True)
def portal_settings(settings, data_dir):
    """Uploads spill to the test's data folder; sign-in counts start at zero
    (the cache may be a shared Redis database on the PostgreSQL run)."""
    settings.FILE_UPLOAD_TEMP_DIR = str(data_dir / "uploads")
    cache.clear()
    yield
    cache.clear()


def ship_copy(disc, staff, tracking="AB123456789GB"):
    """The disc's first copy through burn, read-back, label and ship."""
    return walk_copy(disc.copies.get(), "shipped", staff, tracking=tracking)


IMAGE_BYTES = bytes(range(256)) * 40  # 10 KiB whose every offset is recognisable


@pytest.fixture
def world(alice, sam):
    """Alice's things: an album, a photo in it, a trashed photo, and disc 1
    (verified, its image on disk, its copy shipped)."""
    album = library.ensure_album_path(alice, ["Holidays"])
    item = add_file(alice, "beach.jpg", jpeg_bytes(), albums=[album], caption="Dunes at dusk")
    trashed = deletion.trash_item(add_file(alice, "blurry.jpg", jpeg_bytes(color=(1, 2, 3))))
    disc = verified_disc(alice)
    path = build.image_path(disc)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(IMAGE_BYTES)
    disc.image_size = len(IMAGE_BYTES)
    disc.save(update_fields=["image_size"])
    copy = ship_copy(disc, sam)
    return {"album": album, "item": item, "trashed": trashed, "disc": disc, "copy": copy}
