"""Demo data for the staff queue: a few subscribers whose copies sit at every
step, moved there by the real transition functions, so `make run` shows a
living queue and a dashboard with a history.

Every one of their discs is real: two small photos each, planned and built
by the engine like any disc, so its image downloads, verifies and restores
and its manifest page shows its files.  The demo subscriber's own discs are
built by the worker after the first start and join the queue when verified."""

from __future__ import annotations

import datetime as dt
import io
import random

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.utils import timezone

from exporter import build, fulfillment, library
from exporter.management.commands._demo_photos import demo_jpeg
from exporter.models import CopyEvent, CopyStatus, Disc, DiscCopy, DiscStatus, Subscription
from exporter.planning import plan_next_disc

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


SMALL = [(640, 480), (480, 640), (800, 600)]


def _disc(owner, number: int, medium: str, first_day: dt.datetime) -> Disc:
    """Two photos (so its label and packing slip show a date range), planned
    onto the owner's next disc and built for real; dated ``first_day``."""
    rng = random.Random(f"demo-{owner.username}-{number}")
    for days in (0, 23):
        taken = first_day - dt.timedelta(days=60 - days)
        jpeg = demo_jpeg(rng, taken.replace(tzinfo=None), SMALL)
        library.add_item(owner, io.BytesIO(jpeg), f"IMG_{number}{days:02d}.JPG")
    disc = plan_next_disc(owner, medium=medium, allow_partial=True, now=first_day)
    built = build.build_disc(disc.pk) if disc else None
    if built is None or built.status != DiscStatus.VERIFIED:
        raise CommandError(f"demo disc {number} of {owner.username} did not build: {built and built.last_error}")
    Disc.objects.filter(pk=built.pk).update(planned_at=first_day, built_at=first_day, verified_at=first_day)
    return built


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


def load_demo_queue(staff, progress=lambda people: people) -> int:
    """Create the queue's demo subscribers and copies (once); returns the
    number of copies.  ``progress`` wraps the list of people (a progress bar)."""
    User = get_user_model()
    if User.objects.filter(username=PEOPLE[0][0]).exists():
        return 0
    now = timezone.now()
    copies = 0
    # Not one transaction: each disc is built (files written, copies queued) as the engine always does.
    for username, first, last, medium, address in progress(PEOPLE):
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
            copy = disc.copies.get()  # queued by the build
            _walk(copy, target, staff, number)
            # Demo only: spread the history over the past days so ages and the throughput chart look lived in.
            events = list(copy.events.order_by("at", "id"))
            step = age / (len(events) + 1)
            for i, event in enumerate(events):
                CopyEvent.objects.filter(pk=event.pk).update(at=now - age + step * i)
            DiscCopy.objects.filter(pk=copy.pk).update(status_changed_at=now - age + step * (len(events) - 1))
            copies += 1
    return copies
