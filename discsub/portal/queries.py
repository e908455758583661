"""Querysets the portal's pages share (each one query, whatever the number of rows)."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet, Subquery

from exporter.models import (
    Change,
    DiscEntry,
    EntryKind,
    HoldStatus,
    MediaItem,
    PurgeHold,
    PurgeRecord,
    PurgeStatus,
    Resolution,
)


def with_disc_state(items: QuerySet[MediaItem]) -> QuerySet[MediaItem]:
    """Annotate each item with ``waiting`` (a change no disc carries yet) and
    the number and public id of the latest disc holding its bytes."""
    holding = DiscEntry.objects.filter(item=OuterRef("pk"), kind=EntryKind.FILE, held_back=False).order_by(
        "-disc__number"
    )
    return items.annotate(
        waiting=Exists(Change.objects.filter(item=OuterRef("pk"), resolution=Resolution.PENDING)),
        disc_number=Subquery(holding.values("disc__number")[:1]),
        disc_public_id=Subquery(holding.values("disc__public_id")[:1]),
    )


def with_erasure_state(items: QuerySet[MediaItem]) -> QuerySet[MediaItem]:
    """Annotate each item with ``being_erased``: the purge has begun on it (a
    purge record not yet finished), so exporter.deletion.undelete_item
    refuses it although it is still recently deleted; and ``held``: the
    purge guard holds it for staff to approve or cancel (exporter.purge_guard)."""
    unfinished = PurgeRecord.objects.filter(item=OuterRef("pk")).exclude(status=PurgeStatus.ERASED)
    held = PurgeHold.objects.filter(items=OuterRef("pk"), status=HoldStatus.HELD)
    return items.annotate(being_erased=Exists(unfinished), held=Exists(held))
