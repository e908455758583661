"""Signing in (rate-limited) and the subscriber's settings."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_ratelimit.core import get_usage

from discsub.portal.forms import AddressForm, EmailPreferencesForm, PlanForm
from discsub.portal.lookups import get_subscription_for_user
from discsub.staff.access import is_fulfilment_staff
from exporter import subscriptions
from exporter.errors import IllegalTransition
from exporter.models import SubscriptionStatus

TOO_MANY = (
    "Too many sign-in attempts. Wait {minutes} minutes and try again, or reset your password if you have forgotten it."
)


def _username_key(group, request) -> str:
    return (request.POST.get("username") or "").strip().casefold()


def _attempts(request: HttpRequest, *, increment: bool) -> bool:
    """Count a failed sign-in (``increment``) or say whether the limit is reached."""
    window = settings.DISCSUB_LOGIN_WINDOW_MINUTES
    limited = False
    for group, key, limit in (
        ("login-user", _username_key, settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER),
        ("login-ip", "ip", settings.DISCSUB_LOGIN_ATTEMPTS_PER_IP),
    ):
        usage = get_usage(request, group=group, key=key, rate=f"{limit}/{window}m", increment=increment)
        limited |= usage is not None and usage["count"] >= limit
    return limited


class LoginView(auth_views.LoginView):
    """Django's sign-in with failed attempts counted per username and per
    client address; past the limit, no password is checked at all."""

    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        # Fulfilment staff come to work the queue, not to a library.
        if is_fulfilment_staff(self.request.user):
            return reverse("staff:queue")
        return super().get_default_redirect_url()

    def post(self, request, *args, **kwargs):
        if _attempts(request, increment=False):
            # An unbound form: binding it would check the password.
            form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
            minutes = settings.DISCSUB_LOGIN_WINDOW_MINUTES
            context = self.get_context_data(form=form, limited=TOO_MANY.format(minutes=minutes))
            return self.render_to_response(context, status=429)
        response = super().post(request, *args, **kwargs)
        if not request.user.is_authenticated:
            _attempts(request, increment=True)
        return response


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
