"""What waits for the next disc, and "ship what I have now"."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from discsub.portal.lookups import get_subscription_for_user
from exporter import subscriptions
from exporter.blockers import held_back_items
from exporter.errors import IllegalTransition
from exporter.media import Medium


@login_required
def next_disc_page(request: HttpRequest) -> HttpResponse:
    subscription = get_subscription_for_user(request)
    facts = subscriptions.next_disc(request.user)
    held_back = held_back_items(request.user).order_by("original_name")
    return render(
        request,
        "portal/next_disc.html",
        {
            "subscription": subscription,
            "facts": facts,
            "fill_percent": round(facts.fill * 100, 1),
            "medium_label": Medium(facts.medium).label,
            "held_back": held_back[:100],
        },
    )


@login_required
@require_POST
def ship_now(request: HttpRequest) -> HttpResponse:
    subscription = get_subscription_for_user(request)
    try:
        subscriptions.request_ship_now(subscription, request.user)
    except IllegalTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Done. We will put what is waiting on a disc shortly, even though it is not full.")
    return redirect("next_disc")
