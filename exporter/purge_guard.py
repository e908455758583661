"""The guard in front of the purge: rogue code cannot rush an erasure.

Before the purge erases anything (exporter.purge), the items due are grouped
per subscriber and compared with limits (docs/deletion.md):

- **per subscriber**: more than ``DISCSUB_PURGE_MAX_LIBRARY_PERCENT`` of
  their items, or of their bytes, due within one day (what is due now plus
  what was erased in the last 24 hours without an approval), and more than
  the floor (``DISCSUB_PURGE_FLOOR_ITEMS`` items or ``DISCSUB_PURGE_FLOOR_MB``
  MB), so a small library deleting a few photos purges on time;
- **service-wide**: more than ``DISCSUB_PURGE_MAX_GB_PER_DAY`` within one
  day, or more than ``DISCSUB_PURGE_JUMP_FACTOR`` times the trailing daily
  average of the last ``DISCSUB_PURGE_TRAILING_DAYS`` days, once over
  ``DISCSUB_PURGE_SERVICE_FLOOR_MB``.

A group over a limit becomes a :class:`PurgeHold`: nothing in it is erased,
staff see it on their dashboard and in ``export_status``, and it waits for a
named staff member to :func:`approve` it (their name goes on every purge
record) or to :func:`cancel` it (every item comes back to the library).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from exporter import deletion
from exporter.library import LibraryError
from exporter.models import HoldStatus, ItemVersion, MediaItem, PurgeHold, PurgeRecord, PurgeStatus
from exporter.quotas import GB, human_size

DAY = dt.timedelta(days=1)
MB = 1024**2
SERVICE = "service"


class GuardError(Exception):
    """A staff request the guard refuses, with a message for them."""


@dataclass
class Decision:
    """What the guard says of one due item."""

    held: bool = False
    reason: str = ""
    approved_by: str = ""
    hold: PurgeHold | None = None


@dataclass
class _Group:
    owner_id: int
    username: str
    items: list[int]
    bytes: int = 0
    recent_items: int = 0
    recent_bytes: int = 0
    library_items: int = 0
    library_bytes: int = 0

    @property
    def scope(self) -> str:
        return f"user:{self.owner_id}"

    @property
    def due_items(self) -> int:
        return len(self.items) + self.recent_items

    @property
    def due_bytes(self) -> int:
        return self.bytes + self.recent_bytes

    def over(self) -> str:
        """Why this subscriber's group is over the limit ("" when it is not)."""
        percent = settings.DISCSUB_PURGE_MAX_LIBRARY_PERCENT
        floor_items, floor_bytes = settings.DISCSUB_PURGE_FLOOR_ITEMS, settings.DISCSUB_PURGE_FLOOR_MB * MB
        too_many = self.due_items > floor_items and self.due_items * 100 > percent * self.library_items
        too_big = self.due_bytes > floor_bytes and self.due_bytes * 100 > percent * self.library_bytes
        if not (too_many or too_big):
            return ""
        return (
            f"{self.username}: {self.due_items:,} of {self.library_items:,} items "
            f"({_percent(self.due_items, self.library_items)}) and {human_size(self.due_bytes)} of "
            f"{human_size(self.library_bytes)} ({_percent(self.due_bytes, self.library_bytes)}) due within a day; "
            f"the limit is {percent}% of a library, over {floor_items:,} items or {human_size(floor_bytes)}"
        )


def _percent(part: int, whole: int) -> str:
    return f"{part * 100 / whole:.0f}%" if whole else "all"


def _item_bytes(item_ids: list[int]) -> dict[int, int]:
    rows = ItemVersion.objects.filter(item_id__in=item_ids).values("item_id").annotate(s=Sum("size"))
    return {row["item_id"]: row["s"] for row in rows}


def _erased_since(since: dt.datetime, until: dt.datetime | None = None, *, unapproved: bool = True) -> list:
    records = PurgeRecord.objects.filter(status=PurgeStatus.ERASED, finished_at__gt=since)
    if until is not None:
        records = records.filter(finished_at__lte=until)
    if unapproved:
        records = records.filter(approved_by="")
    return list(records.values_list("owner_id", "stored"))


def _size(stored: list[dict]) -> int:
    return sum(obj.get("size") or 0 for obj in stored if obj.get("kind") == "original")


def _groups(items: list[MediaItem], now: dt.datetime) -> list[_Group]:
    """The due items per subscriber, with what was erased in the last day and
    the size of their library (items not erased).  Four queries."""
    by_owner: dict[int, _Group] = {}
    for item in items:
        group = by_owner.setdefault(item.owner_id, _Group(item.owner_id, item.owner.get_username(), []))
        group.items.append(item.pk)
    sizes = _item_bytes([item.pk for item in items])
    for group in by_owner.values():
        group.bytes = sum(sizes.get(pk, 0) for pk in group.items)
    for owner_id, stored in _erased_since(now - DAY):
        if owner_id in by_owner:
            by_owner[owner_id].recent_items += 1
            by_owner[owner_id].recent_bytes += _size(stored)
    library = MediaItem.objects.filter(owner_id__in=by_owner, erased_at__isnull=True)
    for row in library.values("owner_id").annotate(n=Count("pk")):
        by_owner[row["owner_id"]].library_items = row["n"] + by_owner[row["owner_id"]].recent_items
    versions = ItemVersion.objects.filter(item__owner_id__in=by_owner, item__erased_at__isnull=True)
    for row in versions.values("item__owner_id").annotate(s=Sum("size")):
        group = by_owner[row["item__owner_id"]]
        group.library_bytes = row["s"] + group.recent_bytes
    return list(by_owner.values())


def _service_over(due_bytes: int, now: dt.datetime) -> str:
    """Why the service as a whole is over its limits ("" when it is not)."""
    total = due_bytes + sum(_size(stored) for _, stored in _erased_since(now - DAY))
    per_day = settings.DISCSUB_PURGE_MAX_GB_PER_DAY * GB
    if total > per_day:
        return f"the service: {human_size(total)} due within a day; the limit is {human_size(per_day)} a day"
    days = settings.DISCSUB_PURGE_TRAILING_DAYS
    erased = _erased_since(now - DAY * (days + 1), now - DAY, unapproved=False)
    average = sum(_size(stored) for _, stored in erased) / days if days else 0
    factor, floor = settings.DISCSUB_PURGE_JUMP_FACTOR, settings.DISCSUB_PURGE_SERVICE_FLOOR_MB * MB
    if total > floor and total > factor * average:
        return (
            f"the service: {human_size(total)} due within a day, over {factor} times the daily average of the "
            f"last {days} days ({human_size(int(average))}) and over {human_size(floor)}"
        )
    return ""


def _hold(scope: str, owner_id: int | None, reason: str, item_ids: list[int], now: dt.datetime, group=None):
    """The open hold of ``scope``, created or grown to cover ``item_ids``."""
    hold = PurgeHold.objects.select_for_update().filter(scope=scope, status=HoldStatus.HELD).first()
    if hold is None:
        hold = PurgeHold.objects.create(scope=scope, owner_id=owner_id, reason=reason, created_at=now)
    hold.items.add(*item_ids)
    held = hold.items.all()
    hold.items_due = held.count()
    hold.bytes_due = ItemVersion.objects.filter(item__in=held).aggregate(s=Sum("size", default=0))["s"]
    if group is not None:
        hold.library_items, hold.library_bytes = group.library_items, group.library_bytes
    hold.save()
    return hold


def decide(due: list[MediaItem], now: dt.datetime | None = None, *, record: bool = True) -> dict[int, Decision]:
    """The guard's word on each of the ``due`` items (by primary key).  With
    ``record`` (a real pass, not a dry run) a group over a limit gets its
    :class:`PurgeHold`, or joins the one already open for its scope."""
    now = now or timezone.now()
    decisions = {item.pk: Decision() for item in due}
    ids = list(decisions)
    # An erasure that began was let through already: it must finish.
    begun = set(
        PurgeRecord.objects.filter(item_id__in=ids).exclude(status=PurgeStatus.ERASED).values_list("item_id", flat=True)
    )
    held_now = {h.scope: h for h in PurgeHold.objects.filter(status=HoldStatus.HELD)}
    approved = {}
    for hold in PurgeHold.objects.filter(status=HoldStatus.APPROVED, items__in=ids).distinct():
        for pk in hold.items.filter(pk__in=ids).values_list("pk", flat=True):
            approved[pk] = hold
    with transaction.atomic():
        free = []
        for group in _groups([i for i in due if i.pk not in begun and i.pk not in approved], now):
            hold = held_now.get(group.scope)
            reason = hold.reason if hold else group.over()
            if not reason:
                free.extend(group.items)
                continue
            if record:
                hold = _hold(group.scope, group.owner_id, reason, group.items, now, group)
            for pk in group.items:
                decisions[pk] = Decision(held=True, reason=_held_reason(hold, reason), hold=hold)
        sizes = _item_bytes(free)
        hold = held_now.get(SERVICE)
        reason = hold.reason if hold else _service_over(sum(sizes.values()), now) if free else ""
        if reason:
            if record:
                hold = _hold(SERVICE, None, reason, free, now)
            for pk in free:
                decisions[pk] = Decision(held=True, reason=_held_reason(hold, reason), hold=hold)
    for pk, hold in approved.items():  # staff looked at these: they go
        decisions[pk] = Decision(approved_by=hold.decided_by, hold=hold)
    return decisions


def _held_reason(hold: PurgeHold | None, reason: str) -> str:
    where = f"hold #{hold.pk}, " if hold is not None and hold.pk else ""
    return f"{where}waiting for staff: {reason}"


# --- staff ------------------------------------------------------------------------


def open_holds():
    """The holds waiting for staff, oldest first (the dashboard's alert, export_status)."""
    return PurgeHold.objects.filter(status=HoldStatus.HELD).select_related("owner").order_by("created_at", "pk")


def _decide_hold(hold_id: int, by: str, to: str, now: dt.datetime | None) -> PurgeHold:
    if not by.strip():
        raise GuardError("Say who decides (a staff member's name).")
    hold = PurgeHold.objects.select_for_update().filter(pk=hold_id).first()
    if hold is None:
        raise GuardError(f"There is no purge hold #{hold_id}.")
    if hold.status != HoldStatus.HELD:
        raise GuardError(f"Purge hold #{hold_id} is {hold.get_status_display().lower()} already.")
    hold.status, hold.decided_by, hold.decided_at = to, by.strip(), now or timezone.now()
    hold.save(update_fields=["status", "decided_by", "decided_at"])
    return hold


def approve(hold_id: int, by: str, now: dt.datetime | None = None) -> PurgeHold:
    """Let a held group go: the next purge pass erases its items, ``by`` on each record."""
    with transaction.atomic():
        return _decide_hold(hold_id, by, HoldStatus.APPROVED, now)


def cancel(hold_id: int, by: str, now: dt.datetime | None = None) -> tuple[PurgeHold, int]:
    """Bring every item of a held group back to the library (undone, as it
    was); returns the hold and how many items came back."""
    with transaction.atomic():
        hold = _decide_hold(hold_id, by, HoldStatus.CANCELLED, now)
        back = 0
        for item in hold.items.filter(deletion.recently_deleted()).order_by("pk"):
            try:
                deletion.undelete_item(item)
            except LibraryError:  # its erasure began before the hold: it cannot come back
                continue
            back += 1
    return hold, back


def owner_name(hold: PurgeHold) -> str:
    """Whose items a hold covers, for people."""
    if hold.scope == SERVICE:
        return "every subscriber"
    user = hold.owner or get_user_model().objects.filter(pk=hold.scope.removeprefix("user:")).first()
    return user.get_username() if user else "a closed account"
