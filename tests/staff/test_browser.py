"""A staff member works a batch through the queue in a real browser
(Playwright + Debian's chromium): claim, burn, read back, print labels
(screenshots and PDFs on A4 and Letter), ship with tracking, deliver; then
the subscriber's portal shows the tracking number.  Screenshots land in
/tmp/discsub-shots/ for people to look at.

The database is set up before the browser opens and checked after it closes:
a query from inside Playwright's block would open a second connection that
nobody closes."""

import re

import pytest

from exporter import fulfillment
from exporter.models import CopyStatus, DiscCopy, ItemIssue, Subscription
from tests.browser import SHOTS, chromium_browser, session_cookie, wait_until
from tests.factories import add_sized, new_copy, verified_disc

pytestmark = pytest.mark.django_db(transaction=True)

WIDTHS = {"desktop": 1280, "phone": 390}
PASS = "the result is: PASS."


def shoot(page, name: str) -> None:
    """The page at desktop and phone widths, whole length."""
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"staff-{name}-{label}.png"), full_page=True)
        # Nothing wider than the screen: tables scroll inside their cards.
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, label)
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})


def pdf_pages(data: bytes) -> list[tuple[float, float]]:
    """Width and height (points) of each page of a PDF chromium wrote."""
    assert data.startswith(b"%PDF-")
    return [(float(w), float(h)) for w, h in re.findall(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", data)]


def flash(page) -> str:
    return page.locator("main > .messages").inner_text()


def test_a_batch_from_claim_to_delivery(live_server, alice, bob, sam, django_user_model):
    # A living queue: Alice's two new discs and Bob's one wait to be burned;
    # older work sits further along so every tab has something.
    alice_discs = [verified_disc(alice), verified_disc(alice)]
    bob_disc = verified_disc(bob)
    carol = django_user_model.objects.create_user("carol", first_name="Carol", last_name="Cho")
    Subscription.objects.create(user=carol, medium="dvd")
    verified_disc(carol, medium="dvd")  # no address: an exception
    dave = django_user_model.objects.create_user("dave", first_name="Dave", last_name="Dunn")
    Subscription.objects.create(
        user=dave,
        medium="cd",
        address_name="Dave Dunn",
        address_line1="1 Mill Lane",
        address_city="York",
        address_postal_code="YO1 7HH",
        address_country="GB",
    )
    new_copy(dave, sam, CopyStatus.SHIPPED)
    new_copy(dave, sam, CopyStatus.RETURNED)
    item = add_sized(carol, 5000, "IMG_0042.JPG")
    ItemIssue.objects.create(item=item, kind=ItemIssue.Kind.CHECKSUM_MISMATCH, message="sha256 differs")
    # The staff member claims Alice's and Bob's (the oldest first), none of Dave's.
    SHOTS.mkdir(parents=True, exist_ok=True)
    sam_cookie, alice_cookie = session_cookie(sam, live_server), session_cookie(alice, live_server)

    with chromium_browser() as chromium:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        context.add_cookies([sam_cookie])
        page = context.new_page()
        page.goto(live_server.url + "/staff/")
        assert page.get_by_role("heading", name="Fulfillment queue").is_visible()
        shoot(page, "1-queue-to-burn")

        # Claim a batch of three, on Drive A.
        page.get_by_label("How many").fill("3")
        page.locator("#id_claim_drive").fill("Drive A")
        page.get_by_role("button", name="Claim a batch").click()
        assert "You claimed 3 copies" in flash(page)
        assert page.get_by_role("link", name="Download image").count() == 3
        shoot(page, "2-claimed")

        # Burned, all three, media batch B-2411.
        for box in page.locator("input[name=copies]").all():
            box.check()
        page.locator("#id_batch_drive").fill("Drive A")
        page.locator("#id_batch_media").fill("B-2411")
        page.get_by_role("button", name="Mark burned").click()
        assert "3 copies marked burned" in flash(page)

        # Read back: a sha256 for Alice's discs, checkisomd5's verdict for Bob's.
        for disc, method, value in [
            (alice_discs[0], "sha256", alice_discs[0].image_sha256),
            (alice_discs[1], "sha256", alice_discs[1].image_sha256.upper()),
            (bob_disc, "checkisomd5", f"ISO MD5SUM = {bob_disc.implanted_md5}\nThe media check is complete, {PASS}"),
        ]:
            page.goto(live_server.url + "/staff/queue/read-back/")
            if disc is alice_discs[0]:
                shoot(page, "3-to-read-back")
            name = f"Disc {disc.number} · {disc.owner.get_full_name()}"
            page.get_by_role("row").filter(has=page.get_by_role("link", name=name)).get_by_role(
                "link", name="Record read-back"
            ).click()
            page.get_by_label("sha256 of the read-back" if method == "sha256" else "checkisomd5", exact=True).check()
            page.get_by_label("Result").fill(value)
            # Prefilled with the drive and blanks it was burned with.
            assert page.locator("#id_rb_drive").input_value() == "Drive A"
            assert page.locator("#id_rb_batch").input_value() == "B-2411"
            if disc is alice_discs[0]:
                shoot(page, "4-read-back-form")
            page.get_by_role("button", name="Record read-back").click()
            assert f"Read-back OK: disc {disc.number} is ready to label" in flash(page)
        shoot(page, "5-copy-history")

        # Labels: print all three; two labels per page, then one sheet per envelope.
        page.goto(live_server.url + "/staff/queue/label/")
        for box in page.locator("input[name=copies]").all():
            box.check()
        page.get_by_role("button", name="Print labels & slips").click()
        page.wait_for_url(re.compile(r"/staff/print/"))
        wait_until(page, "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator("img[alt^='Disc label']").count() == 3
        assert page.get_by_role("heading", name="Packing slip", exact=True).count() == 2
        shoot(page, "6-print-preview")
        a4 = page.pdf(path=str(SHOTS / "staff-labels-a4.pdf"), prefer_css_page_size=True)
        page.get_by_role("link", name="Letter").click()
        page.wait_for_url(re.compile(r"paper=letter"))
        wait_until(page, "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
        letter = page.pdf(path=str(SHOTS / "staff-labels-letter.pdf"), prefer_css_page_size=True)
        page.emulate_media(media="print")
        page.screenshot(path=str(SHOTS / "staff-6-print-media-letter.png"), full_page=True)
        page.emulate_media(media="screen")
        # 2 label pages + 2 envelopes, each page the paper chosen (points: A4 595×842, Letter 612×792).
        assert [(round(w), round(h)) for w, h in pdf_pages(a4)] == [(595, 842)] * 4
        assert [(round(w), round(h)) for w, h in pdf_pages(letter)] == [(612, 792)] * 4
        page.get_by_role("button", name="Mark 3 labelled").click()
        assert "3 copies marked labelled" in flash(page)

        # Ship: a mistyped tracking number is refused and nothing moves; then the right one.
        page.goto(live_server.url + "/staff/queue/ship/")
        alice_envelope = page.get_by_role("region", name="Envelope for Alice Archer")
        assert alice_envelope.get_by_role("checkbox").count() == 2
        alice_envelope.get_by_label("Tracking number").fill("AB12345GB")
        alice_envelope.get_by_role("button", name="Mark shipped").click()
        assert "is not a Royal Mail tracking number" in flash(page)
        shoot(page, "7-to-ship-refused")
        # Nothing moved: both of Alice's discs still wait in her envelope.
        assert page.get_by_role("region", name="Envelope for Alice Archer").get_by_role("checkbox").count() == 2
        alice_envelope = page.get_by_role("region", name="Envelope for Alice Archer")
        alice_envelope.get_by_label("Tracking number").fill("ab 123 456 789 gb")
        alice_envelope.get_by_role("button", name="Mark shipped").click()
        assert "Shipped discs 1, 2 to Alice Archer with Royal Mail AB123456789GB" in flash(page)

        # Delivered.
        page.goto(live_server.url + "/staff/queue/mail/")
        shoot(page, "8-in-the-mail")
        for row in page.get_by_role("row").filter(has_text="Alice Archer").all():
            row.get_by_role("checkbox").check()
        page.get_by_role("button", name="Mark delivered").click()
        assert "2 copies marked delivered" in flash(page)

        page.goto(live_server.url + "/staff/queue/exceptions/")
        assert page.locator("td.wide").get_by_text("Subscriber has no mailing address").is_visible()
        assert page.locator("td.wide").get_by_text("Returned undeliverable: waiting for a new address").is_visible()
        shoot(page, "9-exceptions")
        page.goto(live_server.url + "/staff/dashboard/")
        assert page.get_by_role("heading", name="Operations").is_visible()
        assert page.get_by_role("img", name=re.compile("per day")).is_visible()
        shoot(page, "10-dashboard")
        context.close()

        # The subscriber sees the tracking number on the disc's page.
        context = chromium.new_context(viewport={"width": 390, "height": 844})
        context.add_cookies([alice_cookie])
        page = context.new_page()
        page.goto(f"{live_server.url}/discs/{alice_discs[0].public_id}/")
        assert "AB123456789GB" in page.content()
        page.screenshot(path=str(SHOTS / "staff-11-portal-tracking-phone.png"), full_page=True)
        context.close()

    assert fulfillment.history(alice_discs[0].copies.get()) == [
        "queued",
        "claimed",
        "burned",
        "checked",
        "labelled",
        "shipped",
        "delivered",
    ]
    assert DiscCopy.objects.get(disc=bob_disc).status == CopyStatus.LABELLED
