"""Optional TOTP (an authenticator app) for staff accounts, with django-otp.

A staff member enrols here: a QR code (segno) of a new device's key, then a
code from the app confirms it.  From then on signing in asks for a code
after the password (``discsub.portal.views.account.login_code``), and the
staff pages need a session verified with it (``access.staff_required``)."""

from __future__ import annotations

import base64

import segno
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from .access import ENROLLED, confirmed_device, end_other_sessions, staff_required

DEVICE_NAME = "Authenticator app"


class CodeForm(forms.Form):
    code = forms.RegexField(
        regex=r"^\s*\d{6}\s*$",
        label="Code from your authenticator app",
        error_messages={"invalid": "Enter the 6 digits your app shows."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}),
    )

    def token(self) -> str:
        return self.cleaned_data["code"].strip()


@staff_required
def two_factor_page(request: HttpRequest) -> HttpResponse:
    device = confirmed_device(request.user)
    if device is not None:
        return render(request, "staff/two_factor.html", {"device": device, "section": "two-factor"})
    # One unconfirmed device at a time: its key stays the same across reloads.
    pending, _ = TOTPDevice.objects.get_or_create(user=request.user, confirmed=False, defaults={"name": DEVICE_NAME})
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if pending.verify_token(form.token()):
            pending.confirmed = True
            pending.save(update_fields=["confirmed"])
            otp_login(request, pending)
            request.session[ENROLLED] = True
            end_other_sessions(request.user, keep=request.session.session_key)
            messages.success(request, "Authenticator on: signing in now asks for its code.")
            return redirect("staff:two-factor")
        form.add_error("code", "That code does not match: check the app's clock, or scan the code again.")
    qr = segno.make(pending.config_url, error="m")
    context = {
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
    request.session[ENROLLED] = False
    messages.success(request, "Authenticator off: signing in asks for your password only.")
    return redirect("staff:two-factor")


def _base32(key: bytes) -> str:
    text = base64.b32encode(key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))
