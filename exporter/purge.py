"""The purge: the one code path that erases stored bytes (docs/deletion.md).

A scheduled job of its own, apart from the code that records deletions
(exporter.deletion).  For each recently deleted item whose hold
(``DISCSUB_DELETE_HOLD_DAYS``) has passed it erases every stored version of
the original, the thumbnails, and every object version where the bucket
keeps versions (exporter.storage.erase_object).  Staged copies live only
in a build's work folder while that build runs (exporter.build removes it,
exporter.cleanup a killed build's); the purge waits until every disc that
carries the item is built, so no build stages it again.

The order is safe under kills and storage errors:

1. in one transaction, under the item's lock: re-check that it is still
   deleted, not undone, its hold passed; write a :class:`PurgeRecord`
   "erasing" listing each object (name, size, sha256).  From then on
   :func:`exporter.deletion.undelete_item` refuses the item;
2. erase each object, marking it erased in the record as it goes;
3. in one transaction: mark the record "erased" and set ``erased_at``.

A kill between steps leaves an "erasing" record that the next pass finishes
(step 2 again, for what is not marked, then step 3).  A storage error marks
the record "failed" with what failed; the item stays deleted, not erased,
and the next pass tries again.  The catalog never says "erased" while bytes
remain, and never loses bytes it still calls present.

Before erasing, the guard (exporter.purge_guard) compares what is due with
limits; a group over a limit waits for staff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from exporter import deletion, failures, storage, thumbnails
from exporter.models import (
    DiscEntry,
    DiscStatus,
    EntryKind,
    ItemVersion,
    JobRun,
    MediaItem,
    PurgeHold,
    PurgeRecord,
    PurgeStatus,
)

log = logging.getLogger(__name__)

JOB_NAME = "purge"
ERASED, HELD, WAITING = "erased", "held", "waiting"

# Test-only: called with the name of each step as it is reached ("recorded",
# "object", "erased"); raising there stands for a kill at that point.
Crash = Callable[[str], None] | None


@dataclass
class Outcome:
    """What the pass did, or would do, with one item (``manage.py purge --json``)."""

    item: str  # its public id
    user: str
    action: str  # erased, held or waiting
    reason: str
    item_id: int = 0
    size: int = 0

    def as_json(self) -> dict:
        return {"item": self.item, "user": self.user, "action": self.action, "reason": self.reason}


def _rule(item: MediaItem) -> str:
    return f"deleted {item.deleted_at:%Y-%m-%d %H:%M} UTC, held {deletion.hold_days().days} days"


def _unbuilt_discs(item_ids: Iterable[int]) -> dict[int, int]:
    """item id -> the number of a disc that carries its bytes and is not built yet."""
    rows = (
        DiscEntry.objects.filter(item_id__in=list(item_ids), kind=EntryKind.FILE, held_back=False)
        .exclude(disc__status=DiscStatus.VERIFIED)
        .values_list("item_id", "disc__number")
    )
    return dict(rows)


def _waiting(item: MediaItem, now: dt.datetime, unbuilt: dict[int, int]) -> str:
    """Why ``item`` may not be erased at ``now`` ("" when it may)."""
    if not deletion.is_recently_deleted(item):
        return "no longer deleted"
    after = deletion.erase_after(item)
    if after > now:
        return f"in its hold until {after:%Y-%m-%d %H:%M} UTC"
    if item.pk in unbuilt:
        return f"disc {unbuilt[item.pk]} carries it and is not built yet"
    return ""


def _outcome(item: MediaItem, action: str, reason: str, size: int = 0) -> Outcome:
    return Outcome(str(item.public_id), item.owner.get_username(), action, reason, item.pk, size)


def _thumbnail_objects(item: MediaItem) -> list[dict]:
    """The item's thumbnails and placeholder markers, hashed where stored.
    Every name is listed, stored or not: a bucket that keeps versions may
    hold bytes behind a delete marker.  Read before the record's
    transaction: storage I/O holds no lock."""
    found = []
    for number in item.versions.values_list("number", flat=True):
        public_id = str(item.public_id)
        for name in (thumbnails.storage_name_for(public_id, number), thumbnails.marker_name_for(public_id, number)):
            size = sha256 = None
            if default_storage.exists(name):
                with default_storage.open(name, "rb") as fh:
                    data = fh.read()
                size, sha256 = len(data), hashlib.sha256(data).hexdigest()
            found.append(
                {"kind": "thumbnail", "storage": "default", "name": name, "version": number}
                | {"size": size, "sha256": sha256}
            )
    return found


def _original_objects(item: MediaItem) -> list[dict]:
    return [
        {"kind": "original", "storage": "default", "name": v.storage_name, "version": v.number}
        | {"size": v.size, "sha256": v.sha256}
        for v in ItemVersion.objects.filter(item=item).order_by("number")
    ]


def _begin(
    item_id: int, now: dt.datetime, approved_by: str, hold: PurgeHold | None, thumbs: list[dict]
) -> tuple[PurgeRecord | None, str]:
    """Step 1: the re-check and the "erasing" record, in one transaction
    under the item's lock.  Returns (record, "") or (None, why not)."""
    with transaction.atomic():
        item = MediaItem.objects.select_for_update(of=("self",)).select_related("owner").get(pk=item_id)
        record = PurgeRecord.objects.select_for_update().filter(item=item).exclude(status=PurgeStatus.ERASED).first()
        if record is not None:  # a pass that was killed, or met a storage error: finish it
            record.status, record.attempts = PurgeStatus.ERASING, record.attempts + 1
            record.approved_by = record.approved_by or approved_by
            record.save(update_fields=["status", "attempts", "approved_by"])
            return record, ""
        why = _waiting(item, now, _unbuilt_discs([item.pk]))
        if why:
            return None, why
        rule = _rule(item)
        if hold is not None:
            rule += f"; over a limit, approved with hold #{hold.pk}"
        record = PurgeRecord.objects.create(
            item=item,
            item_public_id=item.public_id,
            owner=item.owner,
            rule=rule,
            approved_by=approved_by,
            hold=hold,
            stored=_original_objects(item) + thumbs,
            started_at=now,
        )
        return record, ""


def erase_item(
    item_id: int,
    now: dt.datetime | None = None,
    *,
    approved_by: str = "",
    hold: PurgeHold | None = None,
    crash: Crash = None,
) -> Outcome:
    """Erase one item's stored bytes, if it may go (or finish an erasure
    that began); see the module's docstring for the order of the steps."""
    now = now or timezone.now()
    item = MediaItem.objects.select_related("owner").get(pk=item_id)
    record, why = _begin(item_id, now, approved_by, hold, _thumbnail_objects(item))
    if record is None:
        return _outcome(item, WAITING, why)
    if crash:
        crash("recorded")
    current = None
    try:
        for current in record.stored:
            if current.get("erased"):
                continue
            current["versions"] = storage.erase_object(default_storage, current["name"])
            current["erased"] = True
            PurgeRecord.objects.filter(pk=record.pk).update(stored=record.stored)
            if crash:
                crash("object")
    except Exception as exc:  # storage refused: the record says what, the next pass tries again
        kind, message = failures.describe(exc, hide=[current["name"]] if current else ())
        record.status = PurgeStatus.FAILED
        record.error = f"{current['kind']} version {current['version']}: {kind}: {message}"
        record.save(update_fields=["status", "error"])
        log.warning("purge of item %s failed: %s", item_id, record.error)
        return _outcome(item, WAITING, f"erasure failed, tried again by the next pass ({record.error})")
    if crash:
        crash("erased")
    with transaction.atomic():
        locked = MediaItem.objects.select_for_update().get(pk=item_id)
        locked.erased_at = now
        locked.save(update_fields=["erased_at"])
        record.status, record.finished_at, record.error = PurgeStatus.ERASED, now, ""
        record.save(update_fields=["status", "finished_at", "error"])
    approval = f"; approved by {record.approved_by}" if record.approved_by else ""
    return _outcome(item, ERASED, record.rule + approval, record.size)


def plan(now: dt.datetime | None = None) -> tuple[list[Outcome], list[MediaItem]]:
    """What the pass would do at ``now``, reading only: the outcomes of the
    items that must wait, and the items due (their hold passed, or an
    erasure of theirs began).  The guard decides which of the due ones go."""
    now = now or timezone.now()
    items = list(
        MediaItem.objects.filter(deletion.recently_deleted()).select_related("owner").order_by("owner_id", "pk")
    )
    unbuilt = _unbuilt_discs(i.pk for i in items)
    begun = set(PurgeRecord.objects.exclude(status=PurgeStatus.ERASED).values_list("item_id", flat=True))
    waiting, due = [], []
    for item in items:
        why = "" if item.pk in begun else _waiting(item, now, unbuilt)
        if why:
            waiting.append(_outcome(item, WAITING, why))
        else:
            due.append(item)
    return waiting, due


def run_purge(now: dt.datetime | None = None, *, dry_run: bool = False, crash: Crash = None) -> list[Outcome]:
    """The scheduled pass: erase every due item the guard lets go; with
    ``dry_run`` only say what it would do.  Selects by state: a missed pass
    catches up, a doubled one finds nothing (an item being erased by the
    other is finished by whichever pass gets its lock)."""
    from exporter import purge_guard

    now = now or timezone.now()
    run = None if dry_run else JobRun.objects.create(name=JOB_NAME, host=socket.gethostname(), started_at=now)
    outcomes, due = plan(now)
    decisions = purge_guard.decide(due, now, record=not dry_run)
    for item in due:
        decision = decisions[item.pk]
        if decision.held:
            outcomes.append(_outcome(item, HELD, decision.reason))
        elif dry_run:
            outcomes.append(_outcome(item, ERASED, f"dry run, would erase: {_rule(item)}"))
        else:
            outcomes.append(erase_item(item.pk, now, approved_by=decision.approved_by, hold=decision.hold, crash=crash))
    if run is not None:
        counts = {action: sum(o.action == action for o in outcomes) for action in (ERASED, HELD, WAITING)}
        run.note = f"{counts[ERASED]} erased, {counts[HELD]} held by the guard, {counts[WAITING]} waiting"
        run.finished_at = timezone.now()
        run.save(update_fields=["note", "finished_at"])
    return outcomes
