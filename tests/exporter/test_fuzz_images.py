"""Fuzzed photos and videos never crash or hang uploads, thumbnails, planning
or building, and never keep a subscriber's good photos off their disc.

Real samples of each format (Pillow writes them; HEIC, which Pillow cannot
write or read here, is a real HEIF container: an AVIF re-branded ``heic``,
and MP4 is a hand-made box structure) are mutated with a fixed seed: byte
flips, truncations, inserted garbage and EXIF tags given another type.
Every mutation is thumbnailed (through the decoder child, as a worker does)
and has its capture date read (as an upload does); a few hundred go through
the portal's upload view and onto one planned and built disc.
"""

import hashlib
import io
import json
import random
import struct
import subprocess
import time
import zlib

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from exporter import build, library, thumbnails
from exporter.models import Disc, DiscEntry, DiscStatus, MediaItem
from tests.factories import jpeg_bytes
from tests.tools import require_tool

pytestmark = [pytest.mark.django_db, pytest.mark.adversarial]

SEED = 20261204
MUTATIONS_PER_SAMPLE = 400  # 9 samples: 3,600 cases
UPLOADED_PER_SAMPLE = 30  # 270 of them go through the portal and onto one disc
# No case may take longer than this, end to end (the decoder's own limit is
# lower, so a hang shows as a placeholder, not as this failing).
CASE_SECONDS = 10
EXIF_TAGS = (0x0112, 0x010F, 0x0132, 0x8769, 0x9003, 0x9011)


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Fuzz Camera Co."
    exif[0x0132] = "2024:05:06 07:08:09"
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2024:05:06 07:08:09"
    sub[0x9011] = "+02:00"
    return exif


def _image(fmt: str, mode: str = "RGB", **params) -> bytes:
    img = Image.new(mode, (64, 48), (30, 120, 200) if mode.startswith("RGB") else 90)
    img.paste((250, 250, 250) if mode.startswith("RGB") else 250, (0, 0, 16, 12))
    out = io.BytesIO()
    img.save(out, fmt, exif=_exif(), **params)
    return out.getvalue()


def _heic() -> bytes:
    """A real HEIF container (ftyp, meta, mdat boxes) with HEIC brands."""
    avif = _image("AVIF")
    size = struct.unpack(">I", avif[:4])[0]
    brands = b"heic" + avif[12:16] + b"mif1heic" + b"\x00" * (size - 24)
    return avif[:8] + brands[: size - 8] + avif[size:]


def _mp4() -> bytes:
    def box(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    mvhd = box(b"mvhd", b"\x00" * 4 + struct.pack(">IIII", 0, 0, 1000, 5000) + b"\x00" * 80)
    return box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + box(b"moov", mvhd) + box(b"mdat", bytes(range(256)) * 8)


def samples() -> dict[str, bytes]:
    return {
        "jpg": _image("JPEG"),
        "progressive.jpg": _image("JPEG", progressive=True, quality=70),
        "png": _image("PNG", "RGBA"),
        "grey.png": _image("PNG", "L"),
        "webp": _image("WEBP", quality=80),
        "avif": _image("AVIF"),
        "heic": _heic(),
        "tif": _image("TIFF", compression="tiff_lzw"),
        "mp4": _mp4(),
    }


def _tag_type_offsets(data: bytes) -> list[int]:
    """Where the type field of each known EXIF/TIFF tag entry is."""
    found = []
    for tag in EXIF_TAGS:
        for pattern in (struct.pack(">H", tag), struct.pack("<H", tag)):
            start = 0
            while (at := data.find(pattern, start)) != -1:
                found.append(at + 2)
                start = at + 1
    return found


def mutate(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3))):
        kind = rng.choice(("flip", "flip", "truncate", "insert", "exif-type"))
        if kind == "flip":
            for _ in range(rng.randint(1, 8)):
                # Mostly past the first bytes, so most still look like their format.
                out[rng.randrange(min(12, len(out) - 1), len(out))] = rng.randrange(256)
        elif kind == "truncate":
            del out[rng.randrange(12, len(out)) :]
        elif kind == "insert":
            at = rng.randrange(12, len(out))
            out[at:at] = rng.randbytes(rng.randint(1, 64))
        else:
            offsets = _tag_type_offsets(bytes(out))
            if offsets:
                at = rng.choice(offsets)
                out[at : at + 2] = rng.choice(
                    (struct.pack(">H", rng.randrange(16)), struct.pack("<H", rng.randrange(16)))
                )
    return bytes(out)


def with_png_checksums(data: bytes) -> bytes:
    """``data`` with each whole PNG chunk's CRC made right again, so that a
    mutation reaches the decoder instead of stopping at the first check."""
    out, at = bytearray(data), 8
    while at + 12 <= len(out):
        length = struct.unpack(">I", out[at : at + 4])[0]
        end = at + 8 + length
        if end + 4 > len(out):
            break
        out[end : end + 4] = struct.pack(">I", zlib.crc32(out[at + 4 : end]))
        at = end + 4
    return bytes(out)


def fuzz_cases() -> list[tuple[str, bytes]]:
    rng = random.Random(SEED)
    cases = []
    for ext, sample in samples().items():
        for n in range(MUTATIONS_PER_SAMPLE):
            data = mutate(sample, rng)
            cases.append((f"fuzz-{n:04d}.{ext}", with_png_checksums(data) if ext.endswith("png") else data))
    return cases


@pytest.fixture(autouse=True)
def fuzz_settings(settings):
    thumbnails._known.clear()
    settings.DISCSUB_THUMBNAIL_SECONDS = 3
    settings.DISCSUB_PAR2_REDUNDANCY = dict.fromkeys(settings.DISCSUB_PAR2_REDUNDANCY, 1)
    yield
    thumbnails._known.clear()


def test_thousands_of_fuzzed_files_are_thumbnailed_or_refused_without_a_crash_or_a_hang():
    cases = fuzz_cases()
    outcomes = {"thumbnail": 0, "placeholder": 0}
    for name, data in cases:
        deadline = time.monotonic() + CASE_SECONDS
        stored = default_storage.save(f"fuzz/{name}", ContentFile(data))
        library.read_capture_date(stored)  # as the upload does; any result, never an exception
        try:
            thumbnails.render_original(stored)
            outcomes["thumbnail"] += 1
        except thumbnails.Unthumbnailable:
            outcomes["placeholder"] += 1
        assert time.monotonic() < deadline, f"{name} took longer than {CASE_SECONDS} s"
    assert sum(outcomes.values()) == len(cases) >= 3600
    # The mutations are neither all harmless nor all fatal.
    assert outcomes["thumbnail"] > 300 and outcomes["placeholder"] > 300, outcomes


def test_a_library_of_fuzzed_files_and_good_photos_still_makes_its_disc(client, alice, tmp_path):
    seven = require_tool("7z", "p7zip-full")
    client.force_login(alice)
    cases = [case for n, case in enumerate(fuzz_cases()) if n % MUTATIONS_PER_SAMPLE < UPLOADED_PER_SAMPLE]
    good = {
        f"good-{n}.jpg": jpeg_bytes(320, 240, color=(n * 40, 90, 200), exif_date="2024:01:02 03:04:05")
        for n in range(5)
    }
    uploads = [*cases[:100], *good.items(), *cases[100:]]
    for start in range(0, len(uploads), 40):
        batch = uploads[start : start + 40]
        deadline = time.monotonic() + CASE_SECONDS * len(batch)
        files = [SimpleUploadedFile(name, data, "application/octet-stream") for name, data in batch]
        response = client.post(reverse("upload"), {"files": files}, HTTP_ACCEPT="application/json")
        assert time.monotonic() < deadline
        assert response.status_code in (200, 400), response.content[:500]
        body = response.json()
        # Every file is either added or refused with a reason that names it.
        assert len(body["added"]) + len(body["refused"]) == len(batch)
        assert all(r["reason"].startswith(f"“{r['name']}”") for r in body["refused"])
    assert set(good) <= set(MediaItem.objects.filter(owner=alice).values_list("original_name", flat=True))

    deadline = time.monotonic() + CASE_SECONDS * len(uploads)
    call_command("make_thumbnails", "--user", "alice", stdout=io.StringIO(), stderr=io.StringIO())
    out = io.StringIO()
    call_command("build_discs", "--user", "alice", "--now", "--json", stdout=out, stderr=io.StringIO())
    assert time.monotonic() < deadline
    (built,) = [json.loads(line) for line in out.getvalue().splitlines()]
    disc = Disc.objects.get(owner=alice, number=built["number"])
    assert disc.status == DiscStatus.VERIFIED, disc.last_error

    good_items = MediaItem.objects.filter(owner=alice, original_name__in=good)
    entries = DiscEntry.objects.filter(disc=disc, item__in=good_items, held_back=False)
    assert entries.count() == len(good)
    out = tmp_path / "disc"
    subprocess.run([seven, "x", "-y", f"-o{out}", str(build.image_path(disc))], check=True, capture_output=True)
    on_disc = {hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}
    assert {hashlib.sha256(data).hexdigest() for data in good.values()} <= on_disc
    # Each good photo's thumbnail made it into the offline index too.
    for item in good_items:
        assert (out / "index" / "thumbs" / f"{item.public_id}-v1.jpg").is_file()
