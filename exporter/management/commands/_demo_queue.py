"""Demo data for the staff queue: a few subscribers whose copies sit at every
step, moved there by the real transition functions, so `make run` shows a
living queue and a dashboard with a history.

Their images are rows only (no image file): downloading one says the file is
not on this server.  The demo subscriber's own discs are built for real by
the worker and join the queue when verified."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from exporter import fulfillment
from exporter.media import CAPACITY_SECTORS
from exporter.models import (
    CopyEvent,
    CopyStatus,
    Disc,
    DiscCopy,
    DiscEntry,
    DiscStatus,
    EntryKind,
    ItemVersion,
    MediaItem,
    Subscription,
)

PEOPLE = [
    ("maya", "Maya", "Patel", "cd", ("Maya Patel", "7 Harbour Row", "Bristol", "BS1 5TT", "GB")),
    ("jonas", "Jonas", "Weber", "dvd", ("Jonas Weber", "Lindenstraße 12", "Berlin", "10969", "DE")),
    ("lucia", "Lucía", "Gómez", "cd", ("Lucía Gómez", "Calle Mayor 3, 2º", "Madrid", "28013", "ES")),
    ("tom", "Tom", "O'Brien", "bd", ("Tom O'Brien", "88 Alder Street", "Portland", "97205", "US")),
    ("ines", "Inês", "Costa", "cd", None),  # no address yet: an exception
]
# Where each person's discs end up, oldest disc first.
PLAN = {
    "maya": [CopyStatus.DELIVERED, CopyStatus.DELIVERED, CopyStatus.SHIPPED, CopyStatus.LABELLED, CopyStatus.QUEUED],
    "jonas": [CopyStatus.DELIVERED, CopyStatus.RETURNED, CopyStatus.CHECKED, CopyStatus.BURNED, CopyStatus.QUEUED],
    "lucia": [CopyStatus.SHIPPED, CopyStatus.LABELLED, CopyStatus.CLAIMED, CopyStatus.QUEUED, CopyStatus.QUEUED],
    "tom": [CopyStatus.DELIVERED, CopyStatus.CHECKED, "read-back failed", CopyStatus.QUEUED],
    "ines": [CopyStatus.QUEUED],
}
CARRIER = {"GB": ("royal-mail", "RM{:09d}GB"), "US": ("usps", "9400{:018d}")}


def _disc(owner, number: int, medium: str, first_day: dt.datetime) -> Disc:
    seed = f"demo-{owner.username}-{number}".encode()
    disc = Disc.objects.create(
        owner=owner,
        number=number,
        medium=medium,
        status=DiscStatus.VERIFIED,
        planned_at=first_day,
        capacity_sectors=CAPACITY_SECTORS[medium],
        planned_sectors=CAPACITY_SECTORS[medium] * 99 // 100,
        first_seq=number,
        last_seq=number,
        volume_id=f"DISCSUB_{number:04d}",
        image_name=f"{owner.pk}/disc-{number:04d}.iso",
        image_size=CAPACITY_SECTORS[medium] * 99 // 100 * 2048,
        image_sha256=hashlib.sha256(seed).hexdigest(),
        implanted_md5=hashlib.md5(seed).hexdigest(),
        built_at=first_day,
        verified_at=first_day,
    )
    # Two photos a disc, so its label and packing slip show a date range.
    for days in (0, 23):
        taken = first_day - dt.timedelta(days=60 - days)
        item = MediaItem.objects.create(
            owner=owner, original_name=f"IMG_{number}{days:02d}.JPG", captured_at=taken, planned_version_number=1
        )
        version = ItemVersion.objects.create(
            item=item, number=1, storage_name=f"demo/{item.pk}", original_name=item.original_name, size=1, sha256="0"
        )
        DiscEntry.objects.create(
            disc=disc, item=item, kind=EntryKind.FILE, version=version, metadata={"captured_at": taken.isoformat()}
        )
    return disc


def _walk(copy: DiscCopy, target: str, staff, n: int) -> None:
    failed = target == "read-back failed"
    order = [CopyStatus.CLAIMED, CopyStatus.BURNED, CopyStatus.CHECKED, CopyStatus.LABELLED, CopyStatus.SHIPPED]
    stop = {CopyStatus.DELIVERED: CopyStatus.SHIPPED, CopyStatus.RETURNED: CopyStatus.SHIPPED}.get(target, target)
    if failed:
        stop = CopyStatus.BURNED
    if stop == CopyStatus.QUEUED:
        return
    drive = ["Drive A", "Drive B"][n % 2]
    batch = ["Verbatim 2410-A", "Verbatim 2411-B", "TDK 0913"][n % 3]
    for step in order[: order.index(stop) + 1]:
        if step == CopyStatus.CLAIMED:
            fulfillment.claim_copies([copy.pk], staff, drive=drive)
        elif step == CopyStatus.BURNED:
            fulfillment.mark_burned(copy.pk, staff, drive=drive, media_batch=batch)
        elif step == CopyStatus.CHECKED:
            fulfillment.record_read_back(
                copy.pk, staff, drive="Drive B", media_batch=batch, method="checkisomd5", value="PASS"
            )
        elif step == CopyStatus.LABELLED:
            fulfillment.mark_labelled(copy.pk, staff)
        elif step == CopyStatus.SHIPPED:
            country = copy.disc.owner.subscription.address_country
            carrier, pattern = CARRIER.get(country, ("other", "DEMO{:08d}"))
            fulfillment.ship([copy.pk], staff, carrier=carrier, tracking_number=pattern.format(1000 + copy.pk))
    if failed:
        fulfillment.record_read_back(
            copy.pk, staff, drive="Drive A", media_batch="TDK 0913", method="checkisomd5", value="FAIL"
        )
    elif target == CopyStatus.DELIVERED:
        fulfillment.mark_delivered(copy.pk, staff)
    elif target == CopyStatus.RETURNED:
        fulfillment.mark_returned(copy.pk, staff)


def load_demo_queue(staff) -> int:
    """Create the queue's demo subscribers and copies (once); returns the number of copies."""
    User = get_user_model()
    if User.objects.filter(username=PEOPLE[0][0]).exists():
        return 0
    now = timezone.now()
    copies = 0
    with transaction.atomic():
        for username, first, last, medium, address in PEOPLE:
            user = User.objects.create_user(username, f"{username}@example.com", first_name=first, last_name=last)
            fields = {}
            if address:
                keys = ["address_name", "address_line1", "address_city", "address_postal_code", "address_country"]
                fields = dict(zip(keys, address, strict=True))
            # No emails about demo envelopes.
            Subscription.objects.create(
                user=user, medium=medium, email_on_shipped=False, email_on_delivered=False, **fields
            )
            plan = PLAN[username]
            for number, target in enumerate(plan, start=1):
                # Older discs further along; the queue's ages run from 12 days to an hour.
                age = dt.timedelta(days=2 * (len(plan) - number) + 1, hours=number)
                disc = _disc(user, number, medium, now - age)
                fulfillment.queue_first_copy(disc)
                copy = disc.copies.get()
                _walk(copy, target, staff, number)
                # Demo only: spread the history over the past days so ages and the throughput chart look lived in.
                events = list(copy.events.order_by("at", "id"))
                step = age / (len(events) + 1)
                for i, event in enumerate(events):
                    CopyEvent.objects.filter(pk=event.pk).update(at=now - age + step * i)
                DiscCopy.objects.filter(pk=copy.pk).update(status_changed_at=now - age + step * (len(events) - 1))
                copies += 1
    return copies
