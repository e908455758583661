"""Library pages: browse, upload, albums, and one item's edits."""

from __future__ import annotations

import logging
import os

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from discsub import query
from discsub.portal import uploads
from discsub.portal.forms import AlbumForm, ItemEditForm, MoveForm, album_choices
from discsub.portal.lookups import get_album_for_user, get_item_for_user
from discsub.portal.queries import with_disc_state, with_erasure_state
from discsub.portal.views import selection
from exporter import deletion, library, quotas, thumbnails
from exporter.errors import ExportError
from exporter.models import DiscEntry, ItemStatus, MediaItem

log = logging.getLogger(__name__)

PAGE_SIZE = 60


@login_required
def library_page(request: HttpRequest) -> HttpResponse:
    album = get_album_for_user(request, request.GET["album"]) if request.GET.get("album") else None
    show = query.choice(request, "show", ("trash", "deleted"), "")
    items, order = MediaItem.objects.filter(owner=request.user), "-uploaded_at"
    if show == "trash":
        items, order = items.filter(status=ItemStatus.TRASHED), "-trashed_at"
    elif show == "deleted":
        items, order = with_erasure_state(items.filter(deletion.recently_deleted())), "-deleted_at"
    else:
        items = items.filter(status=ItemStatus.LIVE)
    if album is not None:
        items = items.filter(albums=album)
    items = with_disc_state(items).select_related("current_version").order_by(order, "-pk")
    page = Paginator(items, PAGE_SIZE).get_page(query.page_number(request))
    for item in page:
        # What the trash and Recently deleted say of each item (no query: the disc is annotated).
        item.on_a_disc = item.disc_number is not None
        item.facts = deletion.deletion_facts(item)
    albums = album_choices(request.user)
    by_pk = {a.pk: a for a in albums}
    # Each item's albums in one query for the whole page.
    memberships = MediaItem.albums.through.objects.filter(mediaitem_id__in=[i.pk for i in page])
    for item in page:
        item.album_list = []
    items_by_pk = {i.pk: i for i in page}
    for row in memberships.values_list("mediaitem_id", "album_id"):
        items_by_pk[row[0]].album_list.append(by_pk[row[1]])
    return render(
        request,
        "portal/library.html",
        {
            "page": page,
            "album": album,
            "albums": albums,
            "show": show,
            "trash": show == "trash",
            "deleted": show == "deleted",
            "undo": selection.undo_offer(request),
            "trash_days": settings.DISCSUB_TRASH_DAYS,
            "hold_days": settings.DISCSUB_DELETE_HOLD_DAYS,
            "album_form": AlbumForm(
                request.user, initial={"parent": str(album.public_id) if album else ""}, albums=albums
            ),
            "max_bytes": settings.DISCSUB_UPLOAD_MAX_BYTES,
            "max_text": uploads.limit_text(),
        },
    )


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


@csrf_exempt
def upload(request: HttpRequest) -> HttpResponse:
    """Several files in one multipart POST (the page's script sends them one
    at a time, for a progress bar each).  Exempt from CSRF only until the
    size limit is installed; the check runs before anything is read."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR, exist_ok=True)
    check = uploads.prepare(request)
    return csrf_protect(_store_uploads)(request, check)


def _store_uploads(request: HttpRequest, check: uploads.UploadCheck) -> HttpResponse:
    album = get_album_for_user(request, request.POST["album"]) if request.POST.get("album") else None
    added, refused = [], []
    for name in check.too_large:
        refused.append({"name": name, "reason": uploads.too_large_text(name)})
    rate_limited = False
    for upload_file in request.FILES.getlist("files"):
        content_type, reason = uploads.examine(upload_file, check)
        if reason:
            refused.append({"name": upload_file.name, "reason": reason})
            continue
        try:
            quotas.check_upload(request.user, upload_file.name, upload_file.size)
        except quotas.TooManyUploads as exc:
            rate_limited = True
            refused.append({"name": upload_file.name, "reason": str(exc)})
            continue
        except quotas.QuotaExceeded as exc:
            refused.append({"name": upload_file.name, "reason": str(exc)})
            continue
        try:
            item = library.add_item(
                request.user, upload_file, upload_file.name, albums=[album] if album else [], content_type=content_type
            )
        except library.LibraryError as exc:
            refused.append({"name": upload_file.name, "reason": str(exc)})
            continue
        except (OSError, ExportError, BotoCoreError, ClientError):
            log.exception("storing an upload of user %s failed", request.user.pk)
            reason = f"We could not store “{upload_file.name}” just now. Please try again in a few minutes."
            refused.append({"name": upload_file.name, "reason": reason})
            continue
        added.append({"name": item.original_name, "id": str(item.public_id)})
    if not added and not refused:
        refused.append({"name": "", "reason": "Choose at least one photo or video to upload."})
    if _wants_json(request):
        status = 200 if added or not refused else 429 if rate_limited else 400
        return JsonResponse({"added": added, "refused": refused}, status=status)
    if added:
        files = f"{len(added)} file" + ("s" if len(added) != 1 else "")
        messages.success(request, f"Added {files}. They wait for your next disc.")
    for refusal in refused:
        messages.error(request, refusal["reason"] + " Nothing was added for it.")
    return redirect(selection.Where(shown=album).listing())


@login_required
@require_POST
def create_album(request: HttpRequest) -> HttpResponse:
    form = AlbumForm(request.user, request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return redirect("library")
    parent = form.parent_album()
    try:
        album = library.ensure_album_path(request.user, [*(parent.path() if parent else []), form.cleaned_data["name"]])
    except library.LibraryError as exc:
        messages.error(request, str(exc))
        return redirect(selection.Where(shown=parent).listing())
    messages.success(request, f"Album “{form.cleaned_data['name']}” is ready.")
    return redirect(selection.Where(shown=album).listing())


@login_required
def item_page(request: HttpRequest, public_id) -> HttpResponse:
    item = get_item_for_user(request, public_id)
    entries = (
        DiscEntry.objects.filter(item=item, held_back=False)
        .select_related("disc")
        .order_by("disc__number")
        .only("kind", "disc__number", "disc__public_id", "disc__status")
    )
    state = with_disc_state(MediaItem.objects.filter(pk=item.pk)).values("waiting", "disc_number").get()
    item.on_a_disc = state["disc_number"] is not None
    move = MoveForm(request.user, initial={"albums": [str(a.public_id) for a in item.albums.all()]})
    return render(
        request,
        "portal/item.html",
        {
            "item": item,
            "entries": entries,
            "waiting": state["waiting"] and item.status == ItemStatus.LIVE,
            "disc_number": state["disc_number"],
            "facts": deletion.deletion_facts(item),
            "trash_days": settings.DISCSUB_TRASH_DAYS,
            "hold_days": settings.DISCSUB_DELETE_HOLD_DAYS,
            "edit_form": ItemEditForm(initial={"title": item.title, "caption": item.caption}),
            "move_form": move,
        },
    )


@login_required
@require_POST
def edit_item(request: HttpRequest, public_id) -> HttpResponse:
    item = get_item_for_user(request, public_id)
    form = ItemEditForm(request.POST)
    if form.is_valid():
        try:
            library.edit_metadata(item, title=form.cleaned_data["title"], caption=form.cleaned_data["caption"])
        except library.LibraryError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Saved. The change goes on your next disc.")
    else:
        messages.error(request, "Check the title and caption.")
    return redirect("item", public_id=item.public_id)


@login_required
@require_POST
def move_item(request: HttpRequest, public_id) -> HttpResponse:
    item = get_item_for_user(request, public_id)
    form = MoveForm(request.user, request.POST)
    if form.is_valid():
        try:
            library.move_item(item, form.chosen())
        except library.LibraryError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Albums saved.")
    else:
        messages.error(request, "Choose albums from the list.")
    return redirect("item", public_id=item.public_id)


@login_required
def thumbnail(request: HttpRequest, public_id, version: int) -> HttpResponse:
    """An item version's stored thumbnail, or the shared placeholder."""
    item = get_item_for_user(request, public_id, deleted_ok=True)
    name = thumbnails.storage_name_for(str(item.public_id), version)
    if default_storage.exists(name):
        response = FileResponse(default_storage.open(name, "rb"), content_type="image/jpeg")
        # A version's thumbnail never changes.
        response["Cache-Control"] = "private, max-age=86400"
    else:
        response = HttpResponse(thumbnails.PLACEHOLDER_SVG, content_type="image/svg+xml")
        decided = default_storage.exists(thumbnails.marker_name_for(str(item.public_id), version))
        # Until a worker has made the thumbnail, or decided there is none, ask again.
        response["Cache-Control"] = "private, max-age=86400" if decided else "private, no-cache"
    return response
