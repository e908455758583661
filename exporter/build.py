"""Building and verifying a planned disc's image.

The lifecycle of an image: planned → building → built → verified, with
failed (and a retry time) on the side.  Every move is one function here that
claims the row with a conditional update, writes an event, and leaves the
slow I/O outside any transaction.  A verified image never changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import errno
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from exporter import contents, fulfillment, iso, isomd5, par2, verify
from exporter.errors import IllegalTransition, SourceMismatch
from exporter.layout import DiscFile
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


@dataclass(frozen=True)
class WrittenImage:
    result: iso.ImageResult
    implanted_md5: str
    recovery: list[DiscFile]


def write_disc_image(
    disc: Disc, entries: Sequence[DiscEntry], dest: Path, *, progress: Callable[[int, int], None] | None = None
) -> WrittenImage:
    """Write the image of a planned disc to ``dest``: first its PAR2 recovery
    files, from the payload, in the build area; then the image, with its MD5
    implanted before the atomic rename.  The same disc always gives the same
    bytes.  Raises :class:`SourceMismatch`, ``OSError``, or
    :class:`par2.Par2Error` / :class:`isomd5.IsoMd5Error` (a tool is missing
    or failed)."""
    workdir = Path(settings.BUILD_DIR) / f"disc-{disc.pk}-{os.getpid()}-{threading.get_ident()}"
    par2.remove(workdir)
    made: list[DiscFile] = []
    md5: list[str] = []

    def make_recovery(plan: par2.Par2Plan, payload: Sequence[DiscFile]) -> list[DiscFile]:
        made[:] = par2.create(plan, payload, workdir, memory_mb=settings.DISCSUB_PAR2_MEMORY_MB)
        return made

    # A disc first built before images carried an MD5 is rebuilt without one.
    implant = not disc.image_sha256 or bool(disc.implanted_md5)
    try:
        files = contents.disc_files(disc, entries, recovery=make_recovery)
        result = iso.write_image(
            files,
            dest,
            disc.volume_id,
            int(disc.planned_at.timestamp()),
            progress=progress,
            finalize=(lambda path: md5.append(isomd5.implant(path))) if implant else None,
        )
    finally:
        par2.remove(workdir)
    return WrittenImage(result, md5[0] if md5 else "", list(made))


def recorded_recovery(disc: Disc) -> Callable[[par2.Par2Plan, Sequence[DiscFile]], list[DiscFile]]:
    """The recovery files as the build recorded them (for a read-back: never opened)."""
    recorded = [dataclasses.replace(DiscFile.stand_in(p, size), sha256=sha) for p, size, sha in disc.recovery_files]
    return lambda plan, payload: recorded


def build_image(disc: Disc, *, progress: Callable[[int, int], None] | None = None) -> Disc:
    """Write the image of a disc that is ``building``; then verify it."""
    if disc.status != DiscStatus.BUILDING:
        raise IllegalTransition(f"disc {disc.pk} is {disc.status}, not building")
    dest = image_path(disc)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        entries = list(DiscEntry.objects.filter(disc=disc).select_related("version").order_by("id"))
        try:
            written = write_disc_image(disc, entries, dest, progress=progress)
            break
        except SourceMismatch as exc:
            bad_items = {k: v for k, v in exc.problems.items() if isinstance(k, int)}
            if not bad_items or len(bad_items) != len(exc.problems):
                return _fail(disc, str(exc))
            _hold_back(disc, bad_items)
        except OSError as exc:
            reason = "the data disk is full" if exc.errno == errno.ENOSPC else f"cannot write the image: {exc}"
            return _fail(disc, reason)
        except (par2.Par2Error, isomd5.IsoMd5Error) as exc:
            return _fail(disc, str(exc))
    else:
        return _fail(disc, "source checks kept failing")
    result = written.result
    with transaction.atomic():
        moved = Disc.objects.filter(pk=disc.pk, status=DiscStatus.BUILDING).update(
            status=DiscStatus.BUILT,
            image_name=str(dest.relative_to(settings.IMAGES_DIR)),
            image_size=result.size,
            image_sha256=result.sha256,
            implanted_md5=written.implanted_md5,
            recovery_files=[[f.path, f.size, f.sha256] for f in written.recovery],
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
    return contents.expected_checksums(contents.disc_files(disc, entries, recovery=recorded_recovery(disc)))


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
            # The image is final: its first physical copy joins the staff queue.
            fulfillment.queue_first_copy(disc)
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
