"""Signing in (every door through the one limiter, discsub/signin_limits.py;
a code after the password for staff with an authenticator), password reset
(limited too) and the subscriber's settings."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth import login as auth_login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login

from discsub import known_devices, signin_limits
from discsub.portal.forms import AddressForm, EmailPreferencesForm, PlanForm
from discsub.portal.lookups import get_subscription_for_user
from discsub.staff.access import ENROLLED, confirmed_device, is_fulfilment_staff
from discsub.staff.two_factor import CodeForm
from exporter import deletion, quotas, subscriptions
from exporter.errors import IllegalTransition
from exporter.models import SubscriptionStatus

TOO_MANY = (
    "Too many failed sign-ins for this username from your network. Wait {wait}, then try again: "
    "the right password works then. Forgotten it? Reset your password."
)
TOO_MANY_RESETS = "Too many reset requests for this address or from your network. Wait {wait} and try again."
# The password was right; the code must follow within this long.
PENDING = "discsub_signin_pending"
PENDING_SECONDS = 300


def _in_words(seconds: int) -> str:
    if seconds <= 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minutes"


def _login_checks(request: HttpRequest, username: str) -> list:
    """Per username from this client and per client; from a browser that
    signed in as this username before, per username on that device only
    (``discsub.known_devices``: others at the same address cannot use up
    its attempts)."""
    per_user, per_client = signin_limits.login_limits()
    username = signin_limits.normalise_username(username)
    if device := known_devices.device_for(request, username):
        return [(per_user, f"{username}|device:{device}")]
    client = signin_limits.client_address(request)
    return [(per_user, f"{username}|{client}"), (per_client, client)]


def _signed_in(request: HttpRequest, response: HttpResponse, checks: list, reservation) -> HttpResponse:
    signin_limits.release(reservation)
    signin_limits.forget(checks[:1])
    known_devices.remember(request, response, signin_limits.normalise_username(request.user.get_username()))
    return response


def _landing(user, next_url: str) -> str:
    # Fulfilment staff come to work the queue, not to a library.
    if next_url:
        return next_url
    return reverse("staff:queue") if is_fulfilment_staff(user) else reverse(settings.LOGIN_REDIRECT_URL)


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """The site's root (the brand link, where signing in lands): the queue for
    fulfilment staff, the library for everyone else."""
    return redirect("staff:queue" if is_fulfilment_staff(request.user) else "library")


class LoginView(auth_views.LoginView):
    """Django's sign-in behind the limiter: failed attempts counted per
    username from one client and per client; past a limit that client waits
    between attempts, and no password is checked while it should wait: the
    attempt is taken (reserved) before the password is checked, and given
    back if it was right.  A staff member with an authenticator is asked for
    its code next."""

    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        return _landing(self.request.user, "")

    def post(self, request, *args, **kwargs):
        checks = _login_checks(request, request.POST.get("username", ""))
        reservation = signin_limits.reserve(checks)
        if reservation.wait:
            # An unbound form: binding it would check the password.
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
            context = self.get_context_data(form=form, limited=TOO_MANY.format(wait=_in_words(reservation.wait)))
            return self.render_to_response(context, status=429)
        self.password_right = False
        response = super().post(request, *args, **kwargs)
        if request.user.is_authenticated:
            return _signed_in(request, response, checks, reservation)
        if self.password_right:  # the code comes next; a wrong one is the failure
            signin_limits.release(reservation)
        return response

    def form_valid(self, form):
        self.password_right = True
        user = form.get_user()
        if not user.is_staff or confirmed_device(user) is None:
            return super().form_valid(form)
        # Not signed in yet: the code comes first.  Its failures count as
        # failed sign-ins of this username from this client.
        self.request.session[PENDING] = {
            "user": user.pk,
            "backend": user.backend,
            "next": self.get_redirect_url(),
            "since": time.time(),
        }
        return redirect("login_code")


@sensitive_post_parameters("code")
@csrf_protect
@never_cache
def login_code(request: HttpRequest) -> HttpResponse:
    """The second step for staff with an authenticator: after the right
    password, or for a session signed in before they enrolled."""
    pending = request.session.get(PENDING)
    if request.user.is_authenticated:
        user, next_url = request.user, request.GET.get("next") or request.POST.get("next") or ""
        if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
            next_url = ""
    elif pending and time.time() - pending["since"] < PENDING_SECONDS:
        user, next_url = get_user_model().objects.get(pk=pending["user"]), pending["next"]
    else:
        request.session.pop(PENDING, None)
        return redirect("login")
    device = confirmed_device(user)
    if device is None or (request.user.is_authenticated and request.user.is_verified()):
        request.session[ENROLLED] = device is not None
        return redirect(_landing(user, next_url))
    form = CodeForm(request.POST or None)
    context = {"form": form, "next": next_url}
    if request.method == "POST":
        checks = _login_checks(request, user.get_username())
        reservation = signin_limits.reserve(checks)
        if reservation.wait:
            context.update(form=CodeForm(), limited=TOO_MANY.format(wait=_in_words(reservation.wait)))
            return render(request, "registration/login_code.html", context, status=429)
        if form.is_valid() and device.verify_token(form.token()):
            if not request.user.is_authenticated:
                auth_login(request, user, backend=pending["backend"])
            otp_login(request, device)
            request.session.pop(PENDING, None)
            return _signed_in(request, redirect(_landing(user, next_url)), checks, reservation)
        if form.is_valid():
            form.add_error("code", "That code does not match. Codes change every 30 seconds: try the one shown now.")
    return render(request, "registration/login_code.html", context, status=400 if form.errors else 200)


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset behind the limiter: requests per email
    address (its inbox is not flooded, from however many clients) and per
    client.  Past a limit nothing is sent, and the page says to wait."""

    def post(self, request, *args, **kwargs):
        per_email, per_client = signin_limits.reset_limits()
        email = signin_limits.normalise_username(request.POST.get("email", ""))
        checks = [(per_email, email), (per_client, signin_limits.client_address(request))]
        if wait := signin_limits.wait_seconds(checks):
            context = self.get_context_data(
                form=self.get_form_class()(), limited=TOO_MANY_RESETS.format(wait=_in_words(wait))
            )
            return self.render_to_response(context, status=429)
        signin_limits.record(checks)
        return super().post(request, *args, **kwargs)


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    subscription = get_subscription_for_user(request)
    return render(request, "portal/settings.html", _settings_context(subscription))


def _settings_context(subscription, **forms) -> dict:
    return {
        "subscription": subscription,
        "plan_form": forms.get("plan_form")
        or PlanForm(initial={"medium": subscription.medium, "cadence": subscription.cadence}),
        "address_form": forms.get("address_form") or AddressForm.for_subscription(subscription),
        "email_form": forms.get("email_form")
        or EmailPreferencesForm(
            initial={"on_shipped": subscription.email_on_shipped, "on_delivered": subscription.email_on_delivered}
        ),
        # Thumbnail sizes would cost a storage look-up per version: the page leaves them out.
        "usage": deletion.storage_usage(subscription.user, measure_thumbnails=False),
        "quota": quotas.quota_bytes(subscription.user),
        "active": subscription.status == SubscriptionStatus.ACTIVE,
        "paused": subscription.status == SubscriptionStatus.PAUSED,
        "cancelled": subscription.status == SubscriptionStatus.CANCELLED,
    }


@login_required
@require_POST
def change_plan(request: HttpRequest) -> HttpResponse:
    subscription = get_subscription_for_user(request)
    form = PlanForm(request.POST)
    if not form.is_valid():
        return render(request, "portal/settings.html", _settings_context(subscription, plan_form=form), status=400)
    try:
        subscriptions.change_plan(subscription, request.user, **form.cleaned_data)
    except IllegalTransition as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Plan saved. Discs already planned keep their disc type.")
    return redirect("settings")


@login_required
@require_POST
def change_address(request: HttpRequest) -> HttpResponse:
    subscription = get_subscription_for_user(request)
    form = AddressForm(request.POST)
    if form.is_valid():
        try:
            subscriptions.update_address(subscription, request.user, **form.cleaned_data)
        except subscriptions.InvalidAddress as exc:
            for field, error in exc.errors.items():
                form.add_error(field, error)
        else:
            messages.success(request, "Address saved. Discs already on their way keep the address they were sent to.")
            return redirect("settings")
    messages.error(request, "Please check the address.")
    return render(request, "portal/settings.html", _settings_context(subscription, address_form=form), status=400)


@login_required
@require_POST
def change_emails(request: HttpRequest) -> HttpResponse:
    subscription = get_subscription_for_user(request)
    form = EmailPreferencesForm(request.POST)
    form.is_valid()  # two checkboxes: always valid
    subscriptions.set_email_preferences(
        subscription,
        request.user,
        on_shipped=form.cleaned_data.get("on_shipped", False),
        on_delivered=form.cleaned_data.get("on_delivered", False),
    )
    messages.success(request, "Email preferences saved.")
    return redirect("settings")


def _status_move(action, done: str):
    @login_required
    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        subscription = get_subscription_for_user(request)
        if action is subscriptions.cancel and request.POST.get("confirm") != "yes":
            messages.error(request, "Tick the box to confirm that you want to cancel.")
            return redirect("settings")
        try:
            action(subscription, request.user)
        except IllegalTransition as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, done)
        return redirect("settings")

    return view


pause = _status_move(subscriptions.pause, "Paused. Nothing new is put on a disc until you resume.")
resume = _status_move(subscriptions.resume, "Welcome back. Your next disc carries everything that waited.")
cancel = _status_move(
    subscriptions.cancel, "Cancelled. One final disc carries what is waiting; your discs stay downloadable here."
)
