"""Debian's chromium driven by Playwright: the one way tests open a browser."""

import contextlib
import os
from pathlib import Path

import pytest

from tests.tools import require_tool

# Screenshots land here for people to look at (DISCSUB_SHOTS moves them).
SHOTS = Path(os.environ.get("DISCSUB_SHOTS", "/tmp/discsub-shots"))
WIDTHS = {"desktop": 1280, "phone": 390}
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def session_cookie(user, live_server) -> dict:
    """A cookie that signs ``user`` in to the live server (no password needed)."""
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return {
        "name": settings.SESSION_COOKIE_NAME,
        "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "url": live_server.url,
    }


@contextlib.contextmanager
def chromium_browser():
    """Playwright's event loop runs in this thread while the browser is open,
    so do the database work before opening it, or set
    DJANGO_ALLOW_ASYNC_UNSAFE (Django refuses database calls from a thread
    with a running loop)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else require_tool("chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shoot(page, name: str) -> None:
    """Photograph the whole page at desktop and phone widths."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"portal-{name}-{label}.png"), full_page=True)
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


def wait_until(page, expression: str, timeout: float = 20.0) -> None:
    """Poll ``expression`` in the page until it is true.  Playwright's own
    wait_for_function polls through eval() inside the page, which the site's
    Content-Security-Policy forbids; page.evaluate is not subject to it."""
    import time

    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout
    while True:
        try:
            if page.evaluate(expression):
                return
        except Error:  # a navigation under way replaced the page
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        page.wait_for_timeout(50)
