"""A disc's manifest.json, made again from the database.

The planner and the builder describe a disc with :func:`contents.disc_files`
from its frozen entries; asking it again gives the very bytes the image
holds, so the portal can show and offer the manifest without opening the
image (which may live in object storage, or not be built yet).
"""

from __future__ import annotations

import json
from typing import Any

from exporter import contents, manifest
from exporter.models import Disc, DiscEntry


def manifest_bytes(disc: Disc) -> bytes:
    """The disc's ``manifest.json``, byte for byte.  Queries: the entries and
    the series before the disc (two, whatever the disc holds)."""
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
