"""What the portal's pages show and what their forms do (the engine's rules
are tested in tests/exporter; here, that the pages use them and say so)."""

import pytest
from django.urls import reverse

from exporter import fulfillment, library
from exporter.models import Album, CopyStatus, DiscCopy, Subscription
from exporter.planning import plan_next_disc
from tests.factories import add_file
from tests.portal.conftest import ship_copy

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def flash(client, response) -> str:
    return client.get(response["Location"]).content.decode()


# --- library -----------------------------------------------------------------------


def test_albums_nest_and_filter_the_library(signed_in, alice, world):
    parent = world["album"]
    signed_in.post(reverse("create_album"), {"name": "Beach days", "parent": str(parent.public_id)})
    child = Album.objects.get(name="Beach days")
    assert child.parent == parent
    add_file(alice, "sea.jpg", albums=[child])
    page = signed_in.get(reverse("library") + f"?album={child.public_id}").content.decode()
    assert "sea.jpg" in page and "beach.jpg" not in page
    assert signed_in.post(reverse("create_album"), {"name": "bad\x07name"}).status_code == 302
    assert not Album.objects.filter(name__startswith="bad").exists()


def test_an_album_nested_deeper_than_the_restore_tool_reads_is_refused_and_said(signed_in, alice):
    from exporter.disc_tools.restore import MAX_ALBUM_DEPTH

    deepest = library.ensure_album_path(alice, [f"level {n}" for n in range(MAX_ALBUM_DEPTH)])
    response = signed_in.post(reverse("create_album"), {"name": "one more", "parent": str(deepest.public_id)})
    assert response.status_code == 302
    assert f"nested at most {MAX_ALBUM_DEPTH} deep" in flash(signed_in, response)
    assert not Album.objects.filter(name="one more").exists()


def test_an_item_moves_between_albums_and_is_edited(signed_in, alice, world):
    item = world["item"]
    other = library.ensure_album_path(alice, ["Family"])
    signed_in.post(reverse("move_item", args=[item.public_id]), {"albums": [str(other.public_id)]})
    assert list(item.albums.all()) == [other]
    signed_in.post(reverse("edit_item", args=[item.public_id]), {"title": "At the beach", "caption": "Windy"})
    item.refresh_from_db()
    assert (item.title, item.caption) == ("At the beach", "Windy")
    assert item.changes.filter(kind__in=["moved", "edited"]).count() == 2
    page = signed_in.get(reverse("item", args=[item.public_id])).content.decode()
    assert "At the beach" in page and "Waiting for a disc" in page
    # An album that is not one of Alice's is not a choice.
    response = signed_in.post(reverse("move_item", args=[item.public_id]), {"albums": ["not-a-uuid"]})
    assert "Choose albums from the list." in flash(signed_in, response)
    assert list(item.albums.all()) == [other]


def test_each_item_says_which_disc_holds_it(signed_in, alice):
    item = add_file(alice, "beach.jpg")
    disc = plan_next_disc(alice, allow_partial=True)
    add_file(alice, "later.jpg")
    page = signed_in.get(reverse("library")).content.decode()
    assert f"On disc {disc.number}" in page
    assert page.count("Waiting for a disc") == 1
    item_page = signed_in.get(reverse("item", args=[item.public_id])).content.decode()
    assert reverse("disc", args=[disc.public_id]) in item_page


# --- next disc --------------------------------------------------------------------------


def test_ship_now_from_the_page_and_its_refusal(signed_in, alice, world):
    response = signed_in.post(reverse("ship_now"))
    assert "shortly" in flash(signed_in, response)
    response = signed_in.post(reverse("ship_now"))
    assert "You have already asked" in flash(signed_in, response)
    page = signed_in.get(reverse("next_disc")).content.decode()
    assert "Requested" in page and "Very soon" in page


# --- disc history and replacements ----------------------------------------------------------


def test_the_disc_list_shows_tracking(signed_in, world):
    page = signed_in.get(reverse("discs")).content.decode()
    assert "On its way" in page
    assert "https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB" in page


def test_a_replacement_within_the_limit_and_then_the_limit(signed_in, alice, sam, world, settings):
    settings.DISCSUB_REPLACEMENTS_PER_PERIOD = 1
    disc, copy = world["disc"], world["copy"]
    url = reverse("report_problem", args=[disc.public_id, copy.public_id])
    response = signed_in.post(url, {"problem": "lost", "note": "Never came"})
    assert "A new copy of disc 1 is queued" in flash(signed_in, response)
    page = signed_in.get(reverse("disc", args=[disc.public_id])).content.decode()
    assert "You reported it lost" in page and "A replacement copy was queued" in page
    # The replacement ships and is damaged too: the limit is reached.
    replacement = DiscCopy.objects.get(replaces=copy)
    fulfillment.claim_copies([replacement.pk], sam)
    fulfillment.mark_burned(replacement.pk, sam, drive="d", media_batch="b")
    fulfillment.record_read_back(
        replacement.pk, sam, drive="d", media_batch="b", method="sha256", value=disc.image_sha256
    )
    fulfillment.mark_labelled(replacement.pk, sam)
    fulfillment.ship([replacement.pk], sam, carrier="royal-mail", tracking_number="AB000000001GB")
    response = signed_in.post(
        reverse("report_problem", args=[disc.public_id, replacement.public_id]), {"problem": "damaged"}
    )
    assert "You have had 1 replacements in the last 90 days" in flash(signed_in, response)
    assert DiscCopy.objects.filter(disc=disc).count() == 2


def test_a_copy_not_yet_shipped_cannot_be_reported(signed_in, alice, world):
    from tests.factories import verified_disc

    disc = verified_disc(alice)
    queued = disc.copies.get()
    response = signed_in.post(reverse("report_problem", args=[disc.public_id, queued.public_id]), {"problem": "lost"})
    assert f"Disc {disc.number} cannot be reported now: it is to burn." in flash(signed_in, response)
    assert DiscCopy.objects.get(pk=queued.pk).status == CopyStatus.QUEUED


def test_another_subscribers_copy_under_my_disc_is_404(signed_in, bob, sam, world):
    from tests.factories import verified_disc

    bobs_copy = ship_copy(verified_disc(bob), sam)
    url = reverse("report_problem", args=[world["disc"].public_id, bobs_copy.public_id])
    assert signed_in.post(url, {"problem": "lost"}).status_code == 404
    assert DiscCopy.objects.get(pk=bobs_copy.pk).status == CopyStatus.SHIPPED


# --- settings -----------------------------------------------------------------------------


def test_a_bad_address_shows_each_problem_next_to_its_field(signed_in, alice):
    response = signed_in.post(
        reverse("change_address"), {"name": "", "line1": "1 Road", "city": "Leeds", "postal_code": "x", "country": "GB"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter your full name." in page and "That is not a postal code in United Kingdom." in page
    assert Subscription.objects.get(user=alice).address_line1 == "12 Quay Street"


def test_cancel_needs_the_confirmation_box(signed_in, alice):
    response = signed_in.post(reverse("cancel"))
    assert "Tick the box" in flash(signed_in, response)
    assert Subscription.objects.get(user=alice).status == "active"
    signed_in.post(reverse("cancel"), {"confirm": "yes"})
    page = signed_in.get(reverse("settings")).content.decode()
    assert "Subscription cancelled" in page and "One final disc" in page


def test_pause_and_resume_explain_themselves(signed_in, alice):
    assert "we make no new discs" in signed_in.get(reverse("settings")).content.decode()
    signed_in.post(reverse("pause"))
    page = signed_in.get(reverse("settings")).content.decode()
    assert "Resume my subscription" in page
    assert "Not while your subscription is paused" in signed_in.get(reverse("next_disc")).content.decode()


def test_email_preferences_and_plan(signed_in, alice):
    signed_in.post(reverse("change_emails"), {"on_delivered": "on"})
    signed_in.post(reverse("change_plan"), {"medium": "bd", "cadence": "quarterly"})
    sub = Subscription.objects.get(user=alice)
    assert (sub.email_on_shipped, sub.email_on_delivered, sub.medium, sub.cadence) == (False, True, "bd", "quarterly")
    assert signed_in.post(reverse("change_plan"), {"medium": "floppy", "cadence": "weekly"}).status_code == 400


@pytest.mark.parametrize("wanted", [True, False])
def test_the_shipped_email_follows_the_preference_set_here(
    signed_in, alice, sam, wanted, django_capture_on_commit_callbacks, mailoutbox
):
    from tests.factories import verified_disc

    signed_in.post(reverse("change_emails"), {"on_shipped": "on"} if wanted else {})
    with django_capture_on_commit_callbacks(execute=True):
        ship_copy(verified_disc(alice), sam, tracking="AB987654321GB")
    shipped = [m for m in mailoutbox if "AB987654321GB" in m.body]
    assert len(shipped) == (1 if wanted else 0)


def test_a_returned_disc_asks_for_the_address_and_is_sent_again_once_it_is_fixed(signed_in, alice, sam, world):
    disc, copy = world["disc"], world["copy"]
    fulfillment.mark_returned(copy.pk, sam)
    page = signed_in.get(reverse("disc", args=[disc.public_id])).content.decode()
    assert "This disc came back to us" in page and "Returned: check your address" in page
    signed_in.post(
        reverse("change_address"),
        {"name": "Alice Archer", "line1": "7 Harbourside", "city": "Leeds", "postal_code": "LS1 4AP", "country": "GB"},
    )
    fulfillment.ship([copy.pk], sam, carrier="royal-mail", tracking_number="AB000000002GB")
    page = signed_in.get(reverse("disc", args=[disc.public_id])).content.decode()
    assert "This disc came back to us" not in page and "Shipped again to your corrected address" in page
