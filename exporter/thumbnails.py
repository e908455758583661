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

Thumbnails are never made inside a web request: an upload queues a task
(``queue_after_commit``; a worker runs ``exporter.tasks.make_thumbnail``), and
``manage.py make_thumbnails`` and the planner (``ensure_thumbnail``, for any
version still without one) make what is missing.  Until then the portal
shows the placeholder.  Pillow runs in a child process with a decode budget,
a memory ceiling and a time limit (:mod:`exporter.thumbnail_decoder`): any
error Pillow raises on a subscriber's bytes is a placeholder with its reason.
Nothing else is: a storage error (reading the original here or in the
child), a decoder that timed out or died twice running
(:class:`DecoderFailed`) or could not start raises, writes no marker, and the
version is tried again later.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F

from exporter import manifest, thumbnail_decoder
from exporter.layout import DiscFile
from exporter.models import DiscEntry, EntryKind, ItemStatus, ItemVersion

log = logging.getLogger(__name__)

Unthumbnailable = thumbnail_decoder.Unthumbnailable
DecoderFailed = thumbnail_decoder.DecoderFailed
DecoderUnavailable = thumbnail_decoder.DecoderUnavailable

BOX = thumbnail_decoder.BOX
QUALITY = thumbnail_decoder.QUALITY
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


@dataclass(frozen=True)
class Thumbnail:
    storage_name: str
    size: int
    sha256: str


def storage_name_for(item: str, version: int) -> str:
    return f"thumbnails/{item}/v{version}.jpg"


def marker_name_for(item: str, version: int) -> str:
    return f"thumbnails/{item}/v{version}.none"


def stored_bytes(versions: Iterable[tuple[str, int]]) -> int:
    """The bytes of the stored thumbnails of ``versions`` ((item public id,
    version number) pairs); one storage look-up each."""
    total = 0
    for item, version in versions:
        name = storage_name_for(item, version)
        if default_storage.exists(name):
            total += default_storage.size(name)
    return total


# --- making one --------------------------------------------------------------------


def max_decode_bytes() -> int:
    return settings.DISCSUB_THUMBNAIL_MAX_DECODE_MB * 2**20


def render_thumbnail(source: BinaryIO) -> bytes:
    """The thumbnail JPEG of the image in ``source``, made in this process
    (the decode budget applies, the memory ceiling does not).  Raises
    :class:`Unthumbnailable`."""
    return thumbnail_decoder.render_thumbnail(source, max_decode_bytes())


_decoder: thumbnail_decoder.Decoder | None = None
_decoder_lock = threading.Lock()


def decoder() -> thumbnail_decoder.Decoder:
    """This process's decoder child (one per worker process: the pool is
    bounded by the task cluster's workers)."""
    global _decoder
    memory_mb, seconds = settings.DISCSUB_THUMBNAIL_MEMORY_MB, settings.DISCSUB_THUMBNAIL_SECONDS
    with _decoder_lock:
        if _decoder is None or _decoder.memory_mb != memory_mb:  # the ceiling is set when the child starts
            if _decoder is not None:
                _decoder.stop()
            _decoder = thumbnail_decoder.Decoder(memory_mb, seconds)
        _decoder.timeout = seconds
        return _decoder


@contextlib.contextmanager
def _local_copy(fh) -> Iterator[str]:
    """A path the decoder child can open: the stored file itself when the
    storage is a local folder, else a temporary copy in the build area (read
    here, so a storage failure is raised here and decides nothing)."""
    name = getattr(fh, "name", None)
    if isinstance(name, str) and os.path.isabs(name) and os.path.isfile(name):
        yield name
        return
    os.makedirs(settings.BUILD_DIR, exist_ok=True)
    with tempfile.NamedTemporaryFile(prefix="thumbnail-", dir=settings.BUILD_DIR) as copy:
        shutil.copyfileobj(fh, copy, 1024 * 1024)
        copy.flush()
        yield copy.name


def render_original(original: str) -> bytes:
    """The thumbnail of the stored original ``original``, made by the decoder
    child under its memory ceiling and time limit.  Raises
    :class:`Unthumbnailable`, FileNotFoundError, the storage's errors (an
    ``OSError`` the child met reading the file among them),
    :class:`DecoderFailed` or :class:`DecoderUnavailable`."""
    with default_storage.open(original, "rb") as fh, _local_copy(fh) as path:
        return decoder().render(path, max_decode_bytes())


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
            data = render_original(original)
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


def queue_after_commit(version: ItemVersion) -> None:
    """Have a worker make ``version``'s thumbnail once the current transaction
    commits: decoding an image never happens in a web request.  Never fails
    the caller (a broker that is down only delays the thumbnail to the next
    plan, which makes what is missing)."""

    def queue() -> None:
        from django_q.tasks import async_task

        try:
            async_task("exporter.tasks.make_thumbnail", version.pk, task_name=f"thumbnail of version {version.pk}")
        except Exception:
            log.warning("could not queue the thumbnail of version %s; it will be made later", version.pk, exc_info=True)

    transaction.on_commit(queue)


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
    """Make the thumbnails ``versions`` lack.  Returns (made or found,
    placeholders).  A version the decoder timed out or died on twice is
    logged and left for later (the planner tries it again)."""
    made = placeholders = 0
    for version in versions:
        try:
            thumb = ensure_for_version(version)
        except DecoderFailed as exc:
            log.warning("no thumbnail yet for version %s: %s", version.pk, exc)
            continue
        if thumb is None:
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
