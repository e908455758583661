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
