"""Recording library changes in the subscriber's change feed."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from exporter.models import Change, ChangeFeed, MediaItem


def next_seq(owner: AbstractBaseUser) -> int:
    """Hand out the owner's next sequence number.

    Locks the owner's feed row until the caller's transaction ends, so one
    subscriber's changes commit in ``seq`` order: a planner can never see
    change N+1 committed while change N is still in flight.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("next_seq() must run inside the transaction that records the change")
    ChangeFeed.objects.get_or_create(owner=owner)
    feed = ChangeFeed.objects.select_for_update().get(owner=owner)
    feed.last_seq += 1
    feed.save(update_fields=["last_seq"])
    return feed.last_seq


def record_change(item: MediaItem, kind: str) -> Change:
    """Record that ``item`` changed; call it in the transaction that changed it."""
    return Change.objects.create(owner_id=item.owner_id, seq=next_seq(item.owner), item=item, kind=kind)
