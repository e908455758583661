"""Every page carries a strict Content-Security-Policy, and the pages still
work under it: every script and style element carries the page's nonce, no
page has an inline event handler, and in a real browser (Debian's chromium)
the library upload and the staff queue run with no CSP violation."""

import re

import pytest
from django.conf import settings
from django.test import Client

from discsub.content_security import HEADER
from tests.browser import SHOTS, chromium_browser, wait_until
from tests.factories import add_file, jpeg_bytes, new_copy

NONCE = re.compile(r"script-src 'self' 'nonce-([\w-]+)'")


def portal_and_staff_urls(alice, sam) -> list[tuple[Client, str]]:
    item = add_file(alice, "beach.jpg", jpeg_bytes())
    labelled = new_copy(alice, sam, "labelled")
    subscriber, staff, anonymous = Client(), Client(), Client()
    subscriber.force_login(alice)
    staff.force_login(sam)
    pages = [(anonymous, url) for url in ["/login/", "/account/reset/", "/no-such-page/"]]
    pages += [
        (subscriber, url)
        for url in ["/library/", f"/library/items/{item.public_id}/", "/next/", "/discs/", "/settings/"]
    ]
    pages += [
        (staff, url)
        for url in ["/staff/", "/staff/dashboard/", "/staff/two-factor/", f"/staff/print/?copies={labelled.pk}"]
    ]
    return pages


@pytest.mark.django_db
def test_every_page_has_a_strict_policy_and_only_nonced_scripts_and_styles(alice, sam):
    for client, url in portal_and_staff_urls(alice, sam):
        response = client.get(url, REMOTE_ADDR="203.0.113.9")
        assert response.status_code in (200, 404), url
        policy = response[HEADER]
        assert "default-src 'self'" in policy and "object-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "unsafe-inline" not in policy.replace("style-src-attr 'unsafe-inline'", ""), url
        nonce = NONCE.search(policy).group(1)
        page = response.content.decode()
        for tag in re.findall(r"<(?:script|style)\b[^>]*>", page):
            # Inline code needs the nonce; a script file comes from this site.
            assert f'nonce="{nonce}"' in tag or re.match(r'<script src="/static/', tag), (url, tag)
        assert not re.search(r"<[^>]+\son[a-z]+\s*=", page), url  # no onclick=, onsubmit=…
        assert "javascript:" not in page, url
    # A fresh nonce for every response.
    assert NONCE.search(Client().get("/login/")[HEADER]).group(1) != nonce


@pytest.mark.django_db(transaction=True)
def test_the_upload_and_the_staff_queue_work_in_a_browser_with_no_violation(live_server, alice, sam, tmp_path):
    photo = tmp_path / "Harbour.jpg"
    photo.write_bytes(jpeg_bytes(320, 240, (200, 90, 40)))
    for _ in range(2):
        new_copy(alice, sam, "queued")
    staff = Client()
    staff.force_login(sam)
    staff_cookie = {"name": settings.SESSION_COOKIE_NAME, "value": staff.cookies[settings.SESSION_COOKIE_NAME].value}
    SHOTS.mkdir(parents=True, exist_ok=True)
    url = live_server.url
    violations: list[str] = []

    def watch(page):
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        page.add_init_script(
            "document.addEventListener('securitypolicyviolation',"
            " e => console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
        )
        return page

    with chromium_browser() as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = watch(context.new_page())
        page.goto(f"{url}/login/?next=/library/")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("alice-password-1")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/library/")
        # The upload script (nonced) sends the file and reloads the page.
        page.locator("#files").set_input_files([str(photo)])
        page.wait_for_selector(".items .tile", timeout=20_000)
        wait_until(page, "[...document.querySelectorAll('.items img')].every(i => i.naturalWidth > 0)")
        page.screenshot(path=str(SHOTS / "csp-library-upload.png"), full_page=True)
        # The selection bar's script (page-actions.js): select all, the count, one POST.
        page.get_by_label("Select all on this page").check()
        assert page.locator("[data-selected-count]").inner_text() == "1 selected"
        page.get_by_role("button", name="Move to trash", exact=True).click()
        page.get_by_role("button", name="Undo").click()
        assert "is back in your library" in page.locator("main > .messages").inner_text()
        context.close()

        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{**staff_cookie, "url": url}])
        page = watch(context.new_page())
        page.goto(f"{url}/staff/")
        boxes = page.locator("input[name=copies]")
        assert boxes.count() == 2
        page.locator("[data-select-all]").check()  # the queue's nonced script ticks every row
        assert all(boxes.nth(n).is_checked() for n in range(boxes.count()))
        page.screenshot(path=str(SHOTS / "csp-staff-queue.png"), full_page=True)
        page.goto(f"{url}/staff/two-factor/")  # the password again, then the QR code: inline SVG
        page.get_by_label("Your password").fill("sam-password-1")
        page.get_by_role("button", name="Continue").click()
        assert page.locator(".qr svg").bounding_box()["width"] > 100
        page.screenshot(path=str(SHOTS / "csp-staff-two-factor.png"), full_page=True)
        page.goto(f"{url}/staff/dashboard/")
        page.screenshot(path=str(SHOTS / "csp-staff-dashboard.png"), full_page=True)
        # Styled by its nonced <style>: the staff mark is white on dark, not the default black.
        assert page.locator(".staff-mark").evaluate("e => getComputedStyle(e).color") == "rgb(255, 255, 255)"
        context.close()
    assert violations == []
