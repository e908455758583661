"""A browser that signed in as someone before: a "known device" for them.

A successful sign-in (after the code, for staff with an authenticator)
leaves a signed cookie naming a random device id and the username.  The
next sign-in of that username from that browser is limited per device, not
per client address: someone sharing the address (the same NAT, the same
IPv6 /64) who hammers the sign-in, for other usernames or for this one,
fills the address's limits but not this device's, so the right password
from a browser the member used before still gets checked.  A stolen cookie
only gives its thief this device's own limit (5 failures, then one try per
``DISCSUB_LOGIN_DELAY_SECONDS``), and only for the username it names."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse

# "token" in the name: error reports star its value (discsub.error_reports).
COOKIE = "discsub_device_token"
SALT = "discsub.known-device"
MAX_AGE = 180 * 24 * 3600


def _tag(username: str) -> str:
    return hashlib.sha256(username.encode()).hexdigest()[:20]


def _read(request: HttpRequest) -> tuple[str, str] | None:
    value = request.get_signed_cookie(COOKIE, default=None, salt=SALT, max_age=MAX_AGE)
    if not value or value.count(":") != 1:
        return None
    device, tag = value.split(":")
    return device, tag


def device_for(request: HttpRequest, username: str) -> str | None:
    """This browser's device id if it signed in as ``username`` (normalised) before."""
    found = _read(request)
    if found is None or not secrets.compare_digest(found[1], _tag(username)):
        return None
    return found[0]


def remember(request: HttpRequest, response: HttpResponse, username: str) -> None:
    """After a successful sign-in as ``username`` (normalised)."""
    device = device_for(request, username) or secrets.token_hex(16)
    response.set_signed_cookie(
        COOKIE,
        f"{device}:{_tag(username)}",
        salt=SALT,
        max_age=MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
