"""Importing a folder tree into a subscriber's library (``manage.py import_media``).

Each folder below the root becomes a (nested) album.  The import is
idempotent and so resumable: a file whose bytes (sha256) are already in the
subscriber's library in the same album is skipped, so a run cut short is
finished by running it again.  Same bytes in *another* album are not a second
item: the item already in the library joins this album too (the portal's
"one photo in several albums", stored once and hard-linked on the disc).
Content decides, not names: two files with the same bytes in one folder are
one item.

What is refused, with its reason, and never a traceback:
- what the portal refuses (:func:`exporter.media_files.check_media_file`:
  empty, too large, not a photo or video by its bytes);
- a symbolic link that leads out of the tree being imported (a tree is not a
  way to read ``/etc``), and a broken one;
- anything that is not a regular file (a FIFO, a socket, a device);
- a file or folder that cannot be read.

Symbolic links inside the tree are followed: a file link imports its target
under the link's name, a folder link is walked as an album of the link's name
once every real folder has been walked, unless the folder it leads to was
walked already (then it is reported, and nothing is imported twice or loops).
What is opened must be the very file the walk found inside the tree (same
device and inode): a folder swapped for a link to elsewhere between the walk
and the import is refused, not read.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth.base_user import AbstractBaseUser

from exporter import library, quotas
from exporter.media_files import HEAD_BYTES, check_media_file
from exporter.models import ItemStatus, MediaItem

IMPORTED, JOINED, DUPLICATE, REFUSED = "imported", "added to another album", "duplicate", "refused"


@dataclass(frozen=True)
class Candidate:
    """A file to import: where it was found, what to open, its album path."""

    path: Path  # as found in the tree (a link's own path)
    source: Path  # what is read (a link's target, checked to be inside the tree)
    folders: tuple[str, ...]
    # (st_dev, st_ino) of the file the walk found inside the tree: what is opened
    # later must be that file, whatever was swapped for a link in between.
    identity: tuple[int, int]


@dataclass
class Refusal:
    path: Path
    reason: str


@dataclass
class Walk:
    candidates: list[Candidate] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


def display_name(name: str) -> str:
    """A name that is not valid UTF-8 cannot be stored as text; keep what we
    can read and mark the rest visibly."""
    return os.fsencode(name).decode("utf-8", errors="replace")


def walk(roots: Iterable[Path]) -> Walk:
    """Every file to import below ``roots``, in a stable order, and what is refused on the way."""
    found = Walk()
    for root in roots:
        root = Path(root)
        try:
            boundary = root.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            found.refused.append(Refusal(root, f"cannot be read ({_why(exc)})"))
            continue
        if not boundary.is_dir():
            try:
                found.candidates.append(Candidate(root, boundary, (), _identity(boundary.stat())))
            except OSError as exc:
                found.refused.append(Refusal(root, f"cannot be read ({_why(exc)})"))
            continue
        walked: dict[tuple[int, int], str] = {}  # (device, inode) of each folder walked -> its album path
        links: list[tuple[Path, tuple[str, ...]]] = [(boundary, ())]
        # Real folders first, then the folder links met on the way (which may add more).
        while links:
            folder, folders = links.pop(0)
            _walk_folder(folder, folders, boundary, walked, found, links.append)
    return found


def _identity(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return "a symbolic link loop" if isinstance(exc, RuntimeError) else str(exc)


def _walk_folder(
    folder: Path,
    folders: tuple[str, ...],
    boundary: Path,
    walked: dict[tuple[int, int], str],
    found: Walk,
    follow_later: Callable[[tuple[Path, tuple[str, ...]]], None],
) -> None:
    try:
        info = folder.stat()
        key = (info.st_dev, info.st_ino)
        if key in walked:
            where = walked[key] or "the top folder"
            found.refused.append(
                Refusal(folder, f"a link to a folder imported already (as {where}): not imported twice")
            )
            return
        walked[key] = "/".join(folders)
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        found.refused.append(Refusal(folder, f"the folder cannot be read ({_why(exc)})"))
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    found.refused.append(Refusal(path, "a broken symbolic link (what it points to does not exist)"))
                    continue
                if not target.is_relative_to(boundary):
                    found.refused.append(
                        Refusal(path, f"a symbolic link that leads out of the folder being imported (to {target})")
                    )
                    continue
                if target.is_dir():
                    follow_later((path, (*folders, display_name(entry.name))))
                    continue
                source = target
            elif entry.is_dir(follow_symlinks=False):
                _walk_folder(path, (*folders, display_name(entry.name)), boundary, walked, found, follow_later)
                continue
            else:
                source = path
            info = source.stat()
            if not stat.S_ISREG(info.st_mode):
                found.refused.append(Refusal(path, "not a regular file (a device, a pipe or a socket)"))
                continue
        except OSError as exc:
            found.refused.append(Refusal(path, f"cannot be read ({_why(exc)})"))
            continue
        found.candidates.append(Candidate(path, source, folders, _identity(info)))


def admit(owner: AbstractBaseUser, name: str, size: int, head: bytes) -> tuple[str | None, str | None]:
    """``(content type, None)`` when the file may join ``owner``'s library,
    ``(None, reason)`` otherwise: the one place the import checks a file
    before storing it: the portal's checks, then the storage quota."""
    content_type, reason = check_media_file(name, size, head)
    if reason:
        return None, reason
    try:
        quotas.check_room(owner, name, size)
    except quotas.QuotaExceeded as exc:
        return None, str(exc)
    return content_type, None


def _sha256(fh) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(1024 * 1024):
        digest.update(chunk)
    return digest.hexdigest()


def import_file(owner: AbstractBaseUser, candidate: Candidate) -> tuple[str, str]:
    """Import one file: ``(outcome, detail)``, the outcome one of IMPORTED,
    JOINED, DUPLICATE or REFUSED (the detail then says why)."""
    name = display_name(candidate.path.name)
    try:
        # O_NOFOLLOW: a file swapped for a link since the walk is not read.  It
        # guards the last name only: a folder on the way swapped for a link to
        # outside the tree is caught by the identity check, which compares the
        # file opened with the one the walk found inside the tree.
        fd = os.open(candidate.source, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if _identity(info) != candidate.identity:
                return REFUSED, "changed since the folder was read (a folder on the way replaced?): not read"
            if not stat.S_ISREG(info.st_mode):
                return REFUSED, "not a regular file"
            content_type, reason = admit(owner, name, info.st_size, fh.read(HEAD_BYTES))
            if reason:
                return REFUSED, reason
            fh.seek(0)
            sha256 = _sha256(fh)
            fh.seek(0)
            same = list(
                MediaItem.objects.filter(
                    owner=owner, status__in=[ItemStatus.LIVE, ItemStatus.TRASHED], current_version__sha256=sha256
                ).prefetch_related("albums")
            )
            album_paths = {tuple(a.path()) for item in same for a in item.albums.all()}
            if same and (not candidate.folders or candidate.folders in album_paths):
                return DUPLICATE, "already in the library"
            live = [item for item in same if item.status == ItemStatus.LIVE]
            album = library.ensure_album_path(owner, candidate.folders)
            if live:
                library.move_item(live[0], [*live[0].albums.all(), album])
                return JOINED, f"already in the library as “{live[0].original_name}”, now in this album too"
            if same:
                return DUPLICATE, "the same file is in the trash"
            library.add_item(owner, fh, name, albums=[album] if album else [], content_type=content_type)
            return IMPORTED, ""
    except OSError as exc:
        return REFUSED, f"cannot be read ({_why(exc)})"
    except library.LibraryError as exc:  # an album nested too deep, an item in too many albums
        return REFUSED, str(exc)
