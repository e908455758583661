"""The demo that `make run` loads, clicked through in a real browser as each
of its users: every link on every page they can reach answers without a
4xx or 5xx, downloads included."""

import os
from urllib.parse import urldefrag, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from exporter import tasks
from exporter.management.commands._demo_queue import PEOPLE
from exporter.management.commands.load_demo import DEMO_USER, STAFF_USER
from exporter.models import Disc
from tests.browser import chromium_browser, session_cookie
from tests.tools import require_tool

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Links that act rather than show (signing out is a form, but be safe).
NOT_FOLLOWED = ("/logout/",)
MAX_PAGES = 400  # per user: far above what the demo has; a runaway crawl fails instead of hanging


def crawl(context, base: str) -> dict[str, int]:
    """Every same-site URL reachable by links from the site's root -> its HTTP status."""
    page = context.new_page()
    seen: dict[str, int] = {}
    todo = [base + "/"]
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        assert len(seen) < MAX_PAGES, f"more than {MAX_PAGES} pages: {sorted(seen)[-5:]}"
        answer = context.request.get(url, max_redirects=5)
        seen[url] = answer.status
        if answer.status >= 400 or "text/html" not in answer.headers.get("content-type", ""):
            continue
        page.goto(url)
        for href in page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
            link = urldefrag(href).url
            parts = urlsplit(link)
            if link.startswith(base) and parts.path not in NOT_FOLLOWED and link not in seen:
                todo.append(link)
    page.close()
    return seen


def test_every_link_of_the_demo_answers_for_every_demo_user(live_server):
    require_tool("implantisomd5", "isomd5sum")
    call_command("load_demo", photos=6, videos=1, stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
    User = get_user_model()
    demo = User.objects.get(username=DEMO_USER)
    assert tasks.plan_and_build(demo.pk, True) >= 1  # what the worker does after the first start
    users = [demo, User.objects.get(username=STAFF_USER), *User.objects.filter(username__in=[p[0] for p in PEOPLE])]
    cookies = {user.username: session_cookie(user, live_server) for user in users}
    discs = {user.username: Disc.objects.filter(owner=user).count() for user in users}

    found = {}
    with chromium_browser() as chromium:
        for username, cookie in cookies.items():
            context = chromium.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([cookie])
            found[username] = crawl(context, live_server.url)
            context.close()

    for username, statuses in found.items():
        broken = {url: status for url, status in statuses.items() if status >= 400}
        assert not broken, (username, broken)
        # The crawl reached what each user has: their discs (and for staff, the queue and the dashboard).
        paths = {urlsplit(url).path for url in statuses}
        if username == STAFF_USER:
            assert {"/staff/", "/staff/dashboard/"} <= paths
            assert sum(p.startswith("/staff/discs/") and p.endswith("/image/") for p in paths) >= 10
        else:
            assert sum(p.startswith("/discs/") and p.endswith("/manifest/") for p in paths) == discs[username]
            assert "/library/" in paths
