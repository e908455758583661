"""Disc labels: 120 mm at 300 dpi, the date range the disc's README states,
hostile names that do not break the layout, and a QR code that reads back
as the image sha256."""

import io
import subprocess

import pytest
import segno
from django.urls import reverse
from PIL import Image

from exporter import labels
from exporter.models import DiscStatus, EntryKind
from tests.factories import verified_disc
from tests.staff.conftest import carry
from tests.tools import require_tool

pytestmark = pytest.mark.django_db


def label_of(client, disc) -> Image.Image:
    response = client.get(reverse("staff:disc-label", args=[disc.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_the_date_range_is_the_carried_photos_capture_dates(alice):
    disc, empty = verified_disc(alice), verified_disc(alice)
    carry(disc, "2024-05-09T10:00:00+02:00")
    carry(disc, "2024-03-03T08:30:00+00:00")
    carry(disc, None)  # no date: left out
    carry(disc, "2019-01-01T00:00:00+00:00", held_back=True)  # not on the disc
    carry(disc, "2018-01-01T00:00:00+00:00", kind=EntryKind.METADATA)  # no bytes on the disc
    assert labels.disc_date_ranges([disc, empty]) == {disc.pk: "3 Mar 2024 – 9 May 2024", empty.pk: ""}


def test_a_label_is_a_120mm_disc_at_300_dpi(client, alice, sam):
    disc = verified_disc(alice)
    client.force_login(sam)
    image = label_of(client, disc)
    assert image.size == (1417, 1417) and image.mode == "RGBA"
    assert round(image.info["dpi"][0]) == 300
    # Transparent outside the disc and in the hub's hole, opaque on the printable ring.
    assert image.getpixel((5, 5))[3] == 0
    assert image.getpixel((708, 708))[3] == 0
    assert image.getpixel((708, 708 - 400))[3] == 255


def test_names_lose_control_characters_and_emoji_but_keep_their_letters():
    assert labels.printable("Zoë 👩‍👩‍👧 Ålund\x00\u200b\x1b") == "Zoë  Ålund"


def test_hostile_names_are_drawn_without_breaking_the_layout():
    long = labels.disc_label_png(
        subscriber="Ω" * 300 + "\x00\x1b[31m",
        number=12345,
        date_range="1 Jan 2000 – 31 Dec 2099",
        volume_id="DISCSUB_" + "X" * 24,
        image_sha256="ab" * 32,
        medium="bd",
    )
    image = Image.open(io.BytesIO(long))
    assert image.size == (1417, 1417)
    # Nothing is drawn past the printable ring: the rim stays white.
    rim = [image.getpixel((708 + dx, 12)) for dx in range(-40, 41)]
    assert all(p[:3] in {(255, 255, 255), labels.CUT_LINE[:3]} or p[3] == 0 for p in rim)


def _qr_box(image: Image.Image, text: str) -> tuple[int, int, int]:
    """(left, top, module size) of the QR code drawn left of the hub."""
    side_modules = len(labels.qr_matrix(text)) + 4
    module = labels.px(labels.QR_MM) // side_modules
    side = module * side_modules
    c = image.width / 2
    return round(c - labels.px(40) - side / 2), round(c - side / 2), module


def test_the_qr_code_is_segnos_code_of_the_sha256(alice):
    disc = verified_disc(alice)
    image = Image.open(io.BytesIO(labels.label_for(disc, ""))).convert("L")
    left, top, module = _qr_box(image, disc.image_sha256)
    expected = [[bool(m) for m in row] for row in segno.make_qr(disc.image_sha256, error="m").matrix]
    drawn = [
        [
            image.getpixel((left + (x + 2) * module + module // 2, top + (y + 2) * module + module // 2)) < 128
            for x in range(len(expected))
        ]
        for y in range(len(expected))
    ]
    assert drawn == expected


def test_a_phone_reads_the_qr_code_as_the_sha256(client, alice, sam, tmp_path):
    zbarimg = require_tool("zbarimg", "zbar-tools")
    disc = verified_disc(alice)
    client.force_login(sam)
    path = tmp_path / "label.png"
    label_of(client, disc).save(path)
    read = subprocess.run([zbarimg, "--quiet", "--raw", str(path)], capture_output=True, text=True, timeout=60)
    assert read.stdout.strip() == disc.image_sha256


def test_a_disc_without_a_verified_image_has_no_label(client, alice, sam):
    disc = verified_disc(alice)
    disc.status, disc.image_sha256 = DiscStatus.BUILDING, ""
    disc.save(update_fields=["status", "image_sha256"])
    client.force_login(sam)
    assert client.get(reverse("staff:disc-label", args=[disc.pk])).status_code == 404
