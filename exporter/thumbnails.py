"""Thumbnails for the offline index: made once per item version, then kept.

A thumbnail is a small JPEG of an item version, upright (EXIF orientation
applied), in sRGB, with no metadata at all.  It is made once and stored in
the default storage next to the originals (``thumbnails/<item>/v<n>.jpg``);
every disc that carries that version copies the stored bytes.  That is what
makes a disc reproducible: the planner measures the stored thumbnail and a
rebuild years later, with another Pillow, copies the same bytes.  So stored
thumbnails, like originals, are never deleted while a disc may need them.

A version Pillow cannot turn into a thumbnail (a video, a truncated or empty
file, a decompression bomb, missing bytes) gets a marker instead
(``thumbnails/<item>/v<n>.none``, holding the reason), so that decision too
is made once and every later disc agrees with it.  The index then shows the
shared placeholder.

Thumbnails are made when an item is uploaded (``make_quietly``, which never
lets a failure reach the upload), by ``manage.py make_thumbnails``, and
lazily by ``ensure_thumbnail`` for any version still without one.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db.models import F
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from exporter import manifest
from exporter.layout import DiscFile
from exporter.models import DiscEntry, EntryKind, ItemStatus, ItemVersion

log = logging.getLogger(__name__)

# The longest side, in pixels: sharp on a phone or a high-density screen at
# the index's card size (about 200 CSS pixels), a few tens of KB each.
BOX = 400
QUALITY = 80
# The most pixels ever decoded for one thumbnail, after a JPEG's draft
# reduction: bounds the memory a hostile or huge image can take (about
# 240 MB in RGBA).  Pillow's own bomb check (Image.MAX_IMAGE_PIXELS) refuses
# absurd headers before anything is decoded.
DECODE_PIXEL_LIMIT = 60_000_000
# Originals larger than this are not read for a thumbnail (a huge TIFF or a
# mislabelled video): they get the placeholder.
MAX_SOURCE_BYTES = 256 * 1024 * 1024

PLACEHOLDER_PATH = "index/placeholder.svg"
PLACEHOLDER_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 300" width="400" height="300">'
    b'<rect width="400" height="300" fill="#e7e5e0"/>'
    b'<g fill="none" stroke="#a8a29e" stroke-width="10" stroke-linejoin="round">'
    b'<rect x="140" y="105" width="120" height="90" rx="8"/>'
    b'<path d="M150 185l35-40 25 28 15-14 25 26"/></g>'
    b'<circle cx="230" cy="128" r="9" fill="#a8a29e"/></svg>\n'
)

_SRGB = None


class Unthumbnailable(Exception):
    """The bytes are not an image Pillow can safely make a thumbnail of."""


@dataclass(frozen=True)
class Thumbnail:
    storage_name: str
    size: int
    sha256: str


def storage_name_for(item: str, version: int) -> str:
    return f"thumbnails/{item}/v{version}.jpg"


def marker_name_for(item: str, version: int) -> str:
    return f"thumbnails/{item}/v{version}.none"


# --- making one --------------------------------------------------------------------


def _srgb():
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.createProfile("sRGB")
    return _SRGB


def _to_rgb(img: Image.Image) -> Image.Image:
    """An RGB image, colour-managed to sRGB when the file carries a profile."""
    icc = img.info.get("icc_profile")
    if icc and img.mode in ("RGB", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(img, source, _srgb(), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError) as exc:
            log.debug("ignoring an unusable ICC profile: %s", exc)
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def render_thumbnail(source: BinaryIO) -> bytes:
    """The thumbnail JPEG of the image in ``source``; the same input always
    gives the same bytes.  Raises :class:`Unthumbnailable`."""
    try:
        with warnings.catch_warnings():
            # Past MAX_IMAGE_PIXELS Pillow warns, past twice that it refuses.
            # Between the two, DECODE_PIXEL_LIMIT below decides, after draft().
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(source)
        with img:
            if img.format == "JPEG":
                # Decode at 1/2, 1/4 or 1/8 scale, still at least BOX wide:
                # a 50 MP photo costs a 3 MP decode.
                img.draft("RGB", (BOX, BOX))
            if img.width * img.height > DECODE_PIXEL_LIMIT:
                raise Unthumbnailable(f"{img.width}×{img.height} pixels is too large to decode safely")
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            rgb = _to_rgb(img)
            rgb.thumbnail((BOX, BOX), Image.Resampling.LANCZOS, reducing_gap=3.0)
    except Unthumbnailable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Unthumbnailable(f"refused as a decompression bomb: {exc}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        raise Unthumbnailable(f"{exc.__class__.__name__}: {exc}") from exc
    # A fresh image: nothing of the original's metadata (EXIF, comments,
    # profiles, XMP) can reach the disc.
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=QUALITY, optimize=True, progressive=False, subsampling="4:2:0")
    return out.getvalue()


# --- keeping them ----------------------------------------------------------------


class _Known:
    """Stored thumbnails and markers never change once written, so what we
    learnt about one can be remembered for the life of the process (the
    planner asks for the same thumbnails once per measuring pass)."""

    def __init__(self, size: int = 100_000):
        self._size = size
        self._data: OrderedDict[tuple, Thumbnail | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> tuple[bool, Thumbnail | None]:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return True, self._data[key]
            return False, None

    def put(self, key: tuple, value: Thumbnail | None) -> None:
        with self._lock:
            self._data[key] = value
            if len(self._data) > self._size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_known = _Known()


def _storage_key(name: str) -> tuple:
    # Which storage: tests (and a settings change) swap the default storage.
    where = getattr(default_storage, "location", None) or getattr(default_storage, "bucket_name", None) or ""
    return (default_storage.__class__.__name__, str(where), name)


def _save_once(name: str, data: bytes) -> None:
    """Write ``name`` unless it exists.  Two makers racing write the same
    bytes; a storage that renames instead of overwriting leaves a copy, which
    is removed."""
    if default_storage.exists(name):
        return
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        default_storage.delete(saved)


def _stored(name: str) -> Thumbnail:
    with default_storage.open(name, "rb") as fh:
        data = fh.read()
    return Thumbnail(name, len(data), hashlib.sha256(data).hexdigest())


def ensure_thumbnail(
    item: str, version: int, original: str, content_type: str = "", size: int | None = None
) -> Thumbnail | None:
    """The stored thumbnail of ``item`` at ``version``, made from the stored
    original ``original`` if there is none yet; None when the version has a
    placeholder.  Storage errors other than missing bytes propagate: the
    caller (a plan, a build) fails and is retried, and decides nothing."""
    name = storage_name_for(item, version)
    key = _storage_key(name)
    found, known = _known.get(key)
    if found:
        return known
    marker = marker_name_for(item, version)
    if default_storage.exists(name):
        thumb = _stored(name)
    elif default_storage.exists(marker):
        thumb = None
    else:
        thumb = _make(name, marker, original, _not_worth_reading(content_type, size))
    _known.put(key, thumb)
    return thumb


def _not_worth_reading(content_type: str, size: int | None) -> str:
    """Why not to read the original at all ('' to read it): a video is not an
    image, and a remote storage would fetch all of it to find out."""
    major = (content_type or "").partition("/")[0]
    if major in ("video", "audio"):
        return f"a {major} file: Pillow makes no thumbnail of it"
    if size is not None and size > MAX_SOURCE_BYTES:
        return f"{size:,} bytes is more than a thumbnail is made from"
    return ""


def _make(name: str, marker: str, original: str, skip: str) -> Thumbnail | None:
    reason = skip
    if not skip:
        try:
            with default_storage.open(original, "rb") as fh:
                data = render_thumbnail(fh)
        except FileNotFoundError as exc:
            reason = f"the original {original} is missing: {exc}"
        except Unthumbnailable as exc:
            reason = str(exc)
        else:
            _save_once(name, data)
            # Read back what is stored: if another maker won a race, its bytes count.
            return _stored(name)
    log.debug("no thumbnail for %s: %s", name, reason)
    _save_once(marker, reason.encode("utf-8", "replace")[:2000])
    if default_storage.exists(name):  # a racing maker did make one
        return _stored(name)
    return None


def ensure_for_version(version: ItemVersion) -> Thumbnail | None:
    return ensure_thumbnail(
        str(version.item.public_id), version.number, version.storage_name, version.content_type, version.size
    )


def make_quietly(version: ItemVersion) -> None:
    """Make ``version``'s thumbnail now if that works; never raises (an upload
    must not fail for its thumbnail: a later plan makes it)."""
    try:
        ensure_for_version(version)
    except Exception:
        log.warning("could not make the thumbnail of version %s now; it will be made later", version.pk, exc_info=True)


def current_versions(owner_id: int | None = None):
    """The current version of every item that may still go on a disc."""
    versions = (
        ItemVersion.objects.filter(item__current_version=F("pk"))
        .exclude(item__status=ItemStatus.DELETED)
        .select_related("item")
        .order_by("pk")
    )
    return versions if owner_id is None else versions.filter(item__owner_id=owner_id)


def make_missing(versions: Iterable[ItemVersion]) -> tuple[int, int]:
    """Make the thumbnails ``versions`` lack.  Returns (made or found, placeholders)."""
    made = placeholders = 0
    for version in versions:
        if ensure_for_version(version) is None:
            placeholders += 1
        else:
            made += 1
    return made, placeholders


# --- on the disc -----------------------------------------------------------------


def _opener(storage_name: str):
    return lambda: default_storage.open(storage_name, "rb")


def disc_files(entries: Sequence[DiscEntry]) -> list[DiscFile]:
    """The index's thumbnails (``index/thumbs/<item>-v<n>.jpg``) for the carried
    FILE entries, and the shared placeholder.  Sizes and digests come from the
    stored thumbnails, so measuring and writing see the same bytes."""
    files = [DiscFile.from_bytes(PLACEHOLDER_PATH, PLACEHOLDER_SVG)]
    for entry in entries:
        # A part of a split file (a video, in practice) gets no thumbnail.
        if entry.kind != EntryKind.FILE or entry.held_back or "part" in entry.metadata:
            continue
        item, number = entry.metadata["item"], entry.metadata["version"]
        thumb = ensure_thumbnail(
            item, number, entry.version.storage_name, entry.metadata.get("content_type", ""), entry.size
        )
        if thumb is not None:
            files.append(
                DiscFile(
                    path=manifest.thumbnail_path(item, number),
                    size=thumb.size,
                    sha256=thumb.sha256,
                    open=_opener(thumb.storage_name),
                )
            )
    return sorted(files, key=lambda f: f.path)
