"""The library: the one place that changes albums and media items.

Every function that changes what a disc must carry records a change in the
feed, in the same transaction.  Trash, deletion and their undo live in
exporter.deletion.  Bytes are written to storage before that
transaction starts (storage is not transactional) and are never overwritten:
a new upload is a new version under a new name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import mimetypes
import uuid
import warnings
from collections.abc import Iterable, Sequence
from typing import BinaryIO

from django.contrib.auth.models import AbstractBaseUser
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from exporter import thumbnails
from exporter.disc_tools.restore import MAX_ALBUM_DEPTH, MAX_ALBUMS, MAX_NAME, MAX_TEXT, MAX_VERSION
from exporter.feed import record_change
from exporter.models import Album, ChangeKind, ItemStatus, ItemVersion, MediaItem

log = logging.getLogger(__name__)

_COPY_BLOCK = 1024 * 1024


class LibraryError(Exception):
    """A request the library refuses, with a message for the person who made it."""


class _HashingReader(io.RawIOBase):
    """Reads a stream once, hashing and counting what passes through."""

    def __init__(self, source: BinaryIO):
        self._source = source
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.size += n
        return n


class _HashingFile(File):
    def __init__(self, reader: _HashingReader):
        super().__init__(io.BufferedReader(reader, _COPY_BLOCK))

    def chunks(self, chunk_size=None):
        # One pass only: the hash is computed on the way to storage.
        while chunk := self.file.read(_COPY_BLOCK):
            yield chunk


def store_original(owner: AbstractBaseUser, source: BinaryIO) -> tuple[str, int, str]:
    """Stream ``source`` to storage, hashing it on the way.

    Returns ``(storage_name, size, sha256)``.  The storage name never contains
    the user's file name, whatever it is.
    """
    reader = _HashingReader(source)
    name = f"originals/{owner.pk}/{uuid.uuid4().hex}"
    try:
        stored = default_storage.save(name, _HashingFile(reader))
    except BaseException:
        # A file cut short (a full disk) would be left with nothing referring to it.
        try:
            default_storage.delete(name)
        except Exception:
            log.warning("could not remove the partial upload %s", name, exc_info=True)
        raise
    return stored, reader.size, reader.sha256.hexdigest()


def read_capture_date(storage_name: str) -> tuple[dt.datetime | None, int | None]:
    """The EXIF capture date and its UTC offset (minutes), where Pillow finds
    them without decoding a pixel (this runs in the upload request).  Bytes
    Pillow cannot make sense of, whatever it raises, have no date."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a fuzzed file's warnings say nothing more than its errors
            with default_storage.open(storage_name, "rb") as fh, Image.open(fh) as img:
                if img.format == "PNG" and "exif" not in img.info:
                    # Its eXIf chunk, if any, follows the pixels: Pillow would decode them all to reach it.
                    return None, None
                exif = img.getexif()
                sub = exif.get_ifd(0x8769)
                raw = sub.get(0x9003) or exif.get(0x0132)
                offset_raw = sub.get(0x9011)
    except Exception as exc:  # noqa: BLE001 - hostile bytes can make Pillow raise anything
        log.debug("no EXIF date in %s: %s", storage_name, exc)
        return None, None
    if not raw:
        return None, None
    offset = _parse_offset(offset_raw)
    tz = dt.timezone(dt.timedelta(minutes=offset)) if offset is not None else dt.UTC
    try:
        naive = dt.datetime.strptime(str(raw).strip("\x00 ").strip(), "%Y:%m:%d %H:%M:%S")
        return naive.replace(tzinfo=tz).astimezone(dt.UTC), offset
    except (ValueError, OverflowError):  # not a date, or one that leaves the calendar in UTC
        return None, None


def _parse_offset(raw) -> int | None:
    if not raw:
        return None
    text = str(raw).strip("\x00 ").strip()
    try:
        sign = -1 if text[0] == "-" else 1
        hours, minutes = text.lstrip("+-").split(":")
        offset = sign * (int(hours) * 60 + int(minutes))
    except (ValueError, IndexError):
        return None
    return offset if abs(offset) <= 18 * 60 else None  # real offsets lie within ±14:00


def guess_content_type(name: str) -> str:
    return mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"


# Every disc's restore.py checks manifest.json against bounds (restore.py's
# MAX_* constants, docs/disc-layout.md): the library never holds more than
# they allow, or a disc would ship that its own tool refuses.


def _check_album_depth(depth: int) -> None:
    if depth > MAX_ALBUM_DEPTH:
        raise LibraryError(
            f"Albums can be nested at most {MAX_ALBUM_DEPTH} deep (this one would be {depth} deep); "
            "the restore tool on every disc reads no deeper."
        )


def _check_albums(albums: Sequence[Album]) -> None:
    """An item is in at most MAX_ALBUMS albums, none deeper than MAX_ALBUM_DEPTH."""
    if len(albums) > MAX_ALBUMS:
        raise LibraryError(
            f"An item can be in at most {MAX_ALBUMS} albums (this would be {len(albums)}); "
            "the restore tool on every disc reads no more."
        )
    for album in albums:
        _check_album_depth(len(album.path()))


def _check_name(name: str | None) -> None:
    if name and len(name) > MAX_NAME:
        raise LibraryError(f"A file name can be at most {MAX_NAME:,} characters long ({len(name):,} given).")


def _check_text(**fields) -> None:
    for label, value in fields.items():
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise LibraryError(f"A {label} can be at most {MAX_TEXT:,} characters long ({len(value):,} given).")


def ensure_album_path(owner: AbstractBaseUser, names: Sequence[str]) -> Album | None:
    """The album at ``names`` (top-level first), created as needed; at most
    MAX_ALBUM_DEPTH deep (:class:`LibraryError` beyond)."""
    _check_album_depth(len(names))
    parent = None
    for name in names:
        parent, _ = Album.objects.get_or_create(owner=owner, parent=parent, name=name)
    return parent


def _thumbnail_after_commit(version: ItemVersion) -> None:
    # Queued after the commit, made by a worker: never in the request, and
    # never failing the upload (a later plan makes what is missing).
    thumbnails.queue_after_commit(version)


def add_item(
    owner: AbstractBaseUser,
    source: BinaryIO,
    original_name: str,
    *,
    albums: Iterable[Album] = (),
    caption: str = "",
    title: str = "",
    content_type: str | None = None,
) -> MediaItem:
    """Store a new item's bytes and record it as added."""
    if not original_name:
        raise LibraryError("A file needs a name.")
    _check_name(original_name)
    albums = list(albums)
    _check_albums(albums)
    _check_text(caption=caption, title=title)
    storage_name, size, sha256 = store_original(owner, source)
    captured_at, offset = read_capture_date(storage_name)
    with transaction.atomic():
        item = MediaItem.objects.create(
            owner=owner,
            original_name=original_name,
            caption=caption,
            title=title,
            captured_at=captured_at,
            captured_offset_minutes=offset,
        )
        version = ItemVersion.objects.create(
            item=item,
            number=1,
            storage_name=storage_name,
            original_name=original_name,
            content_type=content_type or guess_content_type(original_name),
            size=size,
            sha256=sha256,
        )
        item.current_version = version
        item.save(update_fields=["current_version"])
        item.albums.set(albums)
        record_change(item, ChangeKind.ADDED)
        _thumbnail_after_commit(version)
    return item


def _locked(item: MediaItem) -> MediaItem:
    return MediaItem.objects.select_for_update().get(pk=item.pk)


def replace_bytes(item: MediaItem, source: BinaryIO, original_name: str | None = None) -> ItemVersion:
    """Store new bytes for ``item`` as its next version."""
    _check_name(original_name)
    storage_name, size, sha256 = store_original(item.owner, source)
    with transaction.atomic():
        locked = _locked(item)
        if locked.status == ItemStatus.DELETED:
            raise LibraryError("This item has been deleted.")
        number = (locked.current_version.number if locked.current_version else 0) + 1
        if number > MAX_VERSION:
            raise LibraryError(f"An item can have at most {MAX_VERSION:,} versions; add this file as a new item.")
        name = original_name or locked.original_name
        version = ItemVersion.objects.create(
            item=locked,
            number=number,
            storage_name=storage_name,
            original_name=name,
            content_type=guess_content_type(name),
            size=size,
            sha256=sha256,
        )
        locked.current_version = version
        locked.original_name = name
        locked.save(update_fields=["current_version", "original_name"])
        record_change(locked, ChangeKind.NEW_VERSION)
        _thumbnail_after_commit(version)
    item.refresh_from_db()
    return version


_UNSET = object()


def edit_metadata(item: MediaItem, *, caption=_UNSET, title=_UNSET, captured_at=_UNSET, captured_offset_minutes=_UNSET):
    """Edit an item's caption, title or capture date; records one change if anything differs."""
    _check_text(caption=caption, title=title)
    with transaction.atomic():
        locked = _locked(item)
        if locked.status == ItemStatus.DELETED:
            raise LibraryError("This item has been deleted.")
        fields = {"caption": caption, "title": title, "captured_at": captured_at}
        fields["captured_offset_minutes"] = captured_offset_minutes
        changed = [name for name, value in fields.items() if value is not _UNSET and getattr(locked, name) != value]
        if not changed:
            return locked
        for name in changed:
            setattr(locked, name, fields[name])
        locked.metadata_revision += 1
        locked.save(update_fields=[*changed, "metadata_revision"])
        record_change(locked, ChangeKind.EDITED)
    item.refresh_from_db()
    return item


def move_item(item: MediaItem, albums: Iterable[Album]) -> MediaItem:
    """Put ``item`` in exactly ``albums``."""
    albums = list(albums)
    if any(a.owner_id != item.owner_id for a in albums):
        raise LibraryError("An item can only go into its owner's albums.")
    _check_albums(albums)
    with transaction.atomic():
        locked = _locked(item)
        if locked.status == ItemStatus.DELETED:
            raise LibraryError("This item has been deleted.")
        if {a.pk for a in albums} == set(locked.albums.values_list("pk", flat=True)):
            return locked
        locked.albums.set(albums)
        locked.metadata_revision += 1
        locked.save(update_fields=["metadata_revision"])
        record_change(locked, ChangeKind.MOVED)
    item.refresh_from_db()
    return item
