"""Who may use the staff pages, and the one way they look up a copy.

Staff need ``is_staff`` and the ``exporter.change_disccopy`` permission
(moving copies through their lifecycle is what changing a copy means here);
a subscriber who guesses a staff URL gets a 404, as if it did not exist."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import get_object_or_404

from exporter.models import Disc, DiscCopy

PERMISSION = "exporter.change_disccopy"


def is_fulfilment_staff(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm(PERMISSION))


def staff_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_fulfilment_staff(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


def get_copy(pk: int) -> DiscCopy:
    return get_object_or_404(
        DiscCopy.objects.select_related(
            "disc", "disc__owner", "disc__owner__subscription", "claimed_by", "shipment", "replaces"
        ),
        pk=pk,
    )


def get_disc(pk: int) -> Disc:
    return get_object_or_404(Disc.objects.select_related("owner"), pk=pk)
