"""Building and verifying a planned disc's image.

The lifecycle of an image: planned → building → built → verified, with
failed (and a retry time) on the side.  Every move is one function here that
claims the row with a conditional update, writes an event, and leaves the
slow I/O outside any transaction.  A verified image never changes.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from exporter import contents, iso, verify
from exporter.errors import IllegalTransition, SourceMismatch
from exporter.models import Disc, DiscEntry, DiscEvent, DiscStatus, ItemIssue, MediaItem

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=6)


def image_path(disc: Disc) -> Path:
    return Path(settings.IMAGES_DIR) / str(disc.owner_id) / f"disc-{disc.number:04d}.iso"


def _event(disc: Disc, from_status: str, to_status: str, note: str = "", actor=None) -> None:
    DiscEvent.objects.create(disc=disc, from_status=from_status, to_status=to_status, note=note[:4000], actor=actor)


def claim_for_build(disc_id: int, *, now: dt.datetime | None = None, actor=None) -> Disc | None:
    """planned/failed → building, if the disc is due; None when someone else has it."""
    now = now or timezone.now()
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    with transaction.atomic():
        disc = (
            Disc.objects.select_for_update(skip_locked=True)
            .filter(due, pk=disc_id, status__in=[DiscStatus.PLANNED, DiscStatus.FAILED])
            .first()
        )
        if disc is None:
            return None
        claimed = Disc.objects.filter(pk=disc.pk, status=disc.status).update(
            status=DiscStatus.BUILDING, attempts=F("attempts") + 1, last_error=""
        )
        if claimed != 1:
            return None
        _event(disc, disc.status, DiscStatus.BUILDING, actor=actor)
    disc.refresh_from_db()
    return disc


def _fail(disc: Disc, reason: str, *, now: dt.datetime | None = None) -> Disc:
    now = now or timezone.now()
    backoff = min(dt.timedelta(minutes=2 ** min(disc.attempts, 12)), MAX_BACKOFF)
    with transaction.atomic():
        moved = Disc.objects.filter(pk=disc.pk, status__in=[DiscStatus.BUILDING, DiscStatus.BUILT]).update(
            status=DiscStatus.FAILED, last_error=reason[:4000], next_attempt_at=now + backoff
        )
        if moved:
            _event(disc, disc.status, DiscStatus.FAILED, note=reason)
    disc.refresh_from_db()
    log.warning("disc %s failed: %s", disc.pk, reason)
    return disc


def _hold_back(disc: Disc, problems: dict) -> None:
    """Take the items whose source bytes failed off this disc, and flag them for staff."""
    with transaction.atomic():
        entries = DiscEntry.objects.select_for_update().filter(disc=disc, item_id__in=list(problems))
        for entry in entries:
            reason = str(problems[entry.item_id])
            entry.held_back = True
            entry.held_reason = reason
            entry.save(update_fields=["held_back", "held_reason"])
            kind = ItemIssue.Kind.MISSING_OBJECT if "missing" in reason else ItemIssue.Kind.CHECKSUM_MISMATCH
            ItemIssue.objects.create(item_id=entry.item_id, version=entry.version, kind=kind, message=reason)
            # The item is no longer planned at this version: a new upload (or
            # staff re-issuing it) puts it on a later disc.
            MediaItem.objects.filter(pk=entry.item_id).update(planned_version_number=entry.previous_version_number)
            _event(disc, DiscStatus.BUILDING, DiscStatus.BUILDING, note=f"held back item {entry.item_id}: {reason}")


def build_image(disc: Disc, *, progress: Callable[[int, int], None] | None = None) -> Disc:
    """Write the image of a disc that is ``building``; then verify it."""
    if disc.status != DiscStatus.BUILDING:
        raise IllegalTransition(f"disc {disc.pk} is {disc.status}, not building")
    dest = image_path(disc)
    dest.parent.mkdir(parents=True, exist_ok=True)
    epoch = int(disc.planned_at.timestamp())
    for _ in range(3):
        entries = list(DiscEntry.objects.filter(disc=disc).select_related("version").order_by("id"))
        files = contents.disc_files(disc, entries)
        try:
            result = iso.write_image(files, dest, disc.volume_id, epoch, progress=progress)
            break
        except SourceMismatch as exc:
            bad_items = {k: v for k, v in exc.problems.items() if isinstance(k, int)}
            if not bad_items or len(bad_items) != len(exc.problems):
                return _fail(disc, str(exc))
            _hold_back(disc, bad_items)
        except OSError as exc:
            reason = "the data disk is full" if exc.errno == errno.ENOSPC else f"cannot write the image: {exc}"
            return _fail(disc, reason)
    else:
        return _fail(disc, "source checks kept failing")
    with transaction.atomic():
        moved = Disc.objects.filter(pk=disc.pk, status=DiscStatus.BUILDING).update(
            status=DiscStatus.BUILT,
            image_name=str(dest.relative_to(settings.IMAGES_DIR)),
            image_size=result.size,
            image_sha256=result.sha256,
            built_at=timezone.now(),
        )
        if not moved:
            raise IllegalTransition(f"disc {disc.pk} left the building state while its image was written")
        _event(disc, DiscStatus.BUILDING, DiscStatus.BUILT, note=f"{result.size} bytes, sha256 {result.sha256}")
    disc.refresh_from_db()
    return verify_built(disc)


def expected_files(disc: Disc) -> dict[str, tuple[int, str]]:
    """What the image must hold, from the database (never from the writer)."""
    entries = list(DiscEntry.objects.filter(disc=disc).select_related("version").order_by("id"))
    return contents.expected_checksums(contents.disc_files(disc, entries))


def verify_built(disc: Disc) -> Disc:
    """built → verified, after reading the image back and checking every file."""
    if disc.status != DiscStatus.BUILT:
        raise IllegalTransition(f"disc {disc.pk} is {disc.status}, not built")
    path = Path(settings.IMAGES_DIR) / disc.image_name
    result = verify.verify_image(path, expected_files(disc))
    if result.ok and result.image_sha256 != disc.image_sha256:
        return _fail(
            disc, f"image sha256 changed after writing: expected {disc.image_sha256}, found {result.image_sha256}"
        )
    if not result.ok:
        return _fail(disc, "read-back found problems: " + "; ".join(str(p) for p in result.problems[:20]))
    with transaction.atomic():
        moved = Disc.objects.filter(pk=disc.pk, status=DiscStatus.BUILT).update(
            status=DiscStatus.VERIFIED, verified_at=timezone.now()
        )
        if moved:
            _event(disc, DiscStatus.BUILT, DiscStatus.VERIFIED, note=f"{result.files_checked} files checked")
    disc.refresh_from_db()
    return disc


def build_disc(disc_id: int, *, progress: Callable[[int, int], None] | None = None) -> Disc | None:
    """Claim, build and verify one disc.  Safe to call twice: the second call does nothing."""
    disc = claim_for_build(disc_id)
    if disc is None:
        return None
    try:
        return build_image(disc, progress=progress)
    except Exception as exc:
        _fail(disc, f"unexpected error: {exc.__class__.__name__}: {exc}")
        raise


def due_discs(now: dt.datetime | None = None):
    now = now or timezone.now()
    return Disc.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        status__in=[DiscStatus.PLANNED, DiscStatus.FAILED],
    ).order_by("planned_at", "pk")
