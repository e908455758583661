"""A disc's manifest.json, made again from the database.

The planner and the builder describe a disc with :func:`contents.disc_files`
from its frozen entries; asking it again gives the very bytes the image
holds, so the portal can show and offer the manifest without opening the
image (which may live in object storage, or not be built yet).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.cache import cache

from exporter import contents, manifest
from exporter.models import Disc, DiscEntry, DiscStatus

# Making the manifest again lays out every file of the disc (seconds for a
# disc of thousands), so a verified disc's, which never changes, is cached.
CACHE_SECONDS = 24 * 3600


def manifest_bytes(disc: Disc) -> bytes:
    """The disc's ``manifest.json``, byte for byte.  Queries: the entries, the
    series before the disc and the owner (three, whatever the disc holds);
    none for a verified disc already in the cache.  Until a disc is verified
    its manifest may still change (an item held back during the build)."""
    if disc.status != DiscStatus.VERIFIED:
        return _make(disc)
    key = f"discsub:manifest:{disc.public_id}:{disc.image_sha256}"
    data = cache.get(key)
    if data is None:
        data = _make(disc)
        cache.set(key, data, CACHE_SECONDS)
    return data


def _make(disc: Disc) -> bytes:
    entries = list(DiscEntry.objects.filter(disc=disc).select_related("version").order_by("id"))
    # Recovery files come after the manifest and do not change it: their
    # size-only stand-ins are enough.
    for disc_file in contents.disc_files(disc, entries):
        if disc_file.path == manifest.MANIFEST_JSON:
            with disc_file.open() as fh:
                return fh.read()
    raise LookupError(f"disc {disc.pk} has no {manifest.MANIFEST_JSON}")


def manifest_document(disc: Disc) -> dict[str, Any]:
    return json.loads(manifest_bytes(disc))
