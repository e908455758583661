"""Optional TOTP (an authenticator app) for staff accounts, with django-otp.

A staff member enrols here: the password again (a session left open, or a
stolen cookie, is not enough), then a QR code (segno) of a key made for
this one enrolment and kept in this session only, then a code from the app
confirms it; only then is a device stored, and every other device of the
member deleted.  Replacing a confirmed authenticator needs a session
already verified with its code.  From then on signing in asks for a code
after the password (``discsub.portal.views.account.login_code``), and the
staff pages need a session verified with it (``access.staff_required``)."""

from __future__ import annotations

import base64
import time

import segno
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from discsub import signin_limits

from .access import ENROLLED, confirmed_device, end_other_sessions, staff_required

DEVICE_NAME = "Authenticator app"
# The key being enrolled, in this session only: {"key": hex, "since": time}.
ENROLMENT = "discsub_authenticator_enrolment"
ENROLMENT_SECONDS = 600


class CodeForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Code from your authenticator app",
        error_messages={"invalid": "Enter the 6 digits your app shows."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def token(self) -> str:
        return self.cleaned_data["code"].strip()


class PasswordForm(forms.Form):
    password = forms.CharField(
        label="Your password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


def _pending_key(request: HttpRequest) -> str | None:
    enrolment = request.session.get(ENROLMENT)
    if enrolment and time.time() - enrolment["since"] < ENROLMENT_SECONDS:
        return enrolment["key"]
    request.session.pop(ENROLMENT, None)
    return None


def _verified_device(request: HttpRequest, key: str, token: str) -> TOTPDevice | None:
    """A confirmed device for ``key`` if ``token`` is its code now (not yet saved)."""
    device = TOTPDevice(user=request.user, name=DEVICE_NAME, key=key, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    if not totp.verify(int(token), device.tolerance):
        return None
    device.last_t, device.drift = totp.t(), totp.drift  # this code is used up
    return device


def _password_step(request: HttpRequest, form: PasswordForm) -> HttpResponse | None:
    """A fresh key in the session after the right password; None when the form failed."""
    reservation = signin_limits.reserve([(signin_limits.login_limits()[0], _user_client(request))])
    if reservation.wait:
        form.add_error("password", f"Too many wrong passwords: wait {reservation.wait} seconds.")
        return None
    if not request.user.check_password(form.cleaned_data["password"]):
        form.add_error("password", "That is not your password.")  # the reserved attempt counts
        return None
    signin_limits.release(reservation)
    request.session[ENROLMENT] = {"key": random_hex(20), "since": time.time()}
    return redirect("staff:two-factor")


def _user_client(request: HttpRequest) -> str:
    username = signin_limits.normalise_username(request.user.get_username())
    return f"{username}|{signin_limits.client_address(request)}"


@sensitive_post_parameters("password", "code")
@staff_required
def two_factor_page(request: HttpRequest) -> HttpResponse:
    device = confirmed_device(request.user)
    # Replacing an authenticator takes a session verified with the current one.
    may_enrol = device is None or request.user.is_verified()
    key = _pending_key(request) if may_enrol else None
    if key is None:
        form = PasswordForm(request.POST or None) if may_enrol else None
        if form is not None and request.method == "POST" and form.is_valid():
            if response := _password_step(request, form):
                return response
        context = {"device": device, "password_form": form, "section": "two-factor"}
        return render(request, "staff/two_factor.html", context, status=400 if form and form.errors else 200)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if (new := _verified_device(request, key, form.token())) is not None:
            # The one device of this member: other (older, or never confirmed) ones go.
            TOTPDevice.objects.filter(user=request.user).delete()
            new.save()
            request.session.pop(ENROLMENT, None)
            otp_login(request, new)
            request.session[ENROLLED] = True
            end_other_sessions(request.user, keep=request.session.session_key)
            messages.success(request, "Authenticator on: signing in now asks for its code.")
            return redirect("staff:two-factor")
        form.add_error("code", "That code does not match: check the app's clock, or scan the code again.")
    pending = TOTPDevice(user=request.user, name=DEVICE_NAME, key=key)
    qr = segno.make(pending.config_url, error="m")
    context = {
        "device": device,
        "form": form,
        "qr": mark_safe(qr.svg_inline(scale=4, dark="#111", omitsize=False)),
        "key": _base32(pending.bin_key),
        "section": "two-factor",
    }
    return render(request, "staff/two_factor.html", context, status=400 if form.errors else 200)


@staff_required
@require_POST
def turn_off(request: HttpRequest) -> HttpResponse:
    TOTPDevice.objects.filter(user=request.user).delete()
    request.session.pop(ENROLMENT, None)
    request.session[ENROLLED] = False
    messages.success(request, "Authenticator off: signing in asks for your password only.")
    return redirect("staff:two-factor")


def _base32(key: bytes) -> str:
    text = base64.b32encode(key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))
