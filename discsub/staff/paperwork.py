"""What staff print and download: disc labels, mailing labels, packing slips, images."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from discsub import downloads, query
from exporter import labels
from exporter.models import CopyStatus, DiscCopy, DiscStatus

from .access import get_disc, staff_required
from .views import envelopes

PAPERS = {"a4": ("A4", "210mm", "297mm"), "letter": ("Letter", "8.5in", "11in")}


@staff_required
def print_sheet(request: HttpRequest) -> HttpResponse:
    """Disc labels, then one mailing label and packing slip per envelope, for the chosen copies."""
    paper = query.choice(request, "paper", PAPERS, "a4")
    what = query.choice(request, "what", ("labels", "slips"), "all")
    ids = query.ids(request.GET.getlist("copies"), limit=200)
    copies = list(
        DiscCopy.objects.filter(pk__in=ids)
        .select_related("disc", "disc__owner")
        .order_by("disc__owner_id", "disc__number", "pk")
    )
    ranges = labels.disc_date_ranges({c.disc for c in copies})
    for copy in copies:
        copy.date_range = ranges[copy.disc_id]
    name, width, height = PAPERS[paper]
    # Two 120 mm labels fit one A4 or Letter page, one above the other.
    label_pages = [copies[i : i + 2] for i in range(0, len(copies), 2)]
    context = {
        "section": "queue",
        "organization": settings.DISCSUB_ORGANIZATION,
        "label_pages": label_pages,
        "labelled_ready": [c.pk for c in copies if c.status == CopyStatus.CHECKED],
        "copies": copies,
        "envelopes": envelopes(copies),
        "paper": paper,
        "paper_name": name,
        "paper_width": width,
        "paper_height": height,
        "papers": PAPERS,
        "what": what,
        "ids": ids,
        "query": "&".join(f"copies={pk}" for pk in ids),
    }
    return render(request, "staff/print.html", context)


@staff_required
def disc_label(request: HttpRequest, pk: int) -> HttpResponse:
    disc = get_disc(pk)
    if disc.status != DiscStatus.VERIFIED or not disc.image_sha256:
        raise Http404("This disc has no verified image yet, so no label.")
    png = labels.label_for(disc, labels.disc_date_ranges([disc])[disc.pk])
    response = HttpResponse(png, content_type="image/png")
    # The same disc always gets the same label; a print run asks for it more than once.
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Disposition"] = f'inline; filename="label-{disc.volume_id or disc.number}.png"'
    return response


@staff_required
def disc_image(request: HttpRequest, pk: int) -> HttpResponse:
    return downloads.image_response(request, get_disc(pk))
