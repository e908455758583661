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


# Range, ETag and If-Range by RFC 9110 (issue #12, findings 7 and 10).

SIZE = len(IMAGE_BYTES)


@pytest.mark.parametrize(
    "header",
    [
        "bytes=" + "9" * 5000 + "-",  # once a 500: int() refuses 4,300+ digits
        "bytes=0-" + "9" * 5000,
        "bytes=-" + "9" * 5000,
        "bytes=" + "0" * 5000 + "5-9",
    ],
)
def test_a_range_of_thousands_of_digits_is_answered_not_a_500(client, image_url, header):
    response = client.get(image_url, HTTP_RANGE=header)
    assert response.status_code in (206, 416)
    if header.startswith("bytes=9"):
        assert response.status_code == 416 and response["Content-Range"] == f"bytes */{SIZE}"
    else:
        first, last = {"0-": (0, SIZE - 1), "-9": (0, SIZE - 1), "00": (5, 9)}[header[6:8]]
        assert response["Content-Range"] == f"bytes {first}-{last}/{SIZE}"
        assert body(response) == IMAGE_BYTES[first : last + 1]


@pytest.mark.parametrize(
    "header",
    [
        "bytes= 0-1",  # RFC 9110 allows whitespace only around the commas of the range-set
        "bytes=٣-٥",  # DIGIT is ASCII; str.isdigit() and int() take these
        "bytes=²-",
        "bytes=5-1",  # last-pos before first-pos
        "bytes=" + "9" * 40 + "-" + "9" * 30,  # the same, past any file's size
        "bytes=abc",
        "bytes=-",
        "bytes=",
        "items=0-1",  # another unit
        "bytes=0-1,5-9",  # several ranges: the whole file is a legal answer
        "bytes=0-1," * 150,
    ],
)
def test_an_invalid_or_multiple_range_is_ignored_and_the_whole_file_sent(client, image_url, header):
    response = client.get(image_url, HTTP_RANGE=header)
    assert response.status_code == 200
    assert "Content-Range" not in response
    assert body(response) == IMAGE_BYTES


@pytest.mark.parametrize("header", ["bytes=0-1 , ", "bytes=0-1,,", "BYTES=0-1", "bytes=0-1, 99999-"])
def test_list_syntax_around_a_single_range_is_accepted(client, image_url, header):
    """Empty list elements and whitespace around commas (RFC 9110 §5.6.1.2);
    the unit is case-insensitive; an unsatisfiable range next to a good one
    leaves one range to serve."""
    response = client.get(image_url, HTTP_RANGE=header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 0-1/{SIZE}"


def test_an_unsatisfiable_range_set_is_416_with_the_size(client, image_url):
    response = client.get(image_url, HTTP_RANGE=f"bytes={SIZE}-, {SIZE + 5}-{SIZE + 9}")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{SIZE}"


def test_the_image_has_a_strong_etag_from_its_sha256(client, image_url, world):
    response = client.get(image_url)
    assert response["ETag"] == f'"{world["disc"].image_sha256}"'
    assert response["Last-Modified"]


@pytest.mark.parametrize("tag", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_if_none_match_with_the_etag_is_304(client, image_url, tag):
    etag = client.get(image_url)["ETag"]
    response = client.get(image_url, HTTP_IF_NONE_MATCH=tag.format(etag=etag))
    assert response.status_code == 304
    assert response["ETag"] == etag
    assert client.get(image_url, HTTP_IF_NONE_MATCH='"other"').status_code == 200


def test_if_range_with_the_etag_or_the_date_resumes(client, image_url):
    whole = client.get(image_url)
    for validator in (whole["ETag"], whole["Last-Modified"]):
        response = client.get(image_url, HTTP_RANGE="bytes=10-19", HTTP_IF_RANGE=validator)
        assert response.status_code == 206, validator
        assert body(response) == IMAGE_BYTES[10:20]


@pytest.mark.parametrize(
    "validator",
    [
        '"0000000000000000000000000000000000000000000000000000000000000000"',  # another image
        "W/{etag}",  # If-Range needs a strong match
        "Mon, 01 Jan 2001 00:00:00 GMT",  # another date
        "not a validator",
    ],
)
def test_if_range_that_does_not_hold_sends_the_whole_image(client, image_url, validator):
    etag = client.get(image_url)["ETag"]
    for header in ("bytes=10-19", f"bytes={SIZE}-"):  # ignored even when it would be a 416
        response = client.get(image_url, HTTP_RANGE=header, HTTP_IF_RANGE=validator.format(etag=etag))
        assert response.status_code == 200
        assert body(response) == IMAGE_BYTES
