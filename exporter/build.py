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

from exporter import cleanup, contents, ecc, failures, fulfillment, iso, isomd5, par2, storage, verify, workers
from exporter.errors import IllegalTransition, SourceMismatch, StorageUnavailable
from exporter.held_back import reason_for_people
from exporter.layout import DiscFile
from exporter.models import Disc, DiscEntry, DiscEvent, DiscStatus, ItemIssue, MediaItem

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=6)


def image_path(disc: Disc) -> Path:
    return Path(settings.IMAGES_DIR) / str(disc.owner_id) / f"disc-{disc.number:04d}.iso"


def _event(disc: Disc, from_status: str, to_status: str, note: str = "", actor=None) -> None:
    DiscEvent.objects.create(disc=disc, from_status=from_status, to_status=to_status, note=note[:4000], actor=actor)


def _claimable(now: dt.datetime) -> Q:
    """Discs a worker may take: planned, or failed and past their retry time
    (not permanently); or building/built under a lease that ran out (its
    worker died)."""
    retry_due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    waiting = Q(retry_due, status__in=[DiscStatus.PLANNED, DiscStatus.FAILED], failure_permanent=False)
    abandoned = Q(status__in=[DiscStatus.BUILDING, DiscStatus.BUILT]) & (
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now)
    )
    return waiting | abandoned


def claim_for_build(disc_id: int, *, now: dt.datetime | None = None, actor=None) -> Disc | None:
    """Take the disc's lease: planned/failed → building, or take over a
    building/built disc whose worker's lease ran out (a built one is only
    verified again).  None when the disc is not due or another worker has it."""
    now = now or timezone.now()
    token = workers.new_lease_token()
    with transaction.atomic():
        disc = Disc.objects.select_for_update(skip_locked=True).filter(_claimable(now), pk=disc_id).first()
        if disc is None:
            return None
        to_status = DiscStatus.BUILT if disc.status == DiscStatus.BUILT else DiscStatus.BUILDING
        claimed = Disc.objects.filter(pk=disc.pk, status=disc.status, leased_by=disc.leased_by).update(
            status=to_status,
            attempts=F("attempts") + 1,
            last_error="",
            leased_by=token,
            lease_expires_at=now + workers.lease_duration(),
        )
        if claimed != 1:
            return None
        note = f"leased by {token}"
        if disc.status in (DiscStatus.BUILDING, DiscStatus.BUILT):
            note = f"the lease of {disc.leased_by or 'an unknown worker'} ran out; {note}"
        _event(disc, disc.status, to_status, note=note, actor=actor)
    disc.refresh_from_db()
    return disc


def _fail(disc: Disc, reason: str, *, now: dt.datetime | None = None, permanent: bool = False) -> Disc:
    """building/built → failed under the caller's lease.  Transient failures
    are retried with backoff; a permanent one (or too many attempts) waits
    for staff (:func:`retry_failed`)."""
    now = now or timezone.now()
    if not permanent and disc.attempts >= settings.DISCSUB_MAX_BUILD_ATTEMPTS:
        permanent = True
        reason = f"gave up after {disc.attempts} attempts; the last: {reason}"
    backoff = min(dt.timedelta(minutes=2 ** min(disc.attempts, 12)), MAX_BACKOFF)
    with transaction.atomic():
        moved = Disc.objects.filter(
            pk=disc.pk, status__in=[DiscStatus.BUILDING, DiscStatus.BUILT], leased_by=disc.leased_by
        ).update(
            status=DiscStatus.FAILED,
            # Staff pages show it: the full text, paths and all, goes to the log only.
            last_error=failures.without_paths(reason, limit=4000),
            failure_permanent=permanent,
            next_attempt_at=None if permanent else now + backoff,
            leased_by="",
            lease_expires_at=None,
        )
        if moved:
            note = ("permanent: " if permanent else "") + failures.without_paths(reason, limit=4000)
            _event(disc, disc.status, DiscStatus.FAILED, note=note)
    disc.refresh_from_db()
    log.warning("disc %s failed%s: %s", disc.pk, " permanently" if permanent else "", reason)
    return disc


def retry_failed(disc_id: int, actor=None, *, now: dt.datetime | None = None) -> Disc:
    """failed → failed, due now: staff ask for another attempt (also after a
    permanent failure, once its cause is fixed); the attempt count starts over."""
    now = now or timezone.now()
    with transaction.atomic():
        disc = Disc.objects.select_for_update().get(pk=disc_id)
        if disc.status != DiscStatus.FAILED:
            raise IllegalTransition(
                f"disc {disc.number} of {disc.owner} is {disc.get_status_display().lower()}, not failed"
            )
        Disc.objects.filter(pk=disc.pk).update(failure_permanent=False, next_attempt_at=now, attempts=0)
        _event(disc, DiscStatus.FAILED, DiscStatus.FAILED, note="retry asked for", actor=actor)
    disc.refresh_from_db()
    return disc


def _hold_back(disc: Disc, problems: dict, kinds: dict) -> None:
    """Take the items whose source bytes failed (did not match, were missing,
    or raised anything while read) off this disc, and flag them for staff,
    each with the kind of failure its stage reported (``kinds``)."""
    with transaction.atomic():
        entries = DiscEntry.objects.select_for_update().filter(disc=disc, item_id__in=list(problems))
        for entry in entries:
            detail = str(problems[entry.item_id])  # may name storage paths: the log only
            kind = ItemIssue.Kind(kinds.get(entry.item_id, ItemIssue.Kind.CHECKSUM_MISMATCH))
            reason = reason_for_people(kind)
            log.warning("disc %s: item %s held back (%s): %s", disc.pk, entry.item_id, kind, detail)
            entry.held_back = True
            entry.held_reason = reason
            entry.save(update_fields=["held_back", "held_reason"])
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
    files (discs that have them), from the payload, in the build area; then
    the image, with its MD5 implanted and its sector recovery data appended
    (layout 3) before the atomic rename.  The same disc always gives the same
    bytes.  Raises :class:`SourceMismatch`, ``OSError``, or
    :class:`par2.Par2Error` / :class:`isomd5.IsoMd5Error` /
    :class:`ecc.EccError` (a tool is missing or failed),
    :class:`StorageUnavailable`, :class:`contents.ManifestRefused`."""
    workdir = Path(settings.BUILD_DIR) / f"disc-{disc.pk}-{os.getpid()}-{threading.get_ident()}"
    par2.remove(workdir)
    made: list[DiscFile] = []

    def make_recovery(plan: par2.Par2Plan, payload: Sequence[DiscFile]) -> list[DiscFile]:
        made[:] = par2.create(plan, payload, workdir, memory_mb=settings.DISCSUB_PAR2_MEMORY_MB)
        return made

    # A disc first built before images carried an MD5 is rebuilt without one.
    implant = not disc.image_sha256 or bool(disc.implanted_md5)

    def protect(path: Path) -> str:
        # After the MD5 is implanted: the recovery data protects the image's final bytes.
        fmt = contents.repair_format(disc.layout_version)
        return ecc.protect(path, parity=disc.sector_parity, layout_format=fmt).sha256

    try:
        staged = None
        if not storage.originals_are_local():
            # Object storage: the sources come to the build area first (removed below).
            staged = storage.stage_sources(contents.sources(entries), workdir / "sources")
        files = contents.disc_files(disc, entries, recovery=make_recovery, staged=staged)
        # Never a disc its own restore tool refuses: it would be verified, and shipped.
        contents.checked_manifest(disc, files)
        result = iso.write_image(
            files,
            dest,
            disc.volume_id,
            int(disc.planned_at.timestamp()),
            progress=progress,
            finalize=protect if disc.sector_parity else None,
            implant_md5=implant,
        )
    finally:
        par2.remove(workdir)
    return WrittenImage(result, result.implanted_md5, list(made))


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
            _hold_back(disc, bad_items, exc.kinds)
            workers.beat("building", disc.pk)
        except OSError as exc:
            reason = "the data disk is full" if exc.errno == errno.ENOSPC else f"cannot write the image: {exc}"
            return _fail(disc, reason)
        except (par2.Par2Error, isomd5.IsoMd5Error, ecc.EccError, StorageUnavailable) as exc:
            return _fail(disc, str(exc))
        except contents.ManifestRefused as exc:
            return _fail(disc, str(exc), permanent=True)  # the same disc fails the same way: staff decide
    else:
        return _fail(disc, "source checks kept failing", permanent=True)
    result = written.result
    with transaction.atomic():
        # Only under our own lease: a worker whose lease ran out (it stalled
        # and another took over) must not record its image.
        moved = Disc.objects.filter(pk=disc.pk, status=DiscStatus.BUILDING, leased_by=disc.leased_by).update(
            status=DiscStatus.BUILT,
            lease_expires_at=timezone.now() + workers.lease_duration(),
            image_name=str(dest.relative_to(settings.IMAGES_DIR)),
            image_size=result.size,
            image_sha256=result.sha256,
            implanted_md5=written.implanted_md5,
            recovery_files=[[f.path, f.size, f.sha256] for f in written.recovery],
            built_at=timezone.now(),
        )
        if not moved:
            raise IllegalTransition(
                f"disc {disc.pk} left the building state (or its lease ran out) while it was written"
            )
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
    workers.beat("verifying", disc.pk)
    result = verify.verify_image(path, expected_files(disc), sector_parity=disc.sector_parity)
    if result.ok and result.image_sha256 != disc.image_sha256:
        return _fail(
            disc, f"image sha256 changed after writing: expected {disc.image_sha256}, found {result.image_sha256}"
        )
    if not result.ok:
        return _fail(disc, "read-back found problems: " + "; ".join(str(p) for p in result.problems[:20]))
    if storage.images_are_remote():
        try:
            storage.upload_image(disc, path)
        except StorageUnavailable as exc:
            return _fail(disc, str(exc))
    with transaction.atomic():
        moved = Disc.objects.filter(pk=disc.pk, status=DiscStatus.BUILT, leased_by=disc.leased_by).update(
            status=DiscStatus.VERIFIED, verified_at=timezone.now(), leased_by="", lease_expires_at=None
        )
        if moved:
            _event(disc, DiscStatus.BUILT, DiscStatus.VERIFIED, note=f"{result.files_checked} files checked")
            disc.refresh_from_db()
            # The image is final: its first physical copy joins the staff queue.
            fulfillment.queue_first_copy(disc)
    disc.refresh_from_db()
    if disc.status == DiscStatus.VERIFIED and storage.images_are_remote():
        path.unlink(missing_ok=True)  # the stored copy, read back, is the image now
    return disc


def build_disc(disc_id: int, *, progress: Callable[[int, int], None] | None = None) -> Disc | None:
    """Claim, build and verify one disc (or only verify a built one whose
    worker died).  Safe to call twice, from any number of workers: a call
    that finds the disc not due, or leased by a live worker, does nothing."""
    disc = claim_for_build(disc_id)
    if disc is None:
        return None
    # A disc taken over from a dead worker: its work folder and half image go
    # now (the clean-up at start-up skipped them while its lease was live).
    cleanup.clean_leftovers(disc)
    task = "verifying" if disc.status == DiscStatus.BUILT else "building"
    workers.beat(task, disc.pk)
    try:
        with workers.LeaseKeeper(disc.pk, disc.leased_by):
            if disc.status == DiscStatus.BUILT:
                return verify_built(disc)
            return build_image(disc, progress=progress)
    except Exception as exc:
        _fail(disc, f"unexpected error: {exc.__class__.__name__}: {exc}")
        raise
    finally:
        workers.beat("")


def due_discs(now: dt.datetime | None = None):
    """Discs a worker may claim now (see :func:`claim_for_build`), oldest first."""
    now = now or timezone.now()
    return Disc.objects.filter(_claimable(now)).order_by("planned_at", "pk")
