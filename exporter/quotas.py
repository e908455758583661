"""What one subscriber may store, and how fast they may upload.

The storage quota counts every stored version of every item of the
subscriber, deleted and trashed ones included: their bytes are kept (a disc
may still need them) until a purge frees them.  It is ``DISCSUB_QUOTA_GB``
unless the subscription sets its own (``Subscription.quota_gb``); 0 means
no limit.  The upload rate counts the items added in the last hour (a
sliding window, read from the rows themselves, so every web process agrees
and nothing can be reset by clearing a cache; the portal has no other way
to store bytes).

Both are checked before a file is stored, with the file's size: the portal
calls :func:`check_upload`, ``manage.py import_media`` calls
:func:`check_room` (an operator's bulk import is not rate-limited).  Two
uploads racing may together pass the quota by at most their own sizes.
"""

from __future__ import annotations

import datetime as dt
import math

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Min, Sum
from django.utils import timezone

from exporter.library import LibraryError
from exporter.models import ItemVersion, MediaItem, Subscription

GB = 1024**3
WINDOW = dt.timedelta(hours=1)


class QuotaExceeded(LibraryError):
    """The file would take the subscriber past their storage quota."""


class TooManyUploads(LibraryError):
    """The subscriber has uploaded as many files as an hour allows."""


def human_size(size: int) -> str:
    """``1.5 KB``, ``1.0 GB``: three figures at most, never ``1024.0 MB``."""
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1000:
            return f"{size:,} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TB"


def quota_bytes(owner: AbstractBaseUser) -> int | None:
    """The subscriber's storage quota in bytes, or None for no limit."""
    own = Subscription.objects.filter(user=owner).values_list("quota_gb", flat=True).first()
    gb = settings.DISCSUB_QUOTA_GB if own is None else own
    return gb * GB if gb > 0 else None


def used_bytes(owner: AbstractBaseUser) -> int:
    """Every stored version of every item the purge has not erased (exporter.purge)."""
    versions = ItemVersion.objects.filter(item__owner=owner, item__erased_at__isnull=True)
    return versions.aggregate(total=Sum("size"))["total"] or 0


def check_room(owner: AbstractBaseUser, name: str, size: int) -> None:
    """Raise :class:`QuotaExceeded`, naming the file and the numbers, when
    storing ``size`` more bytes would pass the subscriber's quota."""
    quota = quota_bytes(owner)
    if quota is None:
        return
    used = used_bytes(owner)
    if used + size > quota:
        free = max(0, quota - used)
        raise QuotaExceeded(
            f"“{name}” ({human_size(size)}) does not fit in your storage: you use {human_size(used)}"
            f" of your {human_size(quota)}, so {human_size(free)} is left."
            " Deleted items count until they are purged."
        )


def check_rate(owner: AbstractBaseUser, name: str, now: dt.datetime | None = None) -> None:
    """Raise :class:`TooManyUploads` when the subscriber has stored
    ``DISCSUB_UPLOADS_PER_HOUR`` files in the last hour; the message says when
    the next one is taken."""
    limit = settings.DISCSUB_UPLOADS_PER_HOUR
    if limit <= 0:
        return
    now = now or timezone.now()
    recent = MediaItem.objects.filter(owner=owner, uploaded_at__gt=now - WINDOW)
    if recent.count() < limit:
        return
    oldest = recent.aggregate(oldest=Min("uploaded_at"))["oldest"]
    minutes = max(1, math.ceil((oldest + WINDOW - now).total_seconds() / 60))
    raise TooManyUploads(
        f"“{name}” was not added: you have uploaded {limit:,} files in the last hour, the most we take in an hour."
        f" Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def check_upload(owner: AbstractBaseUser, name: str, size: int) -> None:
    """The portal's checks before a file is stored: the rate, then the room."""
    check_rate(owner, name)
    check_room(owner, name, size)
