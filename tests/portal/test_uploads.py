"""Uploads: several files at once, streamed through a temporary file into
storage; and every bad upload refused with a message naming the file, with
nothing changed (no item, no change in the feed, no stored bytes)."""

import datetime as dt
import hashlib
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from PIL import ImageFile

from exporter import tasks
from exporter.models import Change, ItemVersion, MediaItem, Subscription
from tests.factories import add_sized, jpeg_bytes
from tests.hostile_images import blank_png

pytestmark = pytest.mark.django_db


def stored_files(data_dir) -> list[str]:
    root = data_dir / "media" / "originals"
    return sorted(str(p) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def nothing_changed(alice, data_dir) -> bool:
    return (
        not MediaItem.objects.filter(owner=alice).exists()
        and not Change.objects.exists()
        and not stored_files(data_dir)
    )


def post(client, *files, accept_json=False, **extra):
    headers = {"HTTP_ACCEPT": "application/json"} if accept_json else {}
    return client.post(reverse("upload"), {"files": list(files), **extra}, **headers)


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def test_several_files_are_added_and_wait_for_a_disc(signed_in, alice, settings, data_dir):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # the larger photo spills to a temporary file
    big = jpeg_bytes(800, 600, (10, 200, 30))
    assert len(big) > 1024
    mp4 = b"\x00\x00\x00\x18ftypmp42" + os.urandom(2000)
    response = post(
        signed_in,
        SimpleUploadedFile("big.jpg", big, "image/jpeg"),
        SimpleUploadedFile("clip.mp4", mp4, "video/mp4"),
        accept_json=True,
    )
    assert response.status_code == 200
    assert [a["name"] for a in response.json()["added"]] == ["big.jpg", "clip.mp4"]
    versions = {v.original_name: v for v in ItemVersion.objects.filter(item__owner=alice)}
    assert versions["big.jpg"].sha256 == hashlib.sha256(big).hexdigest()
    assert (versions["big.jpg"].content_type, versions["clip.mp4"].content_type) == ("image/jpeg", "video/mp4")
    assert Change.objects.filter(owner=alice, resolution="pending").count() == 2
    # The temporary file was under the data folder, and is gone.
    assert os.listdir(settings.FILE_UPLOAD_TEMP_DIR) == []
    page = signed_in.get(reverse("library")).content.decode()
    assert page.count("Waiting for a disc") == 2


def test_the_recorded_type_is_what_the_bytes_are_not_what_the_browser_said(signed_in, alice):
    png = SimpleUploadedFile("photo.jpg", b"\x89PNG\r\n\x1a\n" + os.urandom(100), "video/quicktime")
    post(signed_in, png)
    assert ItemVersion.objects.get(item__owner=alice).content_type == "image/png"


@pytest.mark.parametrize(
    "name, data, content_type, message",
    [
        (
            "holiday.jpg",
            b"<script>alert(1)</script>" * 10,
            "image/jpeg",
            "“holiday.jpg” is not a photo or video we recognise",
        ),
        ("setup.jpg", b"MZ\x90\x00" + os.urandom(200), "image/jpeg", "“setup.jpg” is not a photo or video"),
        ("empty.jpg", b"", "image/jpeg", "“empty.jpg” is empty (0 bytes)"),
    ],
    ids=["html-called-jpeg", "program-called-jpeg", "empty"],
)
def test_a_bad_file_is_refused_with_its_reason(signed_in, alice, data_dir, name, data, content_type, message):
    response = post(signed_in, SimpleUploadedFile(name, data, content_type))
    assert response.status_code == 302
    page = signed_in.get(response["Location"]).content.decode()
    assert message in page
    assert "Nothing was added for it." in page
    assert nothing_changed(alice, data_dir)


def test_a_file_over_the_limit_is_refused_before_it_is_stored(signed_in, alice, settings, data_dir):
    settings.DISCSUB_UPLOAD_MAX_BYTES = 4000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = jpeg_bytes(900, 700, (200, 10, 10))
    assert len(big) > 4000
    response = post(signed_in, SimpleUploadedFile("huge.jpg", big, "image/jpeg"), accept_json=True)
    assert response.status_code == 400
    assert response.json()["refused"] == [
        {"name": "huge.jpg", "reason": "“huge.jpg” is larger than the 3.9\xa0KB limit for one file."}
    ]
    assert nothing_changed(alice, data_dir)
    assert os.listdir(settings.FILE_UPLOAD_TEMP_DIR) == []


def test_one_bad_file_does_not_stop_the_good_ones(signed_in, alice):
    response = post(
        signed_in,
        SimpleUploadedFile("good.jpg", jpeg_bytes(), "image/jpeg"),
        SimpleUploadedFile("bad.jpg", b"not an image at all", "image/jpeg"),
        accept_json=True,
    )
    body = response.json()
    assert [a["name"] for a in body["added"]] == ["good.jpg"]
    assert [r["name"] for r in body["refused"]] == ["bad.jpg"]
    assert list(MediaItem.objects.filter(owner=alice).values_list("original_name", flat=True)) == ["good.jpg"]


def _multipart(name: str, data: bytes, token: str) -> tuple[bytes, str]:
    """A request body by hand: the test client would clean the file name."""
    boundary = "----discsubboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{token}\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + data
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("name", ["../../etc/cron.d/photo.jpg", "C:\\Users\\alice\\photo.jpg", "/tmp/photo.jpg"])
def test_a_name_with_a_path_is_refused(signed_in, alice, data_dir, name):
    body, content_type = _multipart(name, jpeg_bytes(), "unused")
    response = signed_in.generic(
        "POST", reverse("upload"), body, content_type=content_type, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    (refused,) = response.json()["refused"]
    assert refused["name"] == "photo.jpg"
    assert "was sent with a folder path in its name" in refused["reason"]
    assert nothing_changed(alice, data_dir)


def test_nothing_chosen_says_so(signed_in, alice, data_dir):
    response = signed_in.post(reverse("upload"), {}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400
    assert response.json()["refused"][0]["reason"] == "Choose at least one photo or video to upload."
    assert nothing_changed(alice, data_dir)


def test_an_upload_into_an_album_files_it_there(signed_in, alice, world):
    album = world["album"]
    post(signed_in, SimpleUploadedFile("more.jpg", jpeg_bytes(), "image/jpeg"), album=str(album.public_id))
    assert MediaItem.objects.get(original_name="more.jpg").albums.get() == album


def test_a_full_disk_is_a_message_and_leaves_nothing_behind(signed_in, alice, settings, small_filesystem):
    mount, _grow = small_filesystem
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(mount)}},
    }
    too_big_for_the_disk = b"\xff\xd8\xff\xe0" + os.urandom(3 * 1024 * 1024)
    response = post(signed_in, SimpleUploadedFile("big.jpg", too_big_for_the_disk, "image/jpeg"), accept_json=True)
    assert response.status_code == 400
    assert (
        response.json()["refused"][0]["reason"]
        == "We could not store “big.jpg” just now. Please try again in a few minutes."
    )
    assert not MediaItem.objects.exists() and not Change.objects.exists()
    assert [p for p in mount.rglob("*") if p.is_file()] == []


@pytest.mark.adversarial
def test_an_upload_past_the_storage_quota_is_refused_naming_the_file_and_the_numbers(signed_in, alice, settings):
    settings.DISCSUB_QUOTA_GB = 1
    add_sized(alice, 1024**3 - 1500, "archive.bin")  # 1500 bytes left
    photo = jpeg_bytes(300, 200)
    assert len(photo) > 1500
    response = post(signed_in, SimpleUploadedFile("one more.jpg", photo, "image/jpeg"), accept_json=True)
    assert response.status_code == 400
    assert response.json()["refused"] == [
        {
            "name": "one more.jpg",
            "reason": f"“one more.jpg” ({len(photo) / 1024:.1f} KB) does not fit in your storage:"
            " you use 1.0 GB of your 1.0 GB, so 1.5 KB is left. Deleted items count until they are purged.",
        }
    ]
    assert MediaItem.objects.filter(owner=alice).count() == 1
    # A subscription can have its own quota (0: none).
    Subscription.objects.filter(user=alice).update(quota_gb=0)
    assert post(signed_in, SimpleUploadedFile("one more.jpg", photo, "image/jpeg"), accept_json=True).status_code == 200


@pytest.mark.adversarial
def test_uploads_past_the_hourly_limit_get_a_429_that_says_when_to_try_again(signed_in, alice, settings):
    settings.DISCSUB_UPLOADS_PER_HOUR = 2
    files = [SimpleUploadedFile(f"{n}.jpg", jpeg_bytes(color=(n, 0, 0)), "image/jpeg") for n in range(3)]
    body = post(signed_in, *files, accept_json=True).json()
    assert [a["name"] for a in body["added"]] == ["0.jpg", "1.jpg"]
    refusal = "“2.jpg” was not added: you have uploaded 2 files in the last hour, the most we take in an hour."
    assert body["refused"] == [{"name": "2.jpg", "reason": refusal + " Try again in 60 minutes."}]

    response = post(signed_in, SimpleUploadedFile("3.jpg", jpeg_bytes(), "image/jpeg"), accept_json=True)
    assert response.status_code == 429
    assert response.json()["refused"][0]["reason"].startswith("“3.jpg” was not added")
    # A sliding window: once the first upload is an hour old, one more fits.
    MediaItem.objects.filter(original_name="0.jpg").update(uploaded_at=timezone.now() - dt.timedelta(minutes=61))
    response = post(signed_in, SimpleUploadedFile("3.jpg", jpeg_bytes(), "image/jpeg"), accept_json=True)
    assert response.status_code == 200


@pytest.mark.adversarial
def test_an_upload_decodes_no_pixels_in_the_request(signed_in, alice, monkeypatch, django_capture_on_commit_callbacks):
    # The 230 KB PNG that decodes to 237 MB (issue 12): the request, with its
    # after-commit work, must not decode it; the thumbnail is a worker's task.
    decoded = []
    real_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda img: decoded.append(img.size) or real_load(img))
    with django_capture_on_commit_callbacks(execute=True):
        response = post(signed_in, SimpleUploadedFile("wide.png", blank_png(7700, 7700), "image/png"), accept_json=True)
    assert response.status_code == 200 and decoded == []
    item = MediaItem.objects.get(owner=alice)
    url = reverse("thumbnail", args=[item.public_id, 1])
    # The library shows the placeholder, and the browser asks again later.
    placeholder = signed_in.get(url)
    assert (placeholder["Content-Type"], placeholder["Cache-Control"]) == ("image/svg+xml", "private, no-cache")
    monkeypatch.undo()
    assert tasks.make_thumbnail(item.current_version.pk)
    made = signed_in.get(url)
    assert (made["Content-Type"], made["Cache-Control"]) == ("image/jpeg", "private, max-age=86400")
    # A version decided to have none keeps the placeholder, cached like a thumbnail.
    with django_capture_on_commit_callbacks(execute=True):
        post(signed_in, SimpleUploadedFile("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(500), "video/mp4"))
    clip = MediaItem.objects.get(original_name="clip.mp4")
    assert tasks.make_thumbnail(clip.current_version.pk) is False
    kept = signed_in.get(reverse("thumbnail", args=[clip.public_id, 1]))
    assert (kept["Content-Type"], kept["Cache-Control"]) == ("image/svg+xml", "private, max-age=86400")
