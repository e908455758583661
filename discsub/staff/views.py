"""The fulfillment queue and the copy page.

Views read forms and call the transition functions of exporter.fulfillment;
they never assign a status.  A refused move (IllegalTransition, a bad
tracking number) becomes an error message and changes nothing."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from discsub import query
from exporter import carriers, fulfillment, status
from exporter.countries import COUNTRIES
from exporter.errors import ExportError, IllegalTransition
from exporter.labels import disc_date_ranges
from exporter.models import CopyStatus, DiscCopy, ReadBackCheck

from . import queue as steps
from .access import get_copy, staff_required
from .forms import BurnedForm, ClaimForm, CopiesForm, FilterForm, NoteForm, ReadBackForm, ShipForm

PAGE_SIZE = 100
ENVELOPE_PAGE_SIZE = 500


def _back(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return target
    return default


def _copies(n: int) -> str:
    return f"{n} cop{'y' if n == 1 else 'ies'}"


def can_reship(copy: DiscCopy) -> bool:
    """A returned copy may go out again once the subscriber fixed the address after it came back."""
    subscription = getattr(copy.disc.owner, "subscription", None)
    return copy.status == CopyStatus.RETURNED and fulfillment.address_fixed_since_return(copy, subscription)


def envelopes(rows: list[DiscCopy]) -> list[dict]:
    """Copies grouped by subscriber and address snapshot, oldest envelope first."""
    grouped: dict[tuple, dict] = {}
    for copy in rows:
        # A returned copy goes out again to the address the subscriber fixed.
        address = copy.disc.owner.subscription.address() if copy.status == CopyStatus.RETURNED else copy.address
        key = (copy.disc.owner_id, tuple(sorted(address.items())))
        envelope = grouped.setdefault(
            key,
            {
                "owner": copy.disc.owner,
                "address": address,
                # Mail abroad ends with the country's name in capitals (UPU), not its code.
                "country": COUNTRIES.get(address.get("country", ""), address.get("country", "")).upper(),
                "copies": [],
            },
        )
        envelope["copies"].append(copy)
    return list(grouped.values())


@staff_required
def queue(request: HttpRequest, step: str = "burn") -> HttpResponse:
    current = steps.STEPS.get(step)
    if current is None:
        raise Http404("No such step.")
    filters = FilterForm(request.GET)
    filters.is_valid()
    chosen = filters.cleaned_data
    rows = steps.copies(
        current,
        medium=chosen.get("medium") or "",
        min_age_days=int(chosen.get("age") or 0),
        mine=request.user if chosen.get("mine") else None,
    )
    # Envelopes are grouped within a page: the ship tab's page is long enough to keep them whole.
    size = ENVELOPE_PAGE_SIZE if current.slug in ("ship", "exceptions") else PAGE_SIZE
    page = Paginator(rows, size).get_page(query.page_number(request))
    rows = list(page.object_list)
    now = timezone.now()
    for copy in rows:
        copy.can_reship = can_reship(copy)
        copy.why = steps.why_exceptional(copy, can_reship=copy.can_reship) if current.slug == "exceptions" else ""
        subscription = getattr(copy.disc.owner, "subscription", None)
        copy.mailable = subscription is not None and subscription.has_address
        copy.waited = now - copy.status_changed_at
        copy.carrier_name = carriers.carrier_name(copy.shipment.carrier) if copy.shipment else ""
        copy.tracking_url = (
            carriers.tracking_url(copy.shipment.carrier, copy.shipment.tracking_number) if copy.shipment else ""
        )
    filter_query = request.GET.copy()
    filter_query.pop("page", None)
    context = {
        "section": "queue",
        "filter_query": filter_query.urlencode(),
        "step": current,
        "steps": steps.STEPS.values(),
        "counts": steps.tab_counts(),
        "filters": filters,
        "page": page,
        "rows": rows,
        "claim_form": ClaimForm(initial={"medium": chosen.get("medium") or ""}),
        "burned_form": BurnedForm(),
        "carriers": carriers.CARRIERS.values(),
    }
    if current.slug in ("ship", "exceptions"):
        context["envelopes"] = envelopes([c for c in rows if c.status == CopyStatus.LABELLED or c.can_reship])
    if current.slug == "exceptions":
        context["failed_builds"] = status.failed_builds(limit=50)
    return render(request, "staff/queue.html", context)


@staff_required
@require_POST
def claim(request: HttpRequest) -> HttpResponse:
    form = ClaimForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say how many copies to claim (1 to 100).")
        return redirect("staff:queue")
    data = form.cleaned_data
    got = fulfillment.claim_next(request.user, limit=data["count"], medium=data["medium"] or None, drive=data["drive"])
    if got:
        messages.success(request, f"You claimed {_copies(len(got))}. Download the images and burn them.")
    else:
        messages.info(request, "Nothing to claim: no copy is waiting to be burned (for a subscriber with an address).")
    return redirect(reverse("staff:step", args=["burn"]) + "?mine=on")


def _each(request: HttpRequest, ids: list[int], move: Callable[[int], object]) -> tuple[int, list[str]]:
    """Apply one move to each copy on its own; collect the refusals (each distinct message once)."""
    done, errors = 0, []
    for pk in ids:
        try:
            move(pk)
            done += 1
        except ExportError as e:
            if str(e) not in errors:
                errors.append(str(e))
        except DiscCopy.DoesNotExist:
            if "A selected copy no longer exists." not in errors:
                errors.append("A selected copy no longer exists.")
    return done, errors


@staff_required
@require_POST
def batch(request: HttpRequest) -> HttpResponse:
    back = _back(request, reverse("staff:queue"))
    form = CopiesForm(request.POST)
    action = request.POST.get("action", "")
    if not form.is_valid():
        messages.error(request, "Select some copies first.")
        return redirect(back)
    ids = form.cleaned_data["copies"]
    user, post = request.user, request.POST
    if action == "print":
        return redirect(reverse("staff:print") + "?" + "&".join(f"copies={pk}" for pk in ids))
    if action == "claim":
        got = fulfillment.claim_copies(ids, user, drive=post.get("drive", ""))
        if got:
            messages.success(request, f"You claimed {_copies(len(got))}.")
        if len(got) < len(ids):
            messages.warning(
                request,
                f"{_copies(len(ids) - len(got))} could not be claimed: someone else has them, "
                "they are no longer waiting, or the subscriber has no address.",
            )
        return redirect(back)
    moves: dict[str, tuple[str, Callable[[int], object]]] = {
        "burned": (
            "marked burned",
            lambda pk: fulfillment.mark_burned(
                pk, user, drive=post.get("drive", ""), media_batch=post.get("media_batch", "")
            ),
        ),
        "burn_failed": ("sent back to burn", lambda pk: fulfillment.burn_failed(pk, user, note=post.get("note", ""))),
        "release": ("released", lambda pk: fulfillment.release(pk, user)),
        "labelled": ("marked labelled", lambda pk: fulfillment.mark_labelled(pk, user)),
        "delivered": ("marked delivered", lambda pk: fulfillment.mark_delivered(pk, user)),
        "returned": ("marked returned", lambda pk: fulfillment.mark_returned(pk, user)),
    }
    if action not in moves:
        messages.error(request, "Choose what to do with the selected copies.")
        return redirect(back)
    past, move = moves[action]
    done, errors = _each(request, ids, move)
    if done:
        messages.success(request, f"{_copies(done)} {past}.")
    for error in errors:
        messages.error(request, error)
    return redirect(back)


@staff_required
@require_POST
def ship(request: HttpRequest) -> HttpResponse:
    back = _back(request, reverse("staff:step", args=["ship"]))
    form = ShipForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose the discs for the envelope, the carrier and the tracking number.")
        return redirect(back)
    data = form.cleaned_data
    try:
        shipment = fulfillment.ship(
            data["copies"], request.user, carrier=data["carrier"], tracking_number=data["tracking_number"]
        )
    except ExportError as e:
        messages.error(request, f"Not shipped: {e}")
        return redirect(back)
    numbers = ", ".join(str(c.disc.number) for c in shipment.copies.select_related("disc").order_by("disc__number"))
    messages.success(
        request,
        f"Shipped disc{'s' if ',' in numbers else ''} {numbers} to {shipment.address.get('name') or shipment.owner} "
        f"with {carriers.carrier_name(shipment.carrier)} {shipment.tracking_number}.",
    )
    return redirect(back)


def _copy_page(request: HttpRequest, copy: DiscCopy, *, read_back_form=None, status_code: int = 200) -> HttpResponse:
    events = list(copy.events.select_related("actor").order_by("at", "id"))
    labels = dict(CopyStatus.choices)
    for event in events:
        event.from_label = labels.get(event.from_status, event.from_status)
        event.to_label = labels.get(event.to_status, event.to_status)
    try:
        fulfillment.history(copy)
        gap = ""
    except IllegalTransition as e:
        gap = str(e)
    subscription = getattr(copy.disc.owner, "subscription", None)
    context = {
        "section": "queue",
        "copy": copy,
        "disc": copy.disc,
        "events": events,
        "history_gap": gap,
        "read_backs": list(copy.read_backs.select_related("actor")),
        "date_range": disc_date_ranges([copy.disc])[copy.disc.pk],
        "subscription": subscription,
        # A failed read-back counts against the drive that burned the disc and
        # the batch of blanks it came from (the dashboard's failure rates).
        "read_back_form": read_back_form
        or ReadBackForm(
            initial={
                "drive": copy.drive,
                "media_batch": copy.media_batch,
                "method": request.session.get("read_back_method", ReadBackCheck.Method.CHECKISOMD5),
            }
        ),
        "burned_form": BurnedForm(initial={"drive": copy.drive}),
        "note_form": NoteForm(),
        "carriers": carriers.CARRIERS.values(),
        "can_reship": can_reship(copy),
        "country_name": COUNTRIES.get(copy.address.get("country", ""), copy.address.get("country", "")),
        "tracking_url": carriers.tracking_url(copy.shipment.carrier, copy.shipment.tracking_number)
        if copy.shipment
        else "",
        "carrier_name": carriers.carrier_name(copy.shipment.carrier) if copy.shipment else "",
    }
    return render(request, "staff/copy.html", context, status=status_code)


@staff_required
def copy_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _copy_page(request, get_copy(pk))


@staff_required
@require_POST
def copy_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    copy = get_copy(pk)
    user, post = request.user, request.POST
    if action == "read-back":
        form = ReadBackForm(post)
        # The form is on the page only while the copy waits for its read-back;
        # otherwise the refusal comes back as a message.
        on_page = copy.status == CopyStatus.BURNED
        if on_page and not form.is_valid():
            return _copy_page(request, copy, read_back_form=form, status_code=400)
        fields = ("drive", "media_batch", "method", "value")
        data = form.cleaned_data if form.is_valid() else {f: post.get(f, "") for f in fields}
        try:
            check = fulfillment.record_read_back(copy.pk, user, **data)
        except ExportError as e:
            if not on_page:
                messages.error(request, str(e))
                return redirect("staff:copy", pk)
            form.add_error(None, str(e))
            return _copy_page(request, get_copy(pk), read_back_form=form, status_code=400)
        request.session["read_back_method"] = check.method
        if check.ok:
            messages.success(request, f"Read-back OK: disc {copy.disc.number} is ready to label.")
        else:
            messages.warning(
                request,
                f"Read-back failed (burned on {check.drive}, media batch {check.media_batch}); "
                f"disc {copy.disc.number} goes back to the burn queue.",
            )
        # Straight on to the next disc waiting for its read-back, the oldest first.
        following = DiscCopy.objects.filter(status=CopyStatus.BURNED).order_by("status_changed_at", "pk").first()
        if following is None:
            return redirect("staff:copy", pk)
        return redirect(reverse("staff:copy", args=[following.pk]) + "#read-back")
    moves: dict[str, tuple[str, Callable[[], object]]] = {
        "claim": ("Claimed", lambda: _claim_one(copy, user, post.get("drive", ""))),
        "release": ("Released", lambda: fulfillment.release(copy.pk, user)),
        "burned": (
            "Marked burned",
            lambda: fulfillment.mark_burned(
                copy.pk, user, drive=post.get("drive", ""), media_batch=post.get("media_batch", "")
            ),
        ),
        "burn-failed": ("Sent back to burn", lambda: fulfillment.burn_failed(copy.pk, user, note=post.get("note", ""))),
        "labelled": ("Marked labelled", lambda: fulfillment.mark_labelled(copy.pk, user)),
        "delivered": ("Marked delivered", lambda: fulfillment.mark_delivered(copy.pk, user, note=post.get("note", ""))),
        "returned": ("Marked returned", lambda: fulfillment.mark_returned(copy.pk, user, note=post.get("note", ""))),
    }
    if action not in moves:
        raise Http404("No such action.")
    done, move = moves[action]
    try:
        move()
    except ExportError as e:
        messages.error(request, str(e))
    else:
        messages.success(
            request, f"{done}: disc {copy.disc.number} of {copy.disc.owner.get_full_name() or copy.disc.owner}."
        )
    return redirect("staff:copy", pk)


def _claim_one(copy: DiscCopy, user, drive: str) -> None:
    if not fulfillment.claim_copies([copy.pk], user, drive=drive):
        raise IllegalTransition(
            f"Disc {copy.disc.number} of {copy.disc.owner} cannot be claimed: someone else has it, "
            "it is not waiting to be burned, or the subscriber has no address."
        )
