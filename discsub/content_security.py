"""A Content-Security-Policy on every response.

Only this site's own resources load; a script or a ``<style>`` element runs
only with the nonce the page was rendered with (``request.csp_nonce``), so
markup that reaches a page some other way (an escaping mistake) cannot run
script, post forms elsewhere or frame the site.  Style *attributes* stay
allowed (``style-src-attr``): the templates use them for layout, and they
cannot run script.  ``data:`` images are the favicon's.

A dozen lines of middleware rather than django-csp: the policy is fixed and
needs only a nonce per request."""

from __future__ import annotations

import secrets

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"


def policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "style-src-attr 'unsafe-inline'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class ContentSecurityPolicy:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.csp_nonce = secrets.token_urlsafe(18)
        response = self.get_response(request)
        response.setdefault(HEADER, policy(request.csp_nonce))
        return response
