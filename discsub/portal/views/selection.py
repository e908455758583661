"""Trash, restore, delete, undo a delete and move: one item or a selection.

Every form that changes where items are posts ``items`` (public ids) and an
``action`` here: the library's action bar, a tile's buttons, the item page's
buttons and the "Undo" after a move to the trash or to Recently deleted.  The selection is
all the user's or nothing changes (404); it changes in one transaction, so
one refusal leaves every item as it was; and sending it twice is harmless
(an item already where it is sent stays there)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from discsub.portal.lookups import get_album_for_user, get_item_for_user, get_items_for_user
from exporter import deletion, library
from exporter.models import Album, ItemStatus, MediaItem

# A page of the library holds 60; the undo after a trash names them all.
MAX_SELECTION = 500


@dataclass(frozen=True)
class Where:
    """The listing a selection was made in, and for a move, where to."""

    back: str = ""  # "" (library or album), "trash", "deleted" or "item"
    shown: Album | None = None  # the album being viewed
    move_to: Album | None = None

    def listing(self, undo: list[MediaItem] = ()) -> str:
        """The library page the selection came from, offering to undo what
        was just done to ``undo``."""
        query = [("show", self.back)] if self.back in ("trash", "deleted") else []
        query += [("album", self.shown.public_id)] if self.shown else []
        query += [("undo", item.public_id) for item in undo]
        return reverse("library") + (f"?{urlencode(query)}" if query else "")


def _trash(item: MediaItem, where: Where) -> None:
    deletion.trash_item(item)


def _restore(item: MediaItem, where: Where) -> None:
    deletion.restore_item(item)


def _delete_now(item: MediaItem, where: Where) -> None:
    if item.status == ItemStatus.LIVE:
        raise library.LibraryError("Only items in the trash can be deleted: move them to the trash first.")
    deletion.delete_now(item)


def _undelete(item: MediaItem, where: Where) -> None:
    deletion.undelete_item(item)


def _move(item: MediaItem, where: Where) -> None:
    # Out of the album being viewed, into the one chosen; other albums stay.
    albums = [a for a in item.albums.all() if a != where.shown and a != where.move_to]
    library.move_item(item, [*albums, where.move_to])


@dataclass(frozen=True)
class Action:
    apply: Callable[[MediaItem, Where], None]
    one: str = ""  # the message for one item ({name})
    many: str = ""  # and for several ({count})
    # Where the items can be brought back from: the listing ("" for the
    # library or album shown, "trash") says so, with an Undo, instead of a message.
    undo_from: str | None = None


ACTIONS = {
    "trash": Action(_trash, undo_from=""),
    "restore": Action(_restore, "“{name}” is back in your library.", "{count} items are back in your library."),
    "delete": Action(_delete_now, undo_from="trash"),
    "undelete": Action(_undelete, "“{name}” is back in your library.", "{count} items are back in your library."),
    "move": Action(_move, "“{name}” is in “{album}”.", "{count} items are in “{album}”."),
}


def _act(request: HttpRequest, action: Action, wanted: list[str], where: Where) -> HttpResponse:
    try:
        with transaction.atomic():
            items = get_items_for_user(request, wanted, lock=True)
            for item in items:
                action.apply(item, where)
    except library.LibraryError as exc:
        messages.error(request, f"{exc} Nothing was changed.")
        return redirect(where.listing())
    if action.undo_from is not None:
        shown = where.shown if action.undo_from == "" else None
        return redirect(Where(back=action.undo_from, shown=shown).listing(undo=items))
    names = {"count": len(items), "name": items[0].original_name, "album": getattr(where.move_to, "name", "")}
    messages.success(request, (action.one if len(items) == 1 else action.many).format(**names))
    if where.back == "item":
        return redirect("item", public_id=items[0].public_id)
    return redirect(where.listing())


@login_required
@require_POST
def act_on_selection(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("action", "")
    wanted = request.POST.getlist("items")
    where = Where(
        back=request.POST.get("back") if request.POST.get("back") in ("trash", "deleted") else "",
        shown=get_album_for_user(request, request.POST["shown"]) if request.POST.get("shown") else None,
    )
    if name not in ACTIONS or not wanted:
        messages.error(request, "Choose one or more items, then what to do with them.")
        return redirect(where.listing())
    if len(wanted) > MAX_SELECTION:
        messages.error(request, f"Choose at most {MAX_SELECTION} items at a time.")
        return redirect(where.listing())
    if name == "move":
        if not request.POST.get("album"):
            messages.error(request, "Choose the album to move them to.")
            return redirect(where.listing())
        where = Where(where.back, where.shown, get_album_for_user(request, request.POST["album"]))
    return _act(request, ACTIONS[name], wanted, where)


def undo_offer(request: HttpRequest) -> list[MediaItem]:
    """The items the ``undo`` parameters name that are still in the user's
    trash or Recently deleted: the listing offers to bring them back.
    Anything else is ignored."""
    wanted = []
    for value in request.GET.getlist("undo")[:MAX_SELECTION]:
        try:
            wanted.append(uuid.UUID(value))
        except ValueError:
            continue
    if not wanted:
        return []
    found = MediaItem.objects.filter(owner=request.user, public_id__in=wanted).filter(
        Q(status=ItemStatus.TRASHED) | deletion.recently_deleted()
    )
    fields = ("public_id", "original_name", "status", "trashed_at", "deleted_at", "erased_at")
    items = list(found.only(*fields).order_by("pk"))
    for item in items:
        item.erase_after = deletion.erase_after(item)
    return items


def _one_item(name: str):
    """An item page's button: the same action on that one item."""

    @login_required
    @require_POST
    def view(request: HttpRequest, public_id) -> HttpResponse:
        # Deleted items too: a second "Delete now" is harmless, not a 404.
        item = get_item_for_user(request, public_id, deleted_ok=True)
        return _act(request, ACTIONS[name], [str(item.public_id)], Where(back="item"))

    return view


trash_item = _one_item("trash")
restore_item = _one_item("restore")
delete_item = _one_item("delete")
