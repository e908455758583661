"""Unexpected errors met by a scheduler pass: recorded, shown to staff, and
kept from stopping anyone else.

Two kinds of record (:class:`~exporter.models.ExportFailure`):

- **An item version whose bytes could not be read** for a disc (making its
  thumbnail raised: a file Pillow chokes on, an unreadable stored object).
  The plan of that pass passes the item over, so the rest of the library
  goes on the disc; the item's changes stay pending and it is tried again at
  the subscriber's next pass.  After ``DISCSUB_ITEM_MAX_FAILURES`` failures
  in a row, spanning at least ``DISCSUB_ITEM_HOLD_AFTER_MINUTES``, it is held
  back the way the design holds back bytes that fail their sha256: an open
  :class:`~exporter.models.ItemIssue` (kind ``unreadable``), which the
  planner already passes over, until the item is replaced, trashed or
  deleted, or staff resolve the issue.  Only errors of the item's own bytes
  count (a decoder that timed out or died twice on them among them): storage
  that is down or times out, a full data disk, a decoder child that cannot
  start (:func:`is_machine_error`) fail the subscriber's pass instead, which
  is rolled back and retried after a backoff.
- **A subscriber's pass that raised** (``version`` null).  Its transaction is
  rolled back whole (no disc, no change resolved, the schedule not moved),
  the scheduler goes on to the next subscriber, and that subscriber is tried
  again after a backoff.

Messages are for people: the exception's type and a short text, with no
storage path (:func:`describe`).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q

from exporter import storage, thumbnails
from exporter.models import (
    ExportFailure,
    FailureStage,
    ItemIssue,
    ItemStatus,
    ItemVersion,
    Resolution,
)

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=6)
MESSAGE_CHARS = 300
# An absolute path (POSIX or Windows) inside an exception's text.
_PATH = re.compile(r"""(?<![\w.~])(?:[A-Za-z]:)?[/\\][^\s'"()\[\]{},;<>]+""")


def error_name(exc: BaseException) -> str:
    """``struct.error``, ``IsADirectoryError``: the exception's type as Python names it."""
    kind = type(exc)
    module = kind.__module__
    return kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"


def describe(exc: BaseException, hide: Iterable[str] = ()) -> tuple[str, str]:
    """(type, message) of ``exc`` for people: one line of at most
    ``MESSAGE_CHARS``, the ``hide`` strings (storage names) and every
    absolute path taken out."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror  # the words without the file name
    else:
        text = str(exc)
    return error_name(exc), without_paths(text, hide, limit=MESSAGE_CHARS) or "no details given"


def without_paths(text: str, hide: Iterable[str] = (), *, limit: int = MESSAGE_CHARS) -> str:
    """``text`` on one line of at most ``limit`` characters, with the ``hide``
    strings (storage names), the data folders and every absolute path taken
    out: what a page, an email or a disc may show of an error."""
    for secret in sorted({h for h in hide if h}, key=len, reverse=True):
        text = text.replace(secret, "(a stored file)")
    roots = [str(getattr(settings, name, "") or "") for name in ("DATA_DIR", "MEDIA_ROOT", "IMAGES_DIR", "BUILD_DIR")]
    for root in sorted(filter(None, roots), key=len, reverse=True):
        text = text.replace(root, "(the data folder)")
    text = _PATH.sub("(a path)", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


# --- items -------------------------------------------------------------------------


def read_for_plan(owner_id: int, now: dt.datetime) -> set[tuple[int, int]]:
    """Make the missing thumbnails of the owner's live items with pending
    changes, each version on its own: what a plan will read of their bytes.
    Returns the (item id, version id) pairs that failed this time (recorded;
    the plan passes them over).  Versions held back are not read again."""
    settle(owner_id, now)
    open_issue = ItemIssue.objects.filter(item=OuterRef("item_id"), resolved_at__isnull=True).filter(
        Q(version=OuterRef("pk")) | Q(version__isnull=True)
    )
    versions = (
        thumbnails.current_versions(owner_id)
        .filter(item__status=ItemStatus.LIVE, item__changes__resolution=Resolution.PENDING)
        .exclude(Exists(open_issue))
        .distinct()
    )
    failing = set(
        ExportFailure.objects.filter(owner_id=owner_id, resolved_at__isnull=True, version__isnull=False).values_list(
            "version_id", flat=True
        )
    )
    unreadable = set()
    for version in versions:
        try:
            thumbnails.ensure_for_version(version)
        except Exception as exc:  # whatever one item's bytes do, the others go on
            if is_machine_error(exc):
                raise  # nobody's item: the pass is rolled back and backs off
            log.warning("could not read version %s of item %s for a disc", version.pk, version.item_id, exc_info=True)
            item_failed(version, exc, now)
            unreadable.add((version.item_id, version.pk))
        else:
            if version.pk in failing:
                ExportFailure.objects.filter(version=version, resolved_at__isnull=True).update(
                    resolved_at=now, resolution="read without error since"
                )
    return unreadable


def is_machine_error(exc: BaseException) -> bool:
    """True when ``exc`` is no fault of the bytes being read: storage
    unavailable, the data disk full, the decoder child unable to start."""
    return isinstance(exc, thumbnails.DecoderUnavailable) or storage.is_unavailable(exc)


def item_failed(version: ItemVersion, exc: BaseException, now: dt.datetime) -> ExportFailure:
    """Count one more failure to read ``version``; at the
    ``DISCSUB_ITEM_MAX_FAILURES``-th in a row, once the failures span
    ``DISCSUB_ITEM_HOLD_AFTER_MINUTES``, the item is held back."""
    error, message = describe(exc, hide=[version.storage_name])
    limit = max(1, settings.DISCSUB_ITEM_MAX_FAILURES)
    span = dt.timedelta(minutes=max(0, settings.DISCSUB_ITEM_HOLD_AFTER_MINUTES))
    for attempt in range(2):
        try:
            with transaction.atomic():
                row = (
                    ExportFailure.objects.select_for_update().filter(version=version, resolved_at__isnull=True).first()
                )
                if row is None:
                    row = ExportFailure(
                        owner_id=version.item.owner_id,
                        item_id=version.item_id,
                        version=version,
                        stage=FailureStage.READING,
                        first_at=now,
                        failures=0,
                    )
                row.failures += 1
                row.error, row.message, row.last_at = error, message, now
                if row.failures >= limit and now - row.first_at >= span and row.held_back_at is None:
                    row.held_back_at = now
                    ItemIssue.objects.create(
                        item_id=version.item_id,
                        version=version,
                        kind=ItemIssue.Kind.UNREADABLE,
                        message=held_back_reason(row),
                    )
                row.save()
                return row
        except IntegrityError:  # another pass recorded the first failure at the same time
            if attempt:
                raise
    raise AssertionError("unreachable")


def held_back_reason(row: ExportFailure) -> str:
    return (
        f"Held back: its bytes could not be read for a disc {row.failures} times in a row "
        f"(the last time: {row.error}: {row.message}). The rest of the library goes on without it. "
        "Uploading it again, or trashing it, takes it out of the way."
    )


def settle(owner_id: int, now: dt.datetime) -> int:
    """Close the owner's item failures that no longer matter: the item was
    trashed, deleted or replaced by a new version.  One statement."""
    return (
        ExportFailure.objects.filter(owner_id=owner_id, resolved_at__isnull=True, version__isnull=False)
        .exclude(item__status=ItemStatus.LIVE, item__current_version=F("version"))
        .update(resolved_at=now, resolution="the item was trashed, deleted or replaced")
    )


# --- subscribers -------------------------------------------------------------------


def backoff(failures: int) -> dt.timedelta:
    return min(dt.timedelta(minutes=2 ** min(failures, 12)), MAX_BACKOFF)


def subscriber_failed(owner_id: int, exc: BaseException, now: dt.datetime) -> ExportFailure:
    """Count one more failed pass for the subscriber; they are tried again after a backoff."""
    error, message = describe(exc)
    for attempt in range(2):
        try:
            with transaction.atomic():
                row = (
                    ExportFailure.objects.select_for_update()
                    .filter(owner_id=owner_id, version__isnull=True, resolved_at__isnull=True)
                    .first()
                )
                if row is None:
                    row = ExportFailure(owner_id=owner_id, stage=FailureStage.PLANNING, first_at=now, failures=0)
                row.failures += 1
                row.error, row.message, row.last_at = error, message, now
                row.retry_at = now + backoff(row.failures)
                row.save()
                return row
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError("unreachable")


def subscriber_succeeded(owner_id: int, now: dt.datetime) -> None:
    ExportFailure.objects.filter(owner_id=owner_id, version__isnull=True, resolved_at__isnull=True).update(
        resolved_at=now, resolution="a later pass went through"
    )


def settle_subscribers(due_owner_ids, now: dt.datetime) -> int:
    """Close the records of failed passes whose subscriber is no longer due
    (``due_owner_ids``: a query of the owners that are): paused, cancelled
    with the final disc planned, or no longer asking to ship now.  No later
    pass would run to close them.  One statement."""
    return (
        ExportFailure.objects.filter(version__isnull=True, resolved_at__isnull=True)
        .exclude(owner_id__in=due_owner_ids)
        .update(resolved_at=now, resolution="the subscription is no longer due")
    )


def failing_subscribers() -> dict[int, dt.datetime | None]:
    """owner id -> when their pass may be tried again, for every subscriber
    whose last pass failed.  One query."""
    return dict(
        ExportFailure.objects.filter(version__isnull=True, resolved_at__isnull=True).values_list("owner_id", "retry_at")
    )
