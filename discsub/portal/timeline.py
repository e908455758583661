"""A disc's story for its owner: the image, every copy and every envelope.

Staff notes (drives, media batches, internal ids) stay out of it; the
subscriber sees what happened, when, and how to follow the envelope."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from exporter import carriers
from exporter.models import CopyEvent, CopyReason, CopyStatus, Disc, DiscCopy, DiscEvent, DiscStatus

# The steps every disc goes through, in order, with the events that reach them.
STEPS = [
    ("planned", "Planned"),
    ("made", "Image made"),
    ("checked", "Image checked"),
    ("burned", "Burned"),
    ("shipped", "Shipped"),
    ("delivered", "Delivered"),
]
_DISC_STEP = {DiscStatus.PLANNED: "planned", DiscStatus.BUILT: "made", DiscStatus.VERIFIED: "checked"}
_COPY_STEP = {
    CopyStatus.BURNED: "burned",
    CopyStatus.CHECKED: "burned",
    CopyStatus.LABELLED: "burned",
    CopyStatus.SHIPPED: "shipped",
    CopyStatus.DELIVERED: "delivered",
}
_DISC_TEXT = {
    DiscStatus.PLANNED: "Planned: what this disc carries is fixed",
    DiscStatus.BUILDING: "Making the disc image",
    DiscStatus.BUILT: "Disc image made",
    DiscStatus.VERIFIED: "Disc image read back and checked file by file",
    DiscStatus.FAILED: "An attempt to make the image failed; we try again automatically",
}
_COPY_TEXT = {
    CopyStatus.QUEUED: "Waiting to be burned",
    CopyStatus.CLAIMED: "Being burned",
    CopyStatus.BURNED: "Burned to a disc",
    CopyStatus.CHECKED: "Burned disc read back and checked",
    CopyStatus.LABELLED: "Labelled and packed",
    CopyStatus.SHIPPED: "Shipped",
    CopyStatus.DELIVERED: "Delivered",
    CopyStatus.RETURNED: "Came back to us undeliverable: please check your address",
    CopyStatus.LOST: "You reported it lost",
    CopyStatus.DAMAGED: "You reported it damaged",
}


@dataclass
class Entry:
    at: dt.datetime
    text: str
    kind: str  # "disc", "copy", "problem", "replacement"
    tracking_url: str | None = None
    tracking_number: str = ""
    carrier: str = ""


@dataclass
class Step:
    key: str
    label: str
    at: dt.datetime | None
    current: bool = False


def _copy_text(copy: DiscCopy, event: CopyEvent) -> tuple[str, str]:
    if event.to_status == CopyStatus.QUEUED and not event.from_status and copy.reason == CopyReason.REPLACEMENT:
        return "A replacement copy was queued for burning", "replacement"
    if event.to_status in (CopyStatus.LOST, CopyStatus.DAMAGED, CopyStatus.RETURNED):
        return _COPY_TEXT[event.to_status], "problem"
    if event.to_status == CopyStatus.QUEUED and event.from_status:
        return "Burning again (the last attempt did not pass our checks)", "copy"
    if event.to_status == CopyStatus.SHIPPED and event.from_status == CopyStatus.RETURNED:
        return "Shipped again to your corrected address", "copy"
    return _COPY_TEXT.get(event.to_status, event.to_status), "copy"


def build(disc: Disc, disc_events: list[DiscEvent], copies: list[DiscCopy]) -> tuple[list[Step], list[Entry]]:
    """The step bar (each step's date, the current one marked) and the full
    story, newest last.  ``copies`` come with ``shipment`` and ``events``
    loaded (see :func:`load`)."""
    reached: dict[str, dt.datetime] = {}
    entries: list[Entry] = []
    for event in disc_events:
        if event.from_status == event.to_status:
            continue  # notes within one state (an item held back) are for staff
        entries.append(Entry(event.at, _DISC_TEXT.get(event.to_status, event.to_status), "disc"))
        step = _DISC_STEP.get(event.to_status)
        if step:
            reached.setdefault(step, event.at)
    # The copy the subscriber is waiting for: the newest that is not lost or damaged.
    live = [c for c in copies if c.status not in (CopyStatus.LOST, CopyStatus.DAMAGED)]
    current_copy = live[-1] if live else (copies[-1] if copies else None)
    for copy in copies:
        for event in copy.events.all():
            text, kind = _copy_text(copy, event)
            entry = Entry(event.at, text, kind)
            if event.to_status == CopyStatus.SHIPPED and copy.shipment is not None:
                entry.carrier = carriers.carrier_name(copy.shipment.carrier)
                entry.tracking_number = copy.shipment.tracking_number
                entry.tracking_url = carriers.tracking_url(copy.shipment.carrier, copy.shipment.tracking_number)
            entries.append(entry)
            step = _COPY_STEP.get(event.to_status)
            if step and copy is current_copy:
                reached[step] = event.at
    entries.sort(key=lambda e: e.at)
    steps = [Step(key, label, reached.get(key)) for key, label in STEPS]
    done = [s for s in steps if s.at]
    if done:
        done[-1].current = True
    return steps, entries


def load(disc: Disc) -> tuple[list[DiscEvent], list[DiscCopy]]:
    """Three queries: the disc's events, its copies with their envelopes, their events."""
    events = list(DiscEvent.objects.filter(disc=disc).order_by("at", "id"))
    copies = DiscCopy.objects.filter(disc=disc).select_related("shipment").prefetch_related("events")
    return events, list(copies.order_by("created_at", "id"))


def where_is_it(disc: Disc, copies: list[DiscCopy]) -> tuple[str, str]:
    """A short status for lists (text, tone) from the image and its newest live copy."""
    if disc.status in (DiscStatus.PLANNED, DiscStatus.BUILDING, DiscStatus.BUILT):
        return "Being made", "work"
    if disc.status == DiscStatus.FAILED:
        return ("Delayed: we are looking into it" if disc.failure_permanent else "Delayed: retrying"), "warn"
    live = [c for c in copies if c.status not in (CopyStatus.LOST, CopyStatus.DAMAGED)]
    copy = live[-1] if live else None
    if copy is None:
        return "Ready", "work"
    if copy.status in (CopyStatus.QUEUED, CopyStatus.CLAIMED, CopyStatus.BURNED, CopyStatus.CHECKED):
        return ("Replacement being burned" if copy.reason == CopyReason.REPLACEMENT else "Being burned"), "work"
    if copy.status == CopyStatus.LABELLED:
        return "Ready to ship", "work"
    if copy.status == CopyStatus.SHIPPED:
        return "On its way", "go"
    if copy.status == CopyStatus.DELIVERED:
        return "Delivered", "done"
    if copy.status == CopyStatus.RETURNED:
        return "Returned: check your address", "warn"
    return copy.get_status_display(), "work"
