"""Downloads: the image streamed with HTTP Range (206, the right bytes, a
resumed download), a signed URL when images are on S3, and manifest.json
byte-identical to the one on the disc."""

import hashlib
import urllib.request

import pytest
from django.urls import reverse

from exporter import build
from tests.exporter.extracted import extract_7z, next_disc
from tests.factories import add_file, jpeg_bytes
from tests.portal.conftest import IMAGE_BYTES
from tests.s3 import moto_endpoint, s3  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def image_url(client, alice, world):
    client.force_login(alice)
    return reverse("disc_image", args=[world["disc"].public_id])


def test_the_whole_image_says_it_takes_ranges(client, image_url):
    response = client.get(image_url)
    assert response.status_code == 200
    assert response["Accept-Ranges"] == "bytes"
    assert response["Content-Disposition"].startswith("attachment;")
    assert body(response) == IMAGE_BYTES


@pytest.mark.parametrize(
    "header, first, last",
    [("bytes=0-99", 0, 99), ("bytes=1000-", 1000, len(IMAGE_BYTES) - 1), ("bytes=-256", len(IMAGE_BYTES) - 256, None)],
)
def test_a_range_is_206_with_exactly_those_bytes(client, image_url, header, first, last):
    last = len(IMAGE_BYTES) - 1 if last is None else last
    response = client.get(image_url, HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(IMAGE_BYTES)}"
    assert int(response["Content-Length"]) == last - first + 1
    assert body(response) == IMAGE_BYTES[first : last + 1]


def test_a_broken_off_download_resumes_to_the_same_sha256(client, image_url):
    first = body(client.get(image_url, HTTP_RANGE="bytes=0-4095"))
    rest = body(client.get(image_url, HTTP_RANGE=f"bytes={len(first)}-"))
    assert hashlib.sha256(first + rest).digest() == hashlib.sha256(IMAGE_BYTES).digest()


def test_a_range_past_the_end_is_416(client, image_url):
    response = client.get(image_url, HTTP_RANGE=f"bytes={len(IMAGE_BYTES)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(IMAGE_BYTES)}"


def test_an_image_not_yet_checked_is_not_offered(client, alice, world):
    disc = world["disc"]
    disc.__class__.objects.filter(pk=disc.pk).update(status="built")
    client.force_login(alice)
    assert client.get(reverse("disc_image", args=[disc.public_id])).status_code == 404
    assert b"Download image" not in client.get(reverse("disc", args=[disc.public_id])).content


def test_on_s3_the_browser_gets_a_short_lived_signed_url(client, alice, world, s3):  # noqa: F811
    """Images in object storage (a real moto server): the view redirects to a
    presigned URL, and that URL serves the image."""
    disc = world["disc"]
    s3.client.put_object(Bucket=s3.bucket, Key=f"images/{disc.image_name}", Body=IMAGE_BYTES)
    client.force_login(alice)
    response = client.get(reverse("disc_image", args=[disc.public_id]))
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(s3.endpoint) and "X-Amz-Signature=" in location and "X-Amz-Expires=300" in location
    with urllib.request.urlopen(location, timeout=10) as fetched:
        assert fetched.read() == IMAGE_BYTES


def test_manifest_json_is_the_one_on_the_disc(client, alice, tmp_path):
    add_file(alice, "Pier at dawn.jpg", jpeg_bytes(), caption="Low tide")
    add_file(alice, "Café – ünïcode.jpg", jpeg_bytes(color=(9, 9, 9)))
    disc = next_disc(alice)
    client.force_login(alice)
    response = client.get(reverse("manifest_json", args=[disc.public_id]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    on_disc = (extract_7z(build.image_path(disc), tmp_path / "x") / "manifest.json").read_bytes()
    assert response.content == on_disc
    # The browsable page lists the same files, with their thumbnails.
    page = client.get(reverse("manifest", args=[disc.public_id])).content.decode()
    assert "Pier at dawn.jpg" in page and "Low tide" in page and "Café – ünïcode.jpg" in page
    assert page.count('/thumbnail/1/"') == 2
