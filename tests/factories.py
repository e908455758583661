"""Making library content for tests."""

import hashlib
import io
import os

from django.db import transaction
from PIL import Image

from exporter import library
from exporter.feed import record_change
from exporter.models import ChangeKind, ItemVersion, MediaItem


def jpeg_bytes(
    width=64, height=48, color=(200, 80, 40), exif_date: str | None = None, offset: str | None = None
) -> bytes:
    img = Image.new("RGB", (width, height), color)
    exif = Image.Exif()
    if exif_date:
        sub = exif.get_ifd(0x8769)
        sub[0x9003] = exif_date
        if offset:
            sub[0x9011] = offset
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif)
    return out.getvalue()


def add_file(owner, name="photo.jpg", data: bytes | None = None, albums=(), **kwargs) -> MediaItem:
    """A real item: bytes go through storage."""
    data = os.urandom(1000) if data is None else data
    return library.add_item(owner, io.BytesIO(data), name, albums=albums, **kwargs)


def add_sized(owner, size: int, name="big.bin", albums=()) -> MediaItem:
    """An item whose bytes are never read (planning only looks at sizes)."""
    with transaction.atomic():
        item = MediaItem.objects.create(owner=owner, original_name=name)
        version = ItemVersion.objects.create(
            item=item,
            number=1,
            storage_name=f"nowhere/{item.pk}",
            original_name=name,
            size=size,
            sha256=hashlib.sha256(name.encode()).hexdigest(),
        )
        item.current_version = version
        item.save(update_fields=["current_version"])
        item.albums.set(list(albums))
        record_change(item, ChangeKind.ADDED)
    return item


def verified_disc(owner, number: int | None = None, medium: str = "cd"):
    """A disc whose image is verified, its first copy queued: the state staff
    and the portal start from.  (Building real images is tested in
    tests/exporter/test_build.py; here only the rows matter.)"""
    from django.utils import timezone

    from exporter import fulfillment
    from exporter.media import CAPACITY_SECTORS
    from exporter.models import Disc, DiscStatus

    number = number or (Disc.objects.filter(owner=owner).count() + 1)
    now = timezone.now()
    seed = f"{owner.pk}-{number}".encode()
    disc = Disc.objects.create(
        owner=owner,
        number=number,
        medium=medium,
        status=DiscStatus.VERIFIED,
        planned_at=now,
        capacity_sectors=CAPACITY_SECTORS[medium],
        planned_sectors=1000,
        first_seq=number,
        last_seq=number,
        volume_id=f"DISCSUB_{number:04d}",
        image_name=f"{owner.pk}/disc-{number:04d}.iso",
        image_size=1000 * 2048,
        image_sha256=hashlib.sha256(seed).hexdigest(),
        implanted_md5=hashlib.md5(seed).hexdigest(),
        built_at=now,
        verified_at=now,
    )
    fulfillment.queue_first_copy(disc)
    return disc


# The main path of a copy (DESIGN §5), in order; returned is reached via shipped.
COPY_MAIN_PATH = ["queued", "claimed", "burned", "checked", "labelled", "shipped", "delivered"]
COPY_STATES_WALKED = [*COPY_MAIN_PATH, "returned"]


def walk_copy(copy, target: str, staff, *, tracking: str = "AB123456789GB"):
    """Move a copy through the real transitions up to ``target`` (returned: via shipped)."""
    from exporter import fulfillment

    steps = {
        "claimed": lambda: fulfillment.claim_copies([copy.pk], staff, drive="Drive A"),
        "burned": lambda: fulfillment.mark_burned(copy.pk, staff, drive="Drive A", media_batch="B-1"),
        "checked": lambda: fulfillment.record_read_back(
            copy.pk, staff, drive="Drive B", media_batch="B-1", method="sha256", value=copy.disc.image_sha256
        ),
        "labelled": lambda: fulfillment.mark_labelled(copy.pk, staff),
        "shipped": lambda: fulfillment.ship([copy.pk], staff, carrier="royal-mail", tracking_number=tracking),
        "delivered": lambda: fulfillment.mark_delivered(copy.pk, staff),
    }
    stop = "shipped" if target == "returned" else target
    for status in COPY_MAIN_PATH[1 : COPY_MAIN_PATH.index(stop) + 1]:
        steps[status]()
    if target == "returned":
        fulfillment.mark_returned(copy.pk, staff)
    copy.refresh_from_db()
    assert copy.status == target
    return copy


def new_copy(owner, staff, target: str = "queued", medium: str = "cd"):
    """The first copy of a new verified disc of ``owner``, walked to ``target``."""
    disc = verified_disc(owner, medium=medium)
    return walk_copy(disc.copies.get(reason="first"), target, staff)
