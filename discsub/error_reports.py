"""What an error shows, and to whom.

``make run`` keeps Django's debug pages (DEBUG is on outside production), but
only for a client on this machine (127.0.0.1, ::1): anyone else gets the same
plain 400, 404 or 500 page as in production.  Every error report, the debug
page and the email to ADMINS alike, is cleansed first: connection URLs lose
their password, secret values (SECRET_KEY, AWS keys, passwords) are starred
wherever they appear, cookies (the Cookie header too: the session and CSRF
tokens) are starred, and the process environment that a WSGI server copies
into ``request.META`` is left out.

Wired in by ``DEFAULT_EXCEPTION_REPORTER``, ``DEFAULT_EXCEPTION_REPORTER_FILTER``
and :class:`DebugOnlyForLoopback` (first in ``MIDDLEWARE``)."""

from __future__ import annotations

import ipaddress
import os
import re

from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import get_resolver, get_urlconf
from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from discsub.content_security import HEADER as CSP_HEADER
from discsub.content_security import policy

STARS = SafeExceptionReporterFilter.cleansed_substitute
# scheme://user:password@host: the password goes, the rest stays readable.
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'\"]*:)[^\s@/'\"]+@")
# Names whose values are secrets wherever they appear (settings, the environment).
_SECRET_NAME = re.compile(r"API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|CREDENTIAL|DATABASE_URL|REDIS_URL", re.I)
# Names of settings, META entries and cookies whose whole value is starred:
# Django's own pattern (which covers HTTP_COOKIE, the raw Cookie header), ours,
# and anything naming a cookie, a session or the CSRF token.
_HIDDEN_NAME = re.compile(
    rf"{SafeExceptionReporterFilter.hidden_settings.pattern}|{_SECRET_NAME.pattern}|COOKIE|SESSION|CSRF", re.I
)
# In Django's debug pages (technical_500.html, technical_404.html), not ours.
_DEBUG_PAGE_MARK = b'<meta name="robots" content="NONE,NOARCHIVE">'
# Shorter values are too likely to be ordinary words to replace everywhere.
_MIN_SECRET_LENGTH = 8


def is_loopback(request: HttpRequest) -> bool:
    """Whether the request came from this machine (the socket's own peer,
    never a header a client could set)."""
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", "").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def plain_error_response(request: HttpRequest, status: int, exception: Exception | None = None) -> HttpResponse:
    """The page production shows for ``status``: the URLconf's handler."""
    handler = get_resolver(get_urlconf()).resolve_error_handler(status)
    if status == 500:
        return handler(request)
    return handler(request, exception or Http404())


def _secret_values() -> list[str]:
    values = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    values += [getattr(settings, "EMAIL_HOST_PASSWORD", "")]
    values += [db.get("PASSWORD") or "" for db in settings.DATABASES.values()]
    values += [value for name, value in os.environ.items() if _SECRET_NAME.search(name)]
    found = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LENGTH}
    # Passwords inside connection URLs, so that one quoted alone is caught too.
    for value in list(found):
        found.update(m.group(0)[len(m.group("head")) : -1] for m in _URL_PASSWORD.finditer(value))
    # Longest first: a secret that contains another is starred whole.
    return sorted((v for v in found if len(v) >= _MIN_SECRET_LENGTH), key=len, reverse=True)


def scrub(text: str, secrets: list[str] | None = None) -> str:
    """``text`` without URL passwords or any of the known secret values."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{STARS}@", text)
    for secret in _secret_values() if secrets is None else secrets:
        if secret in text:
            text = text.replace(secret, STARS)
    return text


def _scrub_all(value, secrets: list[str]):
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, dict):
        return {k: _scrub_all(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_all(v, secrets) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub_all(v, secrets) for v in value)
    return value


class SecretsFilter(SafeExceptionReporterFilter):
    """Django's filter, on even with DEBUG (sensitive POST fields, such as the
    sign-in password, are starred on the debug page too), that also stars
    secrets inside values and leaves the environment out of META."""

    hidden_settings = _HIDDEN_NAME

    def is_active(self, request) -> bool:
        return True

    def cleanse_setting(self, key, value):
        cleansed = super().cleanse_setting(key, value)
        return scrub(cleansed) if isinstance(cleansed, str) else cleansed

    def get_post_parameters(self, request):
        # Fields named like secrets are starred even when the error came
        # before the view could mark them (a bad Host header, say).
        parameters = super().get_post_parameters(request)
        if not any(_SECRET_NAME.search(k) or k.startswith("otp") for k in parameters):
            return parameters
        parameters = parameters.copy()
        for key in parameters:
            if _SECRET_NAME.search(key) or key.startswith("otp"):
                parameters[key] = self.cleansed_substitute
        return parameters

    def get_safe_request_meta(self, request):
        if not hasattr(request, "META"):
            return {}
        environment = os.environ
        return {
            k: self.cleanse_setting(k, v)
            for k, v in request.META.items()
            # A WSGI server (runserver, wsgiref) copies the whole environment
            # into every request's META: none of it is the request's.
            if not (k in environment and environment[k] == v and not k.startswith("HTTP_"))
        }


class LocalDebugReporter(ExceptionReporter):
    """The debug page for a client on this machine, cleansed; for any other
    client, while DEBUG is on, the plain page production would show."""

    def _remote_debug(self) -> bool:
        return bool(settings.DEBUG and self.request is not None and not is_loopback(self.request))

    def _plain(self) -> str:
        exception = self.exc_value
        if isinstance(exception, (BadRequest, SuspiciousOperation, MultiPartParserError)):
            status = 400
        elif isinstance(exception, PermissionDenied):
            status = 403
        else:
            status = 500
        return plain_error_response(self.request, status, exception).content.decode()

    def get_traceback_data(self):
        return _scrub_all(super().get_traceback_data(), _secret_values())

    def get_traceback_html(self) -> str:
        return self._plain() if self._remote_debug() else super().get_traceback_html()

    def get_traceback_text(self) -> str:
        return self._plain() if self._remote_debug() else super().get_traceback_text()


class DebugOnlyForLoopback:
    """First in MIDDLEWARE: with DEBUG on, a client not on this machine gets
    the plain 404 page, not the debug one that lists the URL patterns.  (400,
    403 and 500 debug pages are the reporter's; Django renders the debug 404
    page without it.)"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not settings.DEBUG or response.status_code < 400:
            return response
        if not is_loopback(request):
            if response.status_code == 404:
                response = plain_error_response(request, 404)
                response[CSP_HEADER] = policy(request.csp_nonce)
            return response
        if _DEBUG_PAGE_MARK in getattr(response, "content", b""):
            # Django's own debug pages style and script themselves inline.
            del response[CSP_HEADER]
        return response
