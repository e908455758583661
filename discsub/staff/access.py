"""Who may use the staff pages, and the one way they look up a copy.

Staff need ``is_staff`` and the ``exporter.change_disccopy`` permission
(moving copies through their lifecycle is what changing a copy means here);
a subscriber who guesses a staff URL gets a 404, as if it did not exist.
A staff member who enrolled an authenticator (``two_factor``) also needs a
session verified with its code."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.signals import user_logged_in
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.models import Session
from django.dispatch import receiver
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from exporter.models import Disc, DiscCopy

PERMISSION = "exporter.change_disccopy"


def is_fulfilment_staff(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm(PERMISSION))


# Set at sign-in, so that the staff pages know without a query whether this
# session must be verified with a code.
ENROLLED = "discsub_authenticator_enrolled"


def confirmed_device(user) -> TOTPDevice | None:
    if not user.is_authenticated:
        return None
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


@receiver(user_logged_in, dispatch_uid="discsub-authenticator-enrolled")
def _note_enrolment(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session") and user.is_staff:
        request.session[ENROLLED] = confirmed_device(user) is not None


def needs_code(request: HttpRequest) -> bool:
    """Signed in with the password alone, though an authenticator is enrolled."""
    return bool(request.session.get(ENROLLED) and not request.user.is_verified())


def end_other_sessions(user, keep: str | None) -> int:
    """Sign ``user`` out everywhere but the session ``keep`` (a session from
    before enrolling an authenticator was never asked for a code)."""
    ended = 0
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.session_key != keep and session.get_decoded().get("_auth_user_id") == str(user.pk):
            session.delete()
            ended += 1
    return ended


def staff_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_fulfilment_staff(request.user):
            raise Http404("No such page.")
        if needs_code(request):
            return redirect_to_login(request.get_full_path(), login_url="login_code")
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
