"""Where images and originals live: the data folder by default, object storage by settings."""

from __future__ import annotations

from django.conf import settings
from django.core.files.storage import storages

from exporter.models import Disc


def images_are_remote() -> bool:
    """True when images live in object storage (``STORAGES["images"]``)."""
    return "images" in settings.STORAGES


def image_download_url(disc: Disc, *, expires: int = 300) -> str | None:
    """A short-lived signed URL of the disc's image when images are in object
    storage; None when they are local files (stream ``build.image_path``)."""
    if not images_are_remote() or not disc.image_name:
        return None
    return storages["images"].url(disc.image_name, expire=expires)
