"""Thumbnails: upright, small, clean, made once, and never a danger."""

import errno
import io
import os
import time

import pytest
from django.core.files.storage import FileSystemStorage, default_storage
from django.core.management import call_command
from PIL import Image

from exporter import library, tasks, thumbnails
from exporter.models import DiscEntry
from exporter.planning import plan_next_disc
from tests.exporter.test_scheduling import queued_tasks
from tests.factories import add_file, jpeg_bytes
from tests.hostile_images import blank_png, photo_with_mistyped_exif, png_header

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def forget_known_thumbnails():
    # The process-wide memo would hide what storage holds between tests.
    thumbnails._known.clear()
    yield
    thumbnails._known.clear()


def oriented_jpeg(width: int, height: int, orientation: int) -> bytes:
    img = Image.new("RGB", (width, height), (30, 120, 200))
    img.paste((250, 250, 250), (0, 0, width // 4, height // 4))
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Secret Camera Co."
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, comment=b"where I live")
    return out.getvalue()


def thumbnail_of(owner, name: str, data: bytes, **kwargs):
    item = add_file(owner, name, data, **kwargs)
    return thumbnails.ensure_for_version(item.current_version), item


def stored_image(thumb) -> Image.Image:
    with default_storage.open(thumb.storage_name, "rb") as fh:
        img = Image.open(io.BytesIO(fh.read()))
        img.load()
    return img


def test_exif_orientation_is_applied(alice):
    # Stored 160 wide and 80 high, orientation 6: the camera was turned, the
    # photo is upright when rotated 90° clockwise, so it is portrait.
    thumb, _ = thumbnail_of(alice, "turned.jpg", oriented_jpeg(160, 80, 6))
    img = stored_image(thumb)
    assert img.size == (80, 160)
    # The white corner, top-left in the stored pixels, ends up top-right.
    assert min(img.getpixel((img.width - 5, 5))) > 220
    assert max(img.getpixel((5, 5))[:2]) < 160


def test_a_thumbnail_is_small_clean_and_the_same_bytes_every_time(alice):
    data = oriented_jpeg(3000, 2000, 1)
    thumb, _ = thumbnail_of(alice, "big.jpg", data)
    img = stored_image(thumb)
    assert max(img.size) == thumbnails.BOX and img.size == (400, 267)
    assert img.format == "JPEG" and img.mode == "RGB"
    # No metadata of the original reaches the disc.
    assert not img.getexif() and "comment" not in img.info and "icc_profile" not in img.info
    assert thumbnails.render_thumbnail(io.BytesIO(data)) == thumbnails.render_thumbnail(io.BytesIO(data))
    assert thumb.size == len(thumbnails.render_thumbnail(io.BytesIO(data)))


def test_a_thumbnail_is_made_once_and_kept(alice, monkeypatch):
    item = add_file(alice, "once.jpg", jpeg_bytes(300, 200))
    version = item.current_version
    renders = []
    real_render = thumbnails.render_original
    monkeypatch.setattr(thumbnails, "render_original", lambda name: renders.append(1) or real_render(name))

    first = thumbnails.ensure_for_version(version)
    stored = default_storage.path(first.storage_name)
    mtime = os.stat(stored).st_mtime_ns
    thumbnails._known.clear()  # as another process would: only storage to go by
    second = thumbnails.ensure_for_version(version)

    assert first == second
    assert len(renders) == 1
    assert os.stat(stored).st_mtime_ns == mtime
    assert sorted(os.listdir(os.path.dirname(stored))) == ["v1.jpg"]


def test_each_version_has_its_own_thumbnail(alice):
    item = add_file(alice, "v.jpg", jpeg_bytes(300, 200, color=(255, 0, 0)))
    first = thumbnails.ensure_for_version(item.current_version)
    library.replace_bytes(item, io.BytesIO(jpeg_bytes(200, 300, color=(0, 0, 255))))
    item.refresh_from_db()
    second = thumbnails.ensure_for_version(item.current_version)
    assert first.storage_name.endswith("/v1.jpg") and second.storage_name.endswith("/v2.jpg")
    # Never enlarged; the second version is a different picture.
    assert stored_image(first).size == (300, 200) and stored_image(second).size == (200, 300)


@pytest.mark.parametrize(
    "name, data",
    [
        ("empty.jpg", b""),
        ("truncated.jpg", oriented_jpeg(400, 300, 1)[:700]),
        ("noise.jpg", os.urandom(5000)),
        ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + os.urandom(4000)),
        ("notes.txt", b"hello"),
    ],
)
def test_what_pillow_cannot_read_gets_the_placeholder(alice, name, data):
    thumb, item = thumbnail_of(alice, name, data)
    assert thumb is None
    marker = thumbnails.marker_name_for(str(item.public_id), 1)
    assert default_storage.exists(marker)
    assert not default_storage.exists(thumbnails.storage_name_for(str(item.public_id), 1))
    # The decision is kept: asked again, from storage alone, it is the same.
    thumbnails._known.clear()
    assert thumbnails.ensure_for_version(item.current_version) is None


def test_a_video_is_never_read(alice, monkeypatch):
    item = add_file(alice, "holiday.mov", b"\x00" * 100_000, content_type="video/quicktime")
    monkeypatch.setattr(FileSystemStorage, "open", lambda *a, **k: pytest.fail("a video was read"))
    assert thumbnails.ensure_for_version(item.current_version) is None


@pytest.mark.adversarial
def test_a_decompression_bomb_is_refused_without_decoding_it(alice):
    started = time.perf_counter()
    # 10 billion pixels claimed: Pillow's own check refuses it at open().
    bomb, item = thumbnail_of(alice, "bomb.png", png_header(100_000, 100_000))
    # 81 million pixels: under Pillow's hard limit, over the decode budget.
    big, _ = thumbnail_of(alice, "big.png", png_header(9_000, 9_000))
    assert bomb is None and big is None
    assert time.perf_counter() - started < 5
    with default_storage.open(thumbnails.marker_name_for(str(item.public_id), 1)) as fh:
        assert b"decompression bomb" in fh.read()


def test_a_huge_jpeg_is_decoded_at_reduced_size(alice, settings):
    # draft() decodes 4000x3000 at 1/4 scale: 1000x750 pixels (3 MB) fit a
    # budget that the full image (12 MP, 46 MB) would not.
    settings.DISCSUB_THUMBNAIL_MAX_DECODE_MB = 4
    thumb, _ = thumbnail_of(alice, "huge.jpg", jpeg_bytes(4000, 3000))
    assert thumb is not None and stored_image(thumb).size == (400, 300)
    png = io.BytesIO()
    Image.new("RGB", (4000, 3000)).save(png, "PNG")
    assert thumbnail_of(alice, "huge.png", png.getvalue())[0] is None


def test_transparency_and_16_bit_images_come_out_as_rgb(alice):
    rgba, grey16 = io.BytesIO(), io.BytesIO()
    Image.new("RGBA", (60, 40), (255, 0, 0, 0)).save(rgba, "PNG")
    Image.new("I;16", (60, 40), 40_000).save(grey16, "PNG")
    clear = stored_image(thumbnail_of(alice, "clear.png", rgba.getvalue())[0])
    grey = stored_image(thumbnail_of(alice, "grey.png", grey16.getvalue())[0])
    assert clear.getpixel((30, 20)) == (255, 255, 255)  # transparent on white, not black
    assert 140 < grey.getpixel((30, 20))[0] < 170  # 40000 / 65535 of white


def test_a_missing_original_gets_the_placeholder(alice):
    item = add_file(alice, "gone.jpg", jpeg_bytes())
    default_storage.delete(item.current_version.storage_name)
    assert thumbnails.ensure_for_version(item.current_version) is None


def test_a_storage_failure_decides_nothing(alice, monkeypatch):
    item = add_file(alice, "later.jpg", jpeg_bytes())

    def down(*args, **kwargs):
        raise ConnectionError("storage is down")

    monkeypatch.setattr(FileSystemStorage, "open", down)
    with pytest.raises(ConnectionError):
        thumbnails.ensure_for_version(item.current_version)
    monkeypatch.undo()
    assert not default_storage.exists(thumbnails.marker_name_for(str(item.public_id), 1))
    assert thumbnails.ensure_for_version(item.current_version) is not None


@pytest.fixture
def task_queue():
    """The short-jobs queue of the configured broker, empty before and after."""
    from django_q.brokers import get_broker

    broker = get_broker()
    broker.purge_queue()
    yield broker
    broker.purge_queue()


def test_an_upload_queues_its_thumbnail_for_a_worker(alice, task_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        item = add_file(alice, "fresh.jpg", jpeg_bytes())
        library.replace_bytes(item, io.BytesIO(jpeg_bytes(color=(1, 2, 3))))
    names = [thumbnails.storage_name_for(str(item.public_id), n) for n in (1, 2)]
    # Nothing was decoded where the upload ran: a worker does it.
    assert not any(default_storage.exists(name) for name in names)
    queued = sorted((t["func"], t["args"]) for t in queued_tasks(task_queue))
    assert queued == [("exporter.tasks.make_thumbnail", (v.pk,)) for v in item.versions.order_by("number")]
    for _, args in queued:
        assert tasks.make_thumbnail(*args) is True
    assert all(default_storage.exists(name) for name in names)


def test_a_thumbnail_failure_never_blocks_an_upload(alice, monkeypatch, django_capture_on_commit_callbacks):
    def broken(*args, **kwargs):
        raise RuntimeError("Pillow exploded")

    monkeypatch.setattr(thumbnails, "render_original", broken)
    monkeypatch.setattr("django_q.tasks.async_task", broken)  # the broker is down too
    with django_capture_on_commit_callbacks(execute=True):
        item = add_file(alice, "fine.jpg", jpeg_bytes())
    assert item.pk and item.current_version.size > 0
    # Nothing was decided: the next try makes it.
    monkeypatch.undo()
    thumbnails._known.clear()
    assert thumbnails.ensure_for_version(item.current_version) is not None


def test_the_planner_measures_the_stored_thumbnails(alice):
    photo = add_file(alice, "photo.jpg", jpeg_bytes(800, 600))
    add_file(alice, "clip.mp4", b"\x00" * 3000)
    disc = plan_next_disc(alice, allow_partial=True)
    entries = list(DiscEntry.objects.filter(disc=disc).select_related("version"))
    files = {f.path: f for f in thumbnails.disc_files(entries)}
    # The placeholder, shared, and one thumbnail: the video has none.
    thumb_path = f"index/thumbs/{photo.public_id}-v1.jpg"
    assert sorted(files) == [thumbnails.PLACEHOLDER_PATH, thumb_path]
    stored = thumbnails.ensure_for_version(photo.current_version)
    assert (files[thumb_path].size, files[thumb_path].sha256) == (stored.size, stored.sha256)
    with files[thumb_path].open() as fh:
        assert len(fh.read()) == stored.size


def test_make_thumbnails_makes_what_is_missing(alice, bob, capsys):
    add_file(alice, "a.jpg", jpeg_bytes())
    add_file(alice, "b.mp4", b"\x00" * 100)
    other = add_file(bob, "c.jpg", jpeg_bytes())
    call_command("make_thumbnails", "--user", "alice")
    assert "1 thumbnails, 1 placeholders" in capsys.readouterr().out
    assert not default_storage.exists(thumbnails.storage_name_for(str(other.public_id), 1))
    call_command("make_thumbnails")
    assert "2 thumbnails, 1 placeholders" in capsys.readouterr().out
    assert default_storage.exists(thumbnails.storage_name_for(str(other.public_id), 1))


@pytest.mark.adversarial
@pytest.mark.parametrize("fmt, name", [("JPEG", "fuzzed.jpg"), ("WEBP", "fuzzed.webp")])
def test_a_photo_whose_exif_has_a_mistyped_tag_still_gets_its_thumbnail_and_its_disc(alice, fmt, name):
    # Pillow's exif_transpose raises struct.error on these (issue 12): the
    # orientation is read on its own, and the broken tag goes nowhere.
    data = photo_with_mistyped_exif(fmt, 48, 32)
    fuzzed = add_file(alice, name, data)
    good = add_file(alice, "good.jpg", jpeg_bytes(300, 200))
    thumb = thumbnails.ensure_for_version(fuzzed.current_version)
    assert stored_image(thumb).size == (32, 48)  # orientation 6 applied: portrait
    disc = plan_next_disc(alice, allow_partial=True)
    carried = set(DiscEntry.objects.filter(disc=disc, held_back=False).values_list("item_id", flat=True))
    assert {fuzzed.pk, good.pk} <= carried


@pytest.mark.adversarial
def test_the_decode_budget_counts_the_bytes_of_each_pixel(alice, settings):
    settings.DISCSUB_THUMBNAIL_MAX_DECODE_MB = 8
    # 1500x1500: 2.1 MB in greyscale, 8.6 MB in RGBA (4 bytes a pixel).
    grey, _ = thumbnail_of(alice, "grey.png", blank_png(1500, 1500, "L"))
    rgba, item = thumbnail_of(alice, "rgba.png", blank_png(1500, 1500, "RGBA"))
    assert grey is not None and rgba is None
    with default_storage.open(thumbnails.marker_name_for(str(item.public_id), 1)) as fh:
        assert fh.read().decode() == (
            "1500×1500 pixels in RGBA take 9 MB to decode, more than the 8 MB a thumbnail may use"
        )


@pytest.mark.adversarial
def test_an_image_with_alpha_is_shrunk_without_a_full_size_copy(alice):
    # 7700x7700 RGBA from 230 KB of PNG: within the default budget, decoded
    # once (237 MB) and reduced in bands; the decoder child's peak stays
    # near that, where Pillow's own thumbnail() makes a premultiplied copy.
    thumb, _ = thumbnail_of(alice, "wide.png", blank_png(7700, 7700))
    assert stored_image(thumb).size == (400, 400)
    peak_kb = _decoder_peak_kb()
    assert peak_kb < (237 + 120) * 1024, f"the decoder peaked at {peak_kb // 1024} MB"


def _decoder_peak_kb() -> int:
    with open(f"/proc/{thumbnails.decoder()._proc.pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))


@pytest.mark.adversarial
def test_the_decoder_has_a_memory_ceiling_and_survives_it(alice, settings):
    settings.DISCSUB_THUMBNAIL_MAX_DECODE_MB = 10_000  # the budget out of the way
    settings.DISCSUB_THUMBNAIL_MEMORY_MB = 48
    big, item = thumbnail_of(alice, "big.png", blank_png(4000, 4000))  # 61 MB of pixels
    assert big is None
    with default_storage.open(thumbnails.marker_name_for(str(item.public_id), 1)) as fh:
        assert "memory" in fh.read().decode()
    small, _ = thumbnail_of(alice, "small.jpg", jpeg_bytes(300, 200))
    assert small is not None


@pytest.mark.adversarial
def test_a_decode_that_takes_too_long_is_cut_off_and_tried_again_later_not_given_a_placeholder(alice, settings):
    settings.DISCSUB_THUMBNAIL_SECONDS = 0.001
    slow = add_file(alice, "slow.png", blank_png(5000, 5000))  # about a second to inflate
    photo = add_file(alice, "photo.jpg", jpeg_bytes(2000, 1500))  # a normal photo, a very short limit
    for item in (slow, photo):
        with pytest.raises(thumbnails.DecoderFailed, match="longer than 0.001 s, twice"):
            thumbnails.ensure_for_version(item.current_version)
        # No verdict on the bytes: no marker, so a later try decides.
        assert not default_storage.exists(thumbnails.marker_name_for(str(item.public_id), 1))
    settings.DISCSUB_THUMBNAIL_SECONDS = 30
    assert stored_image(thumbnails.ensure_for_version(photo.current_version)).size == (400, 300)
    assert thumbnail_of(alice, "quick.jpg", jpeg_bytes(300, 200))[0] is not None


def test_the_decoders_start_up_is_not_counted_against_the_first_image(alice, settings):
    thumbnails.decoder().stop()  # the next image starts a fresh child
    settings.DISCSUB_THUMBNAIL_SECONDS = 0.05  # less than starting Python and importing Pillow takes
    thumb, _ = thumbnail_of(alice, "first.jpg", jpeg_bytes())
    assert thumb is not None


def test_a_read_error_in_the_decoder_child_is_a_storage_error_not_a_placeholder(alice):
    item = add_file(alice, "eio.jpg", jpeg_bytes())
    path = default_storage.path(item.current_version.storage_name)
    os.unlink(path)
    # A file whose every read fails with EIO, as a failing disk's would (the
    # child opens the stored file itself and reads its own /proc/self/mem at 0).
    os.symlink("/proc/self/mem", path)
    with pytest.raises(OSError) as raised:
        thumbnails.ensure_for_version(item.current_version)
    assert raised.value.errno == errno.EIO and not isinstance(raised.value, thumbnails.Unthumbnailable)
    assert not default_storage.exists(thumbnails.marker_name_for(str(item.public_id), 1))
