"""The one way the portal fetches a subscriber's things.

Each helper returns the object only when it belongs to the signed-in user
and raises Http404 otherwise, so another subscriber's item, album, disc or
copy looks exactly like one that does not exist (never a 403)."""

from __future__ import annotations

import uuid

from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from exporter.models import Album, Disc, DiscCopy, MediaItem, Subscription


def _uuid(value) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except ValueError:
        raise Http404("No such thing.") from None


def get_item_for_user(request: HttpRequest, public_id, *, deleted_ok: bool = False) -> MediaItem:
    items = MediaItem.objects.filter(owner=request.user).select_related("current_version")
    if not deleted_ok:
        items = items.exclude(status="deleted")
    return get_object_or_404(items, public_id=_uuid(public_id))


def get_items_for_user(request: HttpRequest, public_ids: list, *, lock: bool = False) -> list[MediaItem]:
    """The user's items named in ``public_ids`` (any state), ordered by pk,
    and with ``lock`` locked in that order (inside the caller's transaction).
    One id that is not a UUID, or not one of the user's items, makes the whole
    list a 404: a forged selection changes nothing."""
    wanted = {_uuid(value) for value in public_ids}
    items = MediaItem.objects.filter(owner=request.user, public_id__in=wanted).order_by("pk")
    items = list(items.select_for_update() if lock else items)
    if len(items) != len(wanted):
        raise Http404("No such thing.")
    return items


def get_album_for_user(request: HttpRequest, public_id) -> Album:
    albums = Album.objects.filter(owner=request.user).select_related("parent")
    return get_object_or_404(albums, public_id=_uuid(public_id))


def get_disc_for_user(request: HttpRequest, public_id) -> Disc:
    return get_object_or_404(Disc.objects.filter(owner=request.user), public_id=_uuid(public_id))


def get_copy_for_user(request: HttpRequest, disc: Disc, public_id) -> DiscCopy:
    return get_object_or_404(DiscCopy.objects.filter(disc=disc, disc__owner=request.user), public_id=_uuid(public_id))


def get_subscription_for_user(request: HttpRequest) -> Subscription:
    """The user's subscription; a staff account without one gets a 404."""
    return get_object_or_404(Subscription.objects.filter(user=request.user))
