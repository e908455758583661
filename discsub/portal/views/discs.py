"""The disc history: every disc, its story, its manifest and its downloads."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Max, Min, Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from discsub import downloads, query
from discsub.portal import timeline
from discsub.portal.forms import ReportForm
from discsub.portal.lookups import get_copy_for_user, get_disc_for_user
from exporter import carriers, disc_manifest, fulfillment
from exporter.blockers import UNMAILED
from exporter.errors import ExportError
from exporter.models import CopyStatus, Disc, DiscCopy, DiscStatus

MANIFEST_PAGE_SIZE = 100
REPORTABLE = (CopyStatus.SHIPPED, CopyStatus.DELIVERED)


@login_required
def disc_list(request: HttpRequest) -> HttpResponse:
    discs = list(
        Disc.objects.filter(owner=request.user)
        .annotate(first_change_at=Min("changes__created_at"), last_change_at=Max("changes__created_at"))
        .prefetch_related(
            Prefetch("copies", queryset=DiscCopy.objects.select_related("shipment").order_by("created_at", "id"))
        )
        .order_by("-number")
    )
    for disc in discs:
        copies = list(disc.copies.all())
        disc.where, disc.tone = timeline.where_is_it(disc, copies)
        shipped = [c for c in copies if c.shipment is not None]
        disc.shipment = shipped[-1].shipment if shipped else None
        if disc.shipment:
            disc.tracking_url = carriers.tracking_url(disc.shipment.carrier, disc.shipment.tracking_number)
            disc.carrier = carriers.carrier_name(disc.shipment.carrier)
    return render(request, "portal/discs.html", {"discs": discs})


@login_required
def disc_page(request: HttpRequest, public_id) -> HttpResponse:
    disc = get_disc_for_user(request, public_id)
    events, copies = timeline.load(disc)
    steps, story = timeline.build(disc, events, copies)
    where, tone = timeline.where_is_it(disc, copies)
    reportable = [c for c in copies if c.status in REPORTABLE]
    return render(
        request,
        "portal/disc.html",
        {
            "disc": disc,
            "steps": steps,
            "story": story,
            "where": where,
            "tone": tone,
            "copies": copies,
            "reportable": reportable,
            "report_form": ReportForm(),
            "replacements_left": fulfillment.replacements_left(request.user),
            "replacements_per_period": settings.DISCSUB_REPLACEMENTS_PER_PERIOD,
            "replacement_period_days": settings.DISCSUB_REPLACEMENT_PERIOD_DAYS,
            "downloadable": disc.status == DiscStatus.VERIFIED,
            "returned": any(c.status == CopyStatus.RETURNED for c in copies),
            "unmailed": any(c.status in UNMAILED for c in copies),
        },
    )


@login_required
def manifest_page(request: HttpRequest, public_id) -> HttpResponse:
    disc = get_disc_for_user(request, public_id)
    document = disc_manifest.manifest_document(disc)
    page = Paginator(document["files"], MANIFEST_PAGE_SIZE).get_page(query.page_number(request))
    changes = document["changes"]
    captured = document["disc"]["captured"]
    return render(
        request,
        "portal/manifest.html",
        {
            "disc": disc,
            "document": document,
            "page": page,
            "edited": changes["edited"],
            "deleted": changes["deleted"],
            "held_back": document["held_back"],
            "total_bytes": sum(f["size"] for f in document["files"]),
            "taken_first": _instant(captured["first"]),
            "taken_last": _instant(captured["last"]),
        },
    )


@login_required
def manifest_json(request: HttpRequest, public_id) -> HttpResponse:
    disc = get_disc_for_user(request, public_id)
    response = HttpResponse(disc_manifest.manifest_bytes(disc), content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="disc-{disc.number:04d}-manifest.json"'
    return response


@login_required
def image(request: HttpRequest, public_id) -> HttpResponse:
    """The image, streamed with Range support, or a short-lived signed URL on S3."""
    return downloads.image_response(request, get_disc_for_user(request, public_id))


@login_required
@require_POST
def report_problem(request: HttpRequest, public_id, copy_id) -> HttpResponse:
    disc = get_disc_for_user(request, public_id)
    copy = get_copy_for_user(request, disc, copy_id)
    form = ReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say whether the disc was lost or arrived damaged.")
        return redirect("disc", public_id=disc.public_id)
    try:
        fulfillment.report_problem(
            copy.pk, request.user, problem=form.cleaned_data["problem"], note=form.cleaned_data["note"]
        )
    except ExportError as exc:
        messages.error(request, _plain(str(exc), copy))
    else:
        messages.success(request, f"Thank you. A new copy of disc {disc.number} is queued; we will mail it soon.")
    return redirect("disc", public_id=disc.public_id)


def _instant(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _plain(message: str, copy: DiscCopy) -> str:
    # The engine's refusals name the copy for staff; the subscriber knows which disc.
    if "cannot be marked" in message:
        return f"Disc {copy.disc.number} cannot be reported now: it is {copy.get_status_display().lower()}."
    return message
