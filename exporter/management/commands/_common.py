"""What the commands share: looking up a subscriber, and the JSON shape of a disc."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from exporter import storage
from exporter.models import Disc


def user_named(username: str):
    """The user called ``username``, or a CommandError that says so."""
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"unknown user {username!r}")
    return user


def disc_json(disc: Disc, files: int | None = None) -> dict:
    if files is None:
        files = sum(len(paths) for paths in disc.entries.filter(held_back=False).values_list("paths", flat=True))
    return {
        "id": disc.pk,
        "user": disc.owner.get_username(),
        "number": disc.number,
        "medium": disc.medium,
        "path": storage.image_location(disc),
        "size": disc.image_size,
        "sha256": disc.image_sha256 or None,
        "files": files,
        "status": disc.status,
    }
