"""The trash, its Undo and the library's selection in a real browser
(Playwright + Debian's chromium), by mouse and by keyboard, at desktop and
phone widths; screenshots in /tmp/discsub-shots/portal-trash-*.png (or
DISCSUB_SHOTS)."""

import datetime as dt
import os

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

from exporter import library, thumbnails
from exporter.models import MediaItem
from exporter.planning import plan_next_disc
from tests.browser import chromium_browser, shoot
from tests.factories import add_file, jpeg_bytes

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.django_db(transaction=True)

COLOURS = [(210, 90, 40), (40, 120, 200), (60, 170, 90), (200, 170, 40), (120, 60, 160), (30, 150, 150)]


def statuses(alice) -> dict[str, str]:
    return dict(MediaItem.objects.filter(owner=alice).values_list("original_name", "status"))


def fits(page, width: int) -> bool:
    """Nothing on the page is wider than the window."""
    page.set_viewport_size({"width": width, "height": 900})
    wide = page.evaluate("document.documentElement.scrollWidth")
    page.set_viewport_size({"width": 1280, "height": 900})
    return wide <= width


@pytest.fixture
def browser_page(live_server, alice):
    client = Client()
    client.force_login(alice)
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value}
    with chromium_browser() as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([{**cookie, "url": live_server.url}])
        yield context.new_page()
        context.close()
        connections.close_all()  # the connection Playwright's thread used (see test_browser.py)


def test_trash_undo_and_the_selection_bar(browser_page, live_server, alice):
    page, url = browser_page, live_server.url
    trips = library.ensure_album_path(alice, ["Trips"])
    names = ["Harbour.jpg", "Lighthouse.jpg", "Dunes at dusk.jpg", "Market.jpg", "Pier.jpg", "Ferry.jpg"]
    for name, colour in zip(names[:2], COLOURS, strict=False):
        add_file(alice, name, jpeg_bytes(320, 240, colour))
    plan_next_disc(alice, allow_partial=True)  # the first two are on disc 1
    for name, colour in zip(names[2:], COLOURS[2:], strict=True):
        add_file(alice, name, jpeg_bytes(320, 240, colour))
    thumbnails.make_missing(thumbnails.current_versions(alice.pk))  # what a worker does

    page.goto(f"{url}/library/")
    assert page.locator(".tile").count() == 6
    shoot(page, "trash-01-library")

    # One click on a tile's trash button; the Undo is right there.
    page.get_by_role("button", name="Move “Market.jpg” to the trash").click()
    undo = page.locator(".undo")
    assert undo.inner_text().startswith("“Market.jpg” is in the trash.")
    assert statuses(alice)["Market.jpg"] == "trashed"
    assert page.locator(".tile").count() == 5
    shoot(page, "trash-02-undo")
    page.get_by_role("button", name="Undo").click()
    assert "“Market.jpg” is back in your library." in page.locator("main > .messages").inner_text()
    assert statuses(alice)["Market.jpg"] == "live"

    # By keyboard: select all on the page, then leave two out; the bar counts.
    select_all = page.get_by_label("Select all on this page")
    select_all.focus()
    page.keyboard.press("Space")
    assert page.locator("[data-selected-count]").inner_text() == "6 selected"
    for name in ("Harbour.jpg", "Lighthouse.jpg"):
        box = page.get_by_label(f"Select “{name}”")
        box.focus()
        page.keyboard.press("Space")
        assert not box.is_checked()
    assert page.locator("[data-selected-count]").inner_text() == "4 selected"
    assert not select_all.is_checked()
    shoot(page, "trash-03-selected")
    assert fits(page, 390)

    # Move the four to an album in one go.
    page.get_by_label("Album to move the selected items to").select_option(label="Trips")
    page.get_by_role("button", name="Move to album").click()
    assert "4 items are in “Trips”." in page.locator("main > .messages").inner_text()
    assert sorted(trips.items.values_list("original_name", flat=True)) == sorted(names[2:])

    # From the album, trash three: one POST, one Undo for them all.
    page.get_by_role("link", name="Trips").first.click()
    for name in ("Dunes at dusk.jpg", "Market.jpg", "Pier.jpg"):
        page.get_by_label(f"Select “{name}”").check()
    page.get_by_role("button", name="Move to trash", exact=True).click()
    assert page.locator(".undo").inner_text().startswith("3 items are in the trash.")
    assert [statuses(alice)[n] for n in names[2:]] == ["trashed", "trashed", "trashed", "live"]
    assert page.locator(".tile").count() == 1  # the album shows what is left in it

    # The trash: what will happen and when, and nothing "waiting for a disc".
    page.goto(f"{url}/library/")
    page.get_by_role("button", name="Move “Lighthouse.jpg” to the trash").click()  # on disc 1
    page.get_by_role("link", name="Trash", exact=True).click()
    trash = page.locator("main").inner_text()
    assert "The trash empties itself: 30 days after you trash an item" in trash
    assert "Waiting for a disc" not in trash
    assert sorted(page.locator(".tile .badge").all_inner_texts()) == ["Disc 1 keeps it"] + ["On no disc"] * 3
    goes = MediaItem.objects.get(owner=alice, original_name="Pier.jpg").trashed_at + dt.timedelta(days=30)
    assert page.locator(".fate").all_inner_texts() == [f"Deleted on {goes:%-d %b %Y} unless you restore it"] * 4
    shoot(page, "trash-04-trash")
    assert fits(page, 390)
    page.get_by_label("Select “Pier.jpg”").check()
    page.get_by_role("button", name="Restore", exact=True).click()
    assert "“Pier.jpg” is back in your library." in page.locator("main > .messages").inner_text()

    # Delete now (no dialog: it can be undone) goes to Recently deleted, with an Undo.
    page.on("dialog", lambda dialog: (dialog.dismiss(), pytest.fail(f"a dialog: {dialog.message}")))
    page.get_by_label("Select all on this page").check()
    page.get_by_role("button", name="Delete now").click()
    assert page.locator(".undo").inner_text().startswith("3 items are in Recently deleted. You can undo this at least")
    assert [statuses(alice)[n] for n in names[1:]] == ["deleted", "deleted", "deleted", "live", "live"]
    assert "The trash is empty." in page.locator("main").inner_text()
    shoot(page, "trash-05-deleted-undo")

    # Recently deleted: when the bytes go, what the discs say, an undo per item.
    page.get_by_role("link", name="Recently deleted", exact=True).first.click()
    recent = page.locator("main").inner_text()
    assert "Deleted items wait here 30 days and you can still undo each one." in recent
    erased = MediaItem.objects.get(owner=alice, original_name="Market.jpg").deleted_at + dt.timedelta(days=30)
    fates = page.locator(".fate").all_inner_texts()
    assert sorted(fates) == [f"Erased on or after {erased:%-d %b %Y}"] * 2 + [
        f"Erased on or after {erased:%-d %b %Y} · your next disc records the deletion"
    ]
    shoot(page, "trash-06-recently-deleted")
    assert fits(page, 390)
    page.get_by_role("button", name="Undo the delete of “Market.jpg”").click()
    assert "“Market.jpg” is back in your library." in page.locator("main > .messages").inner_text()
    assert page.locator(".tile").count() == 2
    assert statuses(alice)["Market.jpg"] == "live"

    # Settings: what is stored, in the trash, waiting to be erased.
    page.get_by_role("link", name="Settings", exact=True).click()
    storage = page.get_by_role("region", name="Storage").inner_text()
    assert "Waiting to be erased" in storage and "2 items in Recently deleted" in storage
    shoot(page, "trash-07-settings")

    # The item page: a live photo can only go to the trash, one click.
    page.goto(f"{url}/library/")
    page.get_by_role("link", name="Harbour.jpg").click()
    assert page.get_by_role("button", name="Delete now").count() == 0
    assert "Disc 1 keeps its copy whatever you do here" in page.locator("main").inner_text()
    shoot(page, "trash-08-item")
    page.get_by_role("button", name="Move to trash").click()
    assert page.locator(".undo").inner_text().startswith("“Harbour.jpg” is in the trash.")
    assert statuses(alice)["Harbour.jpg"] == "trashed"
    page.goto(f"{url}/library/?show=trash")
    page.get_by_role("link", name="Harbour.jpg").click()
    assert "then its stored bytes are erased" in page.locator("main").inner_text()
    shoot(page, "trash-09-item-in-trash")


def test_without_javascript_the_selection_trash_and_undo_still_work(live_server, alice):
    for n, colour in enumerate(COLOURS[:3]):
        add_file(alice, f"Plain {n}.jpg", jpeg_bytes(320, 240, colour))
    client = Client()
    client.force_login(alice)
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value}
    with chromium_browser() as chromium:
        context = chromium.new_context(viewport={"width": 390, "height": 900}, java_script_enabled=False)
        context.add_cookies([{**cookie, "url": live_server.url}])
        page = context.new_page()
        page.goto(f"{live_server.url}/library/")
        # Select-all needs the script, so it is not shown; each box works.
        assert not page.get_by_label("Select all on this page").is_visible()
        page.get_by_label("Select “Plain 0.jpg”").check()
        page.get_by_label("Select “Plain 2.jpg”").check()
        page.get_by_role("button", name="Move to trash", exact=True).click()
        assert page.locator(".undo").inner_text().startswith("2 items are in the trash.")
        assert sorted(s for s in statuses(alice).values()) == ["live", "trashed", "trashed"]
        shoot(page, "trash-10-no-javascript")
        page.get_by_role("button", name="Undo").click()
        assert "2 items are back in your library." in page.locator("main > .messages").inner_text()
        assert set(statuses(alice).values()) == {"live"}
        context.close()
        connections.close_all()
