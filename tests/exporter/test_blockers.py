"""What stops a subscriber's discs, and that fixing it lets them go on by
themselves: no further step by the subscriber or staff."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from exporter import fulfillment, subscriptions
from exporter.blockers import blockers_for
from exporter.models import CopyStatus, ItemIssue, Subscription
from tests.factories import add_file, new_copy, verified_disc

pytestmark = pytest.mark.django_db

ADDRESS = {"name": "Alice Archer", "line1": "12 Quay Street", "city": "Bristol", "postal_code": "BS1 4DJ"}


def kinds(user) -> list[str]:
    return [b.kind for b in blockers_for(user)]


def without_address(user) -> Subscription:
    subscription = user.subscription
    Subscription.objects.filter(pk=subscription.pk).update(address_name="", address_line1="", address_city="")
    subscription.refresh_from_db()
    return subscription


def test_nothing_stops_a_subscriber_with_an_address(alice):
    verified_disc(alice)
    assert kinds(alice) == []


def test_a_staff_account_without_a_subscription_has_none(sam):
    assert blockers_for(sam) == []


def test_a_missing_address_blocks_and_saving_one_lets_the_disc_go_out(alice, sam):
    subscription = without_address(alice)
    (blocker,) = blockers_for(alice)
    assert blocker.kind == "no_address" and "first disc" in blocker.detail  # nothing made yet
    disc = verified_disc(alice)
    (blocker,) = blockers_for(alice)
    assert "made and kept safe" in blocker.detail
    # Staff cannot take it while there is nowhere to send it.
    assert fulfillment.claim_copies([disc.copies.get().pk], sam) == []
    subscriptions.update_address(subscription, alice, **ADDRESS, country="GB")
    assert kinds(alice) == []
    (claimed,) = fulfillment.claim_copies([disc.copies.get().pk], sam)
    assert claimed.status == CopyStatus.CLAIMED


def test_a_cancelled_subscription_with_nothing_to_mail_needs_no_address(alice):
    without_address(alice)
    Subscription.objects.filter(user=alice).update(status="cancelled")
    assert kinds(alice) == []


def test_a_returned_disc_waits_on_the_subscriber_until_they_save_an_address(alice, sam):
    copy = new_copy(alice, sam, CopyStatus.RETURNED)
    (blocker,) = blockers_for(alice)
    assert blocker.kind == "returned" and f"Disc {copy.disc.number} came back" in blocker.title
    subscriptions.update_address(alice.subscription, alice, **ADDRESS, line2="Flat 2", country="GB")
    assert kinds(alice) == []
    # Staff send it again: the address was fixed after it came back.
    shipment = fulfillment.ship([copy.pk], sam, carrier="royal-mail", tracking_number="RM000000001GB")
    assert shipment.copies.get().status == CopyStatus.SHIPPED


def test_a_paused_plan_and_held_back_items_are_told(alice):
    item = add_file(alice, "a.jpg")
    ItemIssue.objects.create(item=item, kind=ItemIssue.Kind.CHECKSUM_MISMATCH, message="sha256 differs")
    ItemIssue.objects.create(item=item, kind=ItemIssue.Kind.UNREADABLE, message="twice on one item")
    subscriptions.pause(alice.subscription, alice)
    found = blockers_for(alice)
    assert [b.kind for b in found] == ["paused", "held_back"]
    assert found[1].title == "1 item is held back from your discs."
    subscriptions.resume(alice.subscription, alice)
    ItemIssue.objects.update(resolved_at="2026-01-01T00:00:00Z")
    assert kinds(alice) == []


def test_three_queries_whatever_the_number_of_discs(alice, sam):
    new_copy(alice, sam, CopyStatus.RETURNED)
    with CaptureQueriesContext(connection) as few:
        blockers_for(alice)
    for target in (CopyStatus.QUEUED, CopyStatus.RETURNED, CopyStatus.LABELLED, CopyStatus.RETURNED):
        new_copy(alice, sam, target)
    with CaptureQueriesContext(connection) as many:
        assert kinds(alice) == ["returned"]
    assert len(few) == len(many) == 3
