"""Debian's chromium driven by Playwright: the one way tests open a browser."""

import contextlib
import os
from pathlib import Path

import pytest

from tests.tools import require_tool

# Screenshots land here for people to look at.
SHOTS = Path("/tmp/discsub-shots")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


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
