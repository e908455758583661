"""Deletes that wait: the trash, Recently deleted, and the way back.

An item's life (docs/deletion.md)::

    live ──trash_item──▶ trashed ──delete_now / empty_trash──▶ deleted ──purge──▶ erased
     ▲                     │                                   │
     └────restore_item─────┘◀──────────undelete_item───────────┘

- **Trash**: one click, undone by :func:`restore_item`.  After
  ``DISCSUB_TRASH_DAYS`` the scheduled :func:`empty_trash` moves it on.
- **Recently deleted** (status ``deleted``, ``erased_at`` unset): the
  deletion is recorded and the next disc carries it, yet
  :func:`undelete_item` still brings the item back until the purge
  (exporter.purge) erases its bytes, ``DISCSUB_DELETE_HOLD_DAYS`` after.
- **Erased**: ``erased_at`` set; nothing comes back.

Every move locks the item, re-checks its state, raises
:class:`~exporter.library.LibraryError` for a move its state forbids, and
records one change in the feed in the same transaction (the change is the
move's event row).  The disc series stays exactly-once through the planner's
net effect (exporter.planning): a trashed item ships nothing; a deletion
ships once, to the first disc planned after it, and only for an item a disc
already holds; an undo before that disc is absorbed; an undo after it resets
what the discs are known to hold, so the next disc carries the item again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from exporter import thumbnails
from exporter.feed import record_change
from exporter.library import LibraryError
from exporter.models import (
    ChangeKind,
    Disc,
    DiscEntry,
    EntryKind,
    ItemStatus,
    ItemVersion,
    JobRun,
    MediaItem,
    PurgeRecord,
    PurgeStatus,
)

log = logging.getLogger(__name__)

EMPTY_TRASH_JOB = "empty_trash"
BATCH = 500


def trash_days() -> dt.timedelta:
    return dt.timedelta(days=settings.DISCSUB_TRASH_DAYS)


def hold_days() -> dt.timedelta:
    return dt.timedelta(days=settings.DISCSUB_DELETE_HOLD_DAYS)


def trash_expires_on(item: MediaItem) -> dt.datetime | None:
    """When a trashed item moves to Recently deleted by itself; None for an
    item not in the trash."""
    if item.status != ItemStatus.TRASHED or item.trashed_at is None:
        return None
    return item.trashed_at + trash_days()


def erase_after(item: MediaItem) -> dt.datetime | None:
    """When the purge may erase a recently deleted item's bytes (no sooner;
    the guard may hold it longer); None for an item that is not recently
    deleted (live, trashed or already erased)."""
    if not is_recently_deleted(item):
        return None
    return item.deleted_at + hold_days()


def is_recently_deleted(item: MediaItem) -> bool:
    """Deleted, its bytes not erased yet: :func:`undelete_item` can still bring it back."""
    return item.status == ItemStatus.DELETED and item.erased_at is None and item.deleted_at is not None


def recently_deleted() -> Q:
    """The filter of recently deleted items (served by a partial index)."""
    return Q(status=ItemStatus.DELETED, erased_at__isnull=True)


def due_for_purge(now: dt.datetime | None = None) -> Q:
    """The filter of recently deleted items whose hold has passed at ``now``."""
    return recently_deleted() & Q(deleted_at__lte=(now or timezone.now()) - hold_days())


@dataclass(frozen=True)
class DeletionFacts:
    """What the portal may truthfully say about an item's deletion.

    ``on_a_disc``: a disc already planned carries bytes of the item (discs
    made keep them, whatever happens here); ``next_disc_records_deletion``:
    the item is deleted and the next disc will record that;
    ``deletion_on_a_disc``: a planned disc already recorded the deletion.
    """

    on_a_disc: bool
    next_disc_records_deletion: bool
    deletion_on_a_disc: bool
    trash_expires_on: dt.datetime | None
    erase_after: dt.datetime | None
    erased_at: dt.datetime | None


def with_disc_facts(items: QuerySet) -> QuerySet:
    """``items`` annotated for :func:`deletion_facts` (one query for a whole list page)."""
    return items.annotate(
        on_a_disc=Exists(DiscEntry.objects.filter(item=OuterRef("pk"), kind=EntryKind.FILE, held_back=False))
    )


def deletion_facts(item: MediaItem) -> DeletionFacts:
    """Facts about ``item``'s deletion; no query if it came through :func:`with_disc_facts`."""
    on_a_disc = getattr(item, "on_a_disc", None)
    if on_a_disc is None:
        on_a_disc = DiscEntry.objects.filter(item=item, kind=EntryKind.FILE, held_back=False).exists()
    deleted = item.status == ItemStatus.DELETED
    return DeletionFacts(
        on_a_disc=on_a_disc,
        # What the planner will do (exporter.planning._net_effect): a deletion
        # ships for an item the discs hold, once.
        next_disc_records_deletion=deleted and bool(item.planned_version_number) and not item.deletion_planned,
        deletion_on_a_disc=deleted and item.deletion_planned,
        trash_expires_on=trash_expires_on(item),
        erase_after=erase_after(item),
        erased_at=item.erased_at,
    )


def _move(item: MediaItem, allowed_from: set[str], to: str, kind: str, now: dt.datetime | None, **extra) -> MediaItem:
    """Move ``item`` to ``to`` under its row lock; a move to the state it is
    already in does nothing (a doubled click, a rerun of a command)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = MediaItem.objects.select_for_update().get(pk=item.pk)
        if locked.status == to:
            return locked
        if locked.erased_at is not None:
            raise LibraryError("This item's stored bytes have been erased; it cannot come back.")
        if locked.status not in allowed_from:
            raise LibraryError(f"An item that is {locked.get_status_display().lower()} cannot be changed that way.")
        locked.status = to
        locked.trashed_at = now if to == ItemStatus.TRASHED else None
        locked.deleted_at = now if to == ItemStatus.DELETED else None
        for name, value in extra.items():
            setattr(locked, name, value)
        locked.save(update_fields=["status", "trashed_at", "deleted_at", *extra])
        record_change(locked, kind)
    item.refresh_from_db()
    return item


def trash_item(item: MediaItem, *, now: dt.datetime | None = None) -> MediaItem:
    """Live → trash.  Nothing ships while it is there."""
    return _move(item, {ItemStatus.LIVE}, ItemStatus.TRASHED, ChangeKind.TRASHED, now)


def restore_item(item: MediaItem) -> MediaItem:
    """Trash → live, as it was: what discs hold of it is unchanged."""
    return _move(item, {ItemStatus.TRASHED}, ItemStatus.LIVE, ChangeKind.RESTORED, None)


def delete_now(item: MediaItem, *, now: dt.datetime | None = None) -> MediaItem:
    """Trash → Recently deleted (also live → Recently deleted, for staff
    commands).  The next disc records the deletion if a disc holds the item;
    its bytes stay until the hold has passed and the purge erases them."""
    return _move(item, {ItemStatus.LIVE, ItemStatus.TRASHED}, ItemStatus.DELETED, ChangeKind.DELETED, now)


def undelete_item(item: MediaItem) -> MediaItem:
    """Recently deleted (or trash) → live, as long as its bytes are not erased.

    Refused once the purge has begun erasing it (a purge record that is
    not finished), and after.  If a disc was already planned with the deletion, the series says the
    item is gone: it is brought back as new, so the next disc carries its
    bytes and metadata again.  Otherwise the pending deletion is simply
    cancelled (the planner absorbs it) and the discs hold what they held.
    """
    with transaction.atomic():
        locked = MediaItem.objects.select_for_update().get(pk=item.pk)
        if PurgeRecord.objects.filter(item=locked).exclude(status=PurgeStatus.ERASED).exists():
            # The purge has begun (exporter.purge): some bytes may be gone already.
            raise LibraryError("This item's stored bytes are being erased; it cannot come back.")
        extra = {}
        if locked.status == ItemStatus.DELETED and locked.deletion_planned:
            extra = {"deletion_planned": False, "planned_version_number": 0, "planned_metadata_revision": 0}
        _move(locked, {ItemStatus.TRASHED, ItemStatus.DELETED}, ItemStatus.LIVE, ChangeKind.RESTORED, None, **extra)
    item.refresh_from_db()
    return item


def empty_trash(now: dt.datetime | None = None) -> JobRun:
    """The scheduled job: move every item trashed ``DISCSUB_TRASH_DAYS`` ago
    or more to Recently deleted, one item per transaction.  Selects by state
    (a missed run catches up; a doubled run finds nothing); an item restored
    (or restored and trashed again) since it was selected is left alone."""
    now = now or timezone.now()
    run = JobRun.objects.create(name=EMPTY_TRASH_JOB, host=socket.gethostname(), started_at=now)
    cutoff = now - trash_days()
    moved, last = 0, 0
    while True:
        ids = list(
            MediaItem.objects.filter(status=ItemStatus.TRASHED, trashed_at__lte=cutoff, pk__gt=last)
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH]
        )
        if not ids:
            break
        for pk in ids:
            with transaction.atomic():
                item = (
                    MediaItem.objects.select_for_update(skip_locked=True)
                    .filter(pk=pk, status=ItemStatus.TRASHED, trashed_at__lte=cutoff)
                    .first()
                )
                if item is not None:
                    delete_now(item, now=now)
                    moved += 1
        last = ids[-1]
    run.note = f"{moved} items moved from the trash to Recently deleted"
    run.finished_at = timezone.now()
    run.save(update_fields=["note", "finished_at"])
    return run


# --- storage accounting ------------------------------------------------------------


@dataclass(frozen=True)
class StorageUsage:
    """What one subscriber keeps in storage, in bytes.

    ``originals``: every stored version of every item not erased (live,
    trashed and recently deleted alike); ``thumbnails``: their stored
    thumbnails; ``images``: the disc images kept.  ``in_trash`` and
    ``waiting_erasure`` are the part of ``originals`` that belongs to
    trashed and to recently deleted items.
    """

    originals: int
    thumbnails: int
    images: int
    in_trash: int
    waiting_erasure: int
    items: int
    items_in_trash: int
    items_waiting_erasure: int

    @property
    def total(self) -> int:
        return self.originals + self.thumbnails + self.images


def storage_by_subscriber(
    owner_ids: Iterable[int] | None = None, *, limit: int | None = None
) -> dict[int, StorageUsage]:
    """:class:`StorageUsage` per subscriber (by user id), largest first,
    thumbnails not measured (they are not in the database); for
    ``owner_ids``, or the ``limit`` subscribers storing the most.  Three
    queries whatever the number of subscribers."""
    versions = ItemVersion.objects.filter(item__erased_at__isnull=True)
    if owner_ids is not None:
        versions = versions.filter(item__owner_id__in=list(owner_ids))
    trashed, deleted = Q(item__status=ItemStatus.TRASHED), Q(item__status=ItemStatus.DELETED)
    rows = (
        versions.values("item__owner_id")
        .annotate(
            originals=Sum("size", default=0),
            in_trash=Sum("size", filter=trashed, default=0),
            waiting=Sum("size", filter=deleted, default=0),
        )
        .order_by("-originals", "item__owner_id")
    )
    sums = {row["item__owner_id"]: row for row in (rows[:limit] if limit else rows)}
    counts = {
        row["owner_id"]: row
        for row in MediaItem.objects.filter(owner_id__in=list(sums), erased_at__isnull=True)
        .values("owner_id")
        .annotate(
            items=Count("pk"),
            in_trash=Count("pk", filter=Q(status=ItemStatus.TRASHED)),
            waiting=Count("pk", filter=Q(status=ItemStatus.DELETED)),
        )
    }
    images = dict(
        Disc.objects.filter(owner_id__in=list(sums))
        .exclude(image_name="")
        .values("owner_id")
        .annotate(s=Sum("image_size", default=0))
        .values_list("owner_id", "s")
    )
    return {
        owner_id: StorageUsage(
            originals=row["originals"],
            thumbnails=0,
            images=images.get(owner_id) or 0,
            in_trash=row["in_trash"],
            waiting_erasure=row["waiting"],
            items=counts[owner_id]["items"],
            items_in_trash=counts[owner_id]["in_trash"],
            items_waiting_erasure=counts[owner_id]["waiting"],
        )
        for owner_id, row in sums.items()
    }


def storage_usage(user: AbstractBaseUser, *, measure_thumbnails: bool = True) -> StorageUsage:
    """Bytes ``user`` keeps in storage (three queries; plus, unless
    ``measure_thumbnails`` is False, one storage look-up per stored version:
    thumbnail sizes are not in the database)."""
    usage = storage_by_subscriber([user.pk]).get(user.pk) or StorageUsage(0, 0, 0, 0, 0, 0, 0, 0)
    if not measure_thumbnails:
        return usage
    pairs = ItemVersion.objects.filter(item__owner=user, item__erased_at__isnull=True)
    pairs = pairs.values_list("item__public_id", "number")
    measured = thumbnails.stored_bytes((str(public_id), number) for public_id, number in pairs.iterator())
    return dataclasses.replace(usage, thumbnails=measured)
