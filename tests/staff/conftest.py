"""Copies in the states the staff pages show, made through the real transitions."""

import pytest

from exporter import fulfillment
from exporter.models import CopyReason, CopyStatus, DiscCopy, DiscEntry, EntryKind
from tests.factories import add_sized, verified_disc

MAIN_PATH = [
    CopyStatus.QUEUED,
    CopyStatus.CLAIMED,
    CopyStatus.BURNED,
    CopyStatus.CHECKED,
    CopyStatus.LABELLED,
    CopyStatus.SHIPPED,
    CopyStatus.DELIVERED,
]
# Every state a copy can be walked to here: the main path, and returned.
EVERY_STATE = [*MAIN_PATH, CopyStatus.RETURNED]


def walk(copy: DiscCopy, target: str, staff) -> DiscCopy:
    """Move a copy along the main path up to ``target`` (or to returned, via shipped)."""
    steps = {
        CopyStatus.CLAIMED: lambda: fulfillment.claim_copies([copy.pk], staff, drive="Drive A"),
        CopyStatus.BURNED: lambda: fulfillment.mark_burned(copy.pk, staff, drive="Drive A", media_batch="B-1"),
        CopyStatus.CHECKED: lambda: fulfillment.record_read_back(
            copy.pk, staff, drive="Drive B", media_batch="B-1", method="sha256", value=copy.disc.image_sha256
        ),
        CopyStatus.LABELLED: lambda: fulfillment.mark_labelled(copy.pk, staff),
        CopyStatus.SHIPPED: lambda: fulfillment.ship(
            [copy.pk], staff, carrier="royal-mail", tracking_number="AB123456789GB"
        ),
        CopyStatus.DELIVERED: lambda: fulfillment.mark_delivered(copy.pk, staff),
    }
    stop = CopyStatus.SHIPPED if target == CopyStatus.RETURNED else target
    for status in MAIN_PATH[1 : MAIN_PATH.index(stop) + 1]:
        steps[status]()
    if target == CopyStatus.RETURNED:
        fulfillment.mark_returned(copy.pk, staff)
    copy.refresh_from_db()
    assert copy.status == target
    return copy


def new_copy(owner, staff, target: str = CopyStatus.QUEUED, medium: str = "cd") -> DiscCopy:
    disc = verified_disc(owner, medium=medium)
    return walk(disc.copies.get(reason=CopyReason.FIRST), target, staff)


@pytest.fixture
def make_copy(sam):
    def make(owner, target: str = CopyStatus.QUEUED, medium: str = "cd") -> DiscCopy:
        return new_copy(owner, sam, target, medium)

    return make


def carry(disc, captured_at: str | None, *, held_back: bool = False, kind: str = EntryKind.FILE) -> None:
    """Put an item taken at ``captured_at`` on the disc (rows only, as planning leaves them)."""
    item = add_sized(disc.owner, 100, f"{captured_at}.jpg")
    DiscEntry.objects.create(
        disc=disc, item=item, kind=kind, held_back=held_back, metadata={"captured_at": captured_at}
    )
