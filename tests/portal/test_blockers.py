"""What stops a subscriber's discs is shown where they look: a banner on every
portal page, a line on the next-disc page and on the disc page."""

import os

import pytest
from django.urls import reverse

from exporter import subscriptions
from exporter.models import ItemIssue, Subscription
from tests.browser import SHOTS, chromium_browser, session_cookie
from tests.factories import add_file, verified_disc

pytestmark = pytest.mark.django_db

PAGES = ["library", "next_disc", "discs", "settings"]


def no_address(user):
    Subscription.objects.filter(user=user).update(address_name="", address_line1="", address_city="")


def test_a_missing_address_shows_on_every_page_until_it_is_saved(client, alice):
    no_address(alice)
    disc = verified_disc(alice)
    client.force_login(alice)
    for name in PAGES:
        page = client.get(reverse(name)).content.decode()
        assert 'data-blocker="no_address"' in page, name
        assert "We need your mailing address before we can send your discs." in page
        assert f'href="{reverse("settings")}#address-h"' in page
    disc_page = client.get(reverse("disc", args=[disc.public_id])).content.decode()
    assert "This disc waits for your mailing address" in disc_page
    next_page = client.get(reverse("next_disc")).content.decode()
    assert "Waiting on you" in next_page and "made and kept safe" in next_page
    fields = {"name": "Alice Archer", "line1": "12 Quay Street", "city": "Bristol", "postal_code": "BS1 4DJ"}
    response = client.post(reverse("change_address"), {**fields, "country": "GB"})
    assert response.status_code == 302
    for name in PAGES:
        assert "data-blocker" not in client.get(reverse(name)).content.decode(), name
    assert "waits for your mailing address" not in client.get(reverse("disc", args=[disc.public_id])).content.decode()


def test_held_back_items_are_listed_on_the_next_disc_page(client, alice):
    item = add_file(alice, "Harbour at dusk.jpg")
    ItemIssue.objects.create(item=item, kind=ItemIssue.Kind.MISSING_OBJECT, message="no such key")
    client.force_login(alice)
    page = client.get(reverse("next_disc")).content.decode()
    assert "1 item is held back from your discs." in page
    assert f'<a href="{reverse("item", args=[item.public_id])}">Harbour at dusk.jpg</a>' in page
    assert "no such key" not in page  # the technical detail stays with staff


def test_nothing_is_shown_when_nothing_waits_on_the_subscriber(client, alice):
    verified_disc(alice)
    client.force_login(alice)
    for name in PAGES:
        page = client.get(reverse(name)).content.decode()
        assert "data-blocker" not in page and "Waiting on you" not in page, name


@pytest.mark.django_db(transaction=True)
def test_the_banner_in_a_browser_at_phone_and_desktop_widths(live_server, alice):
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    no_address(alice)
    verified_disc(alice)
    subscriptions.pause(alice.subscription, alice)
    item = add_file(alice, "IMG_0042.JPG")
    ItemIssue.objects.create(item=item, kind=ItemIssue.Kind.CHECKSUM_MISMATCH, message="sha256 differs")
    cookie = session_cookie(alice, live_server)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with chromium_browser() as chromium:
        for width in (390, 1280):
            context = chromium.new_context(viewport={"width": width, "height": 900})
            context.add_cookies([cookie])
            page = context.new_page()
            for name in ("library", "next_disc"):
                page.goto(live_server.url + reverse(name))
                banner = page.locator("ul.blockers li")
                assert banner.count() == 3
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.screenshot(path=str(SHOTS / f"portal-blockers-{name}-{width}.png"), full_page=True)
            # The button takes the subscriber to the form that fixes it.
            page.get_by_role("link", name="Add my address").first.click()
            page.wait_for_url("**/settings/#address-h")
            assert page.locator("#address-h").is_visible()
            context.close()
