"""The JSON shape shared by build_discs and list_discs (one object per disc)."""

from django.conf import settings

from exporter.models import Disc


def disc_json(disc: Disc, files: int | None = None) -> dict:
    path = str((settings.IMAGES_DIR / disc.image_name).resolve()) if disc.image_name else None
    if files is None:
        files = sum(len(paths) for paths in disc.entries.filter(held_back=False).values_list("paths", flat=True))
    return {
        "id": disc.pk,
        "user": disc.owner.get_username(),
        "number": disc.number,
        "medium": disc.medium,
        "path": path,
        "size": disc.image_size,
        "sha256": disc.image_sha256 or None,
        "files": files,
        "status": disc.status,
    }
