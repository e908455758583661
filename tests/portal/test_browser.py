"""A subscriber's whole round in a real browser (Playwright + Debian's
chromium): sign in, upload photos (file picker and drag-and-drop) and see
them wait, ask for the disc now,
find the built disc, browse its manifest, download its image and check its
sha256, change the address, report the disc damaged.  Every page is
photographed at desktop and phone widths into /tmp/discsub-shots/."""

import base64
import hashlib
import os

import pytest
from django.db import connections

from exporter import jobs
from exporter.models import CopyStatus, Disc, DiscCopy, Subscription
from tests.browser import SHOTS, chromium_browser, shoot, wait_until
from tests.factories import jpeg_bytes
from tests.portal.conftest import ship_copy
from tests.tools import require_tool

os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

pytestmark = pytest.mark.django_db(transaction=True)


def flash(page) -> str:
    return page.locator("main > .messages").inner_text()


def test_a_subscriber_from_upload_to_replacement(live_server, alice, sam, tmp_path):
    require_tool("implantisomd5", "isomd5sum")
    require_tool("par2")
    SHOTS.mkdir(parents=True, exist_ok=True)
    photos = []
    for n, color in enumerate([(210, 90, 40), (40, 120, 200), (60, 170, 90)], start=1):
        path = tmp_path / f"Harbour walk {n}.jpg"
        path.write_bytes(jpeg_bytes(640, 480, color, exif_date=f"2026:10:0{n} 09:30:00"))
        photos.append(path)
    url = live_server.url

    with chromium_browser() as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page = context.new_page()

        # Sign in through the form.
        page.goto(f"{url}/library/")
        assert "/login/" in page.url
        shoot(page, "01-sign-in")
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password").fill("alice-password-1")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/library/")
        shoot(page, "02-library-empty")

        # Several files at once; each gets a progress bar, then the page shows them waiting.
        page.locator("#files").set_input_files([str(p) for p in photos])
        page.wait_for_selector(".items .tile >> nth=2", timeout=20_000)
        assert page.locator(".tile .badge", has_text="Waiting for a disc").count() == 3
        assert "Harbour walk 2.jpg" in page.content()
        shoot(page, "03-library-waiting")

        # Drag and drop: text dressed as a photo is refused in the list, with the reason...
        drop = """([name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const files = new DataTransfer();
            files.items.add(new File([bytes], name, {type: "image/jpeg"}));
            document.getElementById("drop").dispatchEvent(new DragEvent("drop", {dataTransfer: files, bubbles: true}));
        }"""
        page.evaluate(drop, ["notes.jpg", base64.b64encode(b"just some notes").decode()])
        refused = page.locator(".queue li.fail")
        refused.wait_for()
        assert "“notes.jpg” is not a photo or video we recognise" in refused.inner_text()
        shoot(page, "03b-upload-refused")
        # ... and a real one is added.
        page.evaluate(drop, ["Harbour walk 4.jpg", base64.b64encode(jpeg_bytes(640, 480, (120, 60, 160))).decode()])
        page.wait_for_selector(".items .tile >> nth=3", timeout=20_000)
        assert page.locator(".tile .badge", has_text="Waiting for a disc").count() == 4
        # An album, and a photo moved into it from its own page.
        page.get_by_text("New album").click()
        page.get_by_label("Album name").fill("Harbour walks")
        page.get_by_role("button", name="Create album").click()
        assert "Album “Harbour walks” is ready." in flash(page)
        shoot(page, "03c-album-empty")
        page.get_by_role("link", name="All photos and videos").click()
        page.get_by_role("link", name="Harbour walk 1.jpg").click()
        page.get_by_label("Harbour walks").check()
        page.get_by_role("button", name="Save albums").click()
        assert "Albums saved." in flash(page)
        shoot(page, "04-item")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Library").click()
        page.get_by_role("link", name="Harbour walks").click()
        assert page.locator(".items .tile").count() == 1

        # The next disc, and "ship what I have now".
        page.get_by_role("link", name="Next disc", exact=True).click()
        assert page.locator(".facts dd").first.inner_text() == "4"
        shoot(page, "05-next-disc")
        page.get_by_role("button", name="Ship what I have now").click()
        assert "shortly" in flash(page)
        assert Subscription.objects.get(user=alice).ship_now_requested_at is not None
        shoot(page, "06-next-disc-requested")

        # What the scheduler does on its next pass.
        jobs.plan_discs_for(alice.pk, allow_partial=True)
        built = jobs.build_due(user_id=alice.pk)
        assert [d.status for d in built] == ["verified"]
        disc = Disc.objects.get(owner=alice)

        page.get_by_role("link", name="Discs", exact=True).click()
        assert page.get_by_role("link", name="Disc 1", exact=True).is_visible()
        assert "Being burned" in page.content()
        shoot(page, "07-discs")
        page.get_by_role("link", name="Disc 1", exact=True).click()
        page.wait_for_selector(".steps")
        assert page.locator(".steps li.done").count() == 3  # planned, image made, image checked
        shoot(page, "08-disc-built")

        # The manifest, with a thumbnail of each photo.
        page.get_by_role("link", name="Browse contents").click()
        page.wait_for_selector(".files li >> nth=3")
        assert page.locator(".files img").count() == 4
        wait_until(page, "[...document.querySelectorAll('.files img')].every(i => i.naturalWidth > 0)")
        assert "Harbour walk 3.jpg" in page.content()
        shoot(page, "09-manifest")

        # The image itself, checked against the recorded sha256.
        page.get_by_role("link", name="Disc 1", exact=True).click()
        with page.expect_download() as info:
            page.get_by_role("link", name="Download image").click()
        saved = tmp_path / "disc.iso"
        info.value.save_as(saved)
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == disc.image_sha256
        with page.expect_download() as info:
            page.get_by_role("link", name="manifest.json").click()
        info.value.save_as(tmp_path / "manifest.json")
        assert b'"discsub-manifest"' in (tmp_path / "manifest.json").read_bytes()

        # A new address: a wrong postal code is refused with the reason, then a right one saved.
        page.get_by_role("link", name="Settings", exact=True).click()
        page.get_by_label("Address line 1").fill("7 Harbourside")
        page.get_by_label("Town or city").fill("Leeds")
        page.get_by_label("Postal code").fill("not a code")
        page.get_by_label("Country").select_option("GB")
        page.get_by_role("button", name="Save address").click()
        assert "That is not a postal code in United Kingdom." in page.content()
        shoot(page, "10-settings-address-error")
        page.get_by_label("Postal code").fill("ls1 4ap")
        page.get_by_role("button", name="Save address").click()
        assert "Address saved" in flash(page)
        subscription = Subscription.objects.get(user=alice)
        assert (subscription.address_line1, subscription.address_postal_code) == ("7 Harbourside", "LS1 4AP")
        shoot(page, "11-settings")

        # The disc arrives broken: the subscriber asks for another.
        ship_copy(disc, sam)
        page.goto(f"{url}/discs/{disc.public_id}/")
        assert "AB123456789GB" in page.content()
        shoot(page, "12-disc-shipped")
        page.get_by_label("It arrived damaged").check()
        page.get_by_label("Anything we should know? (optional)").fill("Cracked across the middle.")
        page.get_by_role("button", name="Send me a new copy").click()
        assert "A new copy of disc 1 is queued" in flash(page)
        story = page.locator(".story").inner_text()
        assert "You reported it damaged" in story
        assert "A replacement copy was queued for burning" in story
        shoot(page, "13-disc-replacement")

        page.goto(f"{url}/account/password/")
        shoot(page, "14-password-change")
        context.close()

        # Signed out: the password reset pages.
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{url}/account/reset/")
        shoot(page, "15-password-reset")
        context.close()
        # Queries made while Playwright's loop runs use a connection of their
        # own (Django's per-context connections); close it, or PostgreSQL
        # cannot drop the test database at the end of the run.
        connections.close_all()

    assert sorted(DiscCopy.objects.filter(disc=disc).values_list("status", flat=True)) == [
        CopyStatus.DAMAGED,
        CopyStatus.QUEUED,
    ]
