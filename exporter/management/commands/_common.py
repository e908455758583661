"""What the commands share: looking up a subscriber and their items, and the JSON shape of a disc."""

import fnmatch

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from tqdm import tqdm

from exporter import storage
from exporter.library import LibraryError
from exporter.models import Album, Disc, MediaItem


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


def add_item_selection(parser, *, album: bool) -> None:
    """USERNAME and one of --all, --album PATH (when ``album``), --match GLOB."""
    parser.add_argument("username")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every item")
    if album:
        which.add_argument("--album", metavar="PATH", help="items in this album or any album inside it (Trips/Rome)")
    which.add_argument("--match", metavar="GLOB", help="items whose file name matches (IMG_*.JPG)")


def matching_items(user, statuses, *, album: str | None = None, match: str | None = None):
    """``user``'s items in ``statuses``: all of them, those in the album at
    ``album`` (``Trips/Rome``) or any album inside it, or those whose file
    name matches the glob ``match`` (``IMG_*.JPG``, case-sensitive).  An
    album that does not exist is a CommandError."""
    items = MediaItem.objects.filter(owner=user, status__in=list(statuses)).order_by("pk")
    if album is not None:
        names = [part for part in album.strip("/").split("/") if part]
        found = None
        for name in names:
            found = Album.objects.filter(owner=user, parent=found, name=name).first()
            if found is None:
                raise CommandError(f"{user.get_username()} has no album {album!r}")
        if found is None:
            raise CommandError("--album needs an album path, e.g. 'Trips/Rome'")
        inside, level = {found.pk}, [found.pk]
        while level:
            level = list(Album.objects.filter(owner=user, parent_id__in=level).values_list("pk", flat=True))
            level = [pk for pk in level if pk not in inside]
            inside.update(level)
        items = items.filter(albums__in=inside).distinct()
    if match is not None:
        pks = [pk for pk, name in items.values_list("pk", "original_name") if fnmatch.fnmatchcase(name, match)]
        items = MediaItem.objects.filter(pk__in=pks).order_by("pk")
    return items


def move_each(items, move, *, desc: str, stderr) -> tuple[int, list[str]]:
    """Call ``move`` on each item (with a progress bar on ``stderr``); returns
    how many moved and a line per item the library refused (it changed
    meanwhile, or its bytes are erased)."""
    moved, refused = 0, []
    for item in tqdm(items.iterator(), total=items.count(), desc=desc, unit="item", disable=None, file=stderr):
        try:
            move(item)
        except LibraryError as exc:
            refused.append(f"{item.original_name}: {exc}")
            continue
        moved += 1
    return moved, refused
