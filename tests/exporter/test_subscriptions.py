"""What a subscriber may change about their subscription (exporter.subscriptions):
each move recorded with who and when, illegal moves refused with a reason
and nothing changed."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exporter import deletion, fulfillment, library, scheduling, subscriptions
from exporter.errors import IllegalTransition
from exporter.media import capacity_bytes
from exporter.models import CopyStatus, Subscription, SubscriptionEvent
from tests.factories import add_file, add_sized, new_copy, verified_disc

pytestmark = pytest.mark.django_db


def events(subscription):
    return list(SubscriptionEvent.objects.filter(subscription=subscription).values_list("kind", "actor__username"))


@pytest.fixture
def sub(alice):
    return Subscription.objects.get(user=alice)


# --- ship now ---------------------------------------------------------------------


def test_ship_now_is_recorded_and_the_scheduler_plans_it(alice, sub):
    add_file(alice, "a.jpg")
    subscriptions.request_ship_now(sub, alice)
    assert sub.ship_now_requested_at is not None
    assert events(sub) == [("ship_now", "alice")]
    outcome = scheduling.run_subscription(sub.pk)
    assert outcome.reason == "ship now" and len(outcome.discs) == 1
    sub.refresh_from_db()
    assert sub.ship_now_requested_at is None


def test_ship_now_twice_before_the_scheduler_runs_is_refused(alice, sub):
    add_file(alice, "a.jpg")
    subscriptions.request_ship_now(sub, alice)
    with pytest.raises(IllegalTransition, match="already asked"):
        subscriptions.request_ship_now(sub, alice)
    assert len(events(sub)) == 1


def test_ship_now_once_per_period(alice, sub):
    start = timezone.now()
    add_file(alice, "a.jpg")
    subscriptions.request_ship_now(sub, alice, now=start)
    scheduling.run_subscription(sub.pk)
    add_file(alice, "b.jpg")
    with pytest.raises(IllegalTransition, match="once per monthly period.*You can ask again from"):
        subscriptions.request_ship_now(sub, alice, now=start + dt.timedelta(days=29))
    subscriptions.request_ship_now(sub, alice, now=start + dt.timedelta(days=31))
    assert [k for k, _ in events(sub)] == ["ship_now", "ship_now"]


def test_ship_now_needs_something_waiting_and_an_active_subscription(alice, sub):
    with pytest.raises(IllegalTransition, match="Nothing is waiting"):
        subscriptions.request_ship_now(sub, alice)
    add_file(alice, "a.jpg")
    subscriptions.pause(sub, alice)
    with pytest.raises(IllegalTransition, match="paused"):
        subscriptions.request_ship_now(sub, alice)
    assert sub.ship_now_requested_at is None


# --- pause, resume, cancel --------------------------------------------------------------


def test_pause_resume_cancel_record_who_and_the_states(alice, sam, sub):
    subscriptions.pause(sub, alice)
    assert sub.status == "paused"
    subscriptions.resume(sub, alice)
    subscriptions.cancel(sub, sam)  # staff may act for a subscriber
    rows = SubscriptionEvent.objects.filter(subscription=sub).values_list("kind", "from_status", "to_status", "actor")
    assert list(rows) == [
        ("paused", "active", "paused", alice.pk),
        ("resumed", "paused", "active", alice.pk),
        ("cancelled", "active", "cancelled", sam.pk),
    ]


@pytest.mark.parametrize(
    "status, move, message",
    [
        ("active", subscriptions.resume, "only a paused subscription can be resumed"),
        ("paused", subscriptions.pause, "only an active subscription can be paused"),
        ("cancelled", subscriptions.pause, "is cancelled; only an active"),
        ("cancelled", subscriptions.resume, "is cancelled; only a paused"),
        ("cancelled", subscriptions.cancel, "already cancelled"),
    ],
)
def test_illegal_moves_are_refused_and_change_nothing(alice, sub, status, move, message):
    Subscription.objects.filter(pk=sub.pk).update(status=status)
    sub.refresh_from_db()
    with pytest.raises(IllegalTransition, match=message):
        move(sub, alice)
    sub.refresh_from_db()
    assert sub.status == status
    assert events(sub) == []


def test_pausing_drops_a_ship_now_request(alice, sub):
    add_file(alice, "a.jpg")
    subscriptions.request_ship_now(sub, alice)
    subscriptions.pause(sub, alice)
    assert sub.ship_now_requested_at is None
    assert list(scheduling.due_subscriptions()) == []


# --- plan, address, emails --------------------------------------------------------------


def test_change_plan(alice, sub):
    subscriptions.change_plan(sub, alice, medium="bd", cadence="quarterly")
    assert (sub.medium, sub.cadence) == ("bd", "quarterly")
    assert SubscriptionEvent.objects.get(subscription=sub).note == "cd/monthly → bd/quarterly"
    subscriptions.change_plan(sub, alice, medium="bd", cadence="quarterly")  # no change, no event
    assert len(events(sub)) == 1
    with pytest.raises(IllegalTransition, match="Choose one of the discs"):
        subscriptions.change_plan(sub, alice, medium="floppy", cadence="weekly")


GOOD = {"name": "Alice  Archer", "line1": " 7 Harbourside ", "city": "Leeds", "postal_code": "ls1 4ap", "country": "gb"}


def test_an_address_is_tidied_and_its_time_recorded(alice, sub):
    before = sub.address_updated_at
    subscriptions.update_address(sub, alice, **GOOD)
    assert sub.address() == {
        "name": "Alice Archer",
        "line1": "7 Harbourside",
        "line2": "",
        "city": "Leeds",
        "region": "",
        "postal_code": "LS1 4AP",
        "country": "GB",
    }
    assert sub.address_updated_at != before
    assert events(sub) == [("address_changed", "alice")]
    subscriptions.update_address(sub, alice, **GOOD)  # the same address again: nothing recorded
    assert len(events(sub)) == 1


@pytest.mark.parametrize(
    "change, field, message",
    [
        ({"name": ""}, "name", "Enter your full name."),
        ({"line1": "  "}, "line1", "Enter your first address line."),
        ({"city": ""}, "city", "Enter your town or city."),
        ({"country": "XX"}, "country", "Choose a country from the list."),
        ({"country": "US", "postal_code": "LS1 4AP"}, "postal_code", "not a postal code in United States"),
        ({"postal_code": ""}, "postal_code", "Enter your postal code."),
        ({"line2": "x" * 201}, "line2", "at most 200"),
        ({"line1": "1 Road\x00"}, "line1", "control characters"),
    ],
)
def test_a_bad_address_is_refused_field_by_field(alice, sub, change, field, message):
    before = sub.address()
    with pytest.raises(subscriptions.InvalidAddress) as refused:
        subscriptions.update_address(sub, alice, **{**GOOD, **change})
    assert message in refused.value.errors[field]
    sub.refresh_from_db()
    assert sub.address() == before
    assert events(sub) == []


def test_an_address_change_spares_copies_on_their_way_and_releases_a_returned_one(alice, sam, sub):
    on_its_way = verified_disc(alice).copies.get()
    fulfillment.claim_copies([on_its_way.pk], sam)
    returned = new_copy(alice, sam, "returned")
    with pytest.raises(IllegalTransition, match="fixes the address"):
        fulfillment.ship([returned.pk], sam, carrier="royal-mail", tracking_number="AB123456780GB")

    subscriptions.update_address(sub, alice, **GOOD)
    on_its_way.refresh_from_db()
    assert on_its_way.address["line1"] == "12 Quay Street"
    fulfillment.ship([returned.pk], sam, carrier="royal-mail", tracking_number="AB123456780GB")
    returned.refresh_from_db()
    assert returned.status == CopyStatus.SHIPPED and returned.address["line1"] == "7 Harbourside"


def test_email_preferences(alice, sub):
    subscriptions.set_email_preferences(sub, alice, on_shipped=False, on_delivered=True)
    assert (sub.email_on_shipped, sub.email_on_delivered) == (False, True)
    assert events(sub) == [("emails_changed", "alice")]


# --- the next disc ------------------------------------------------------------------------


def test_next_disc_facts_in_three_queries(alice, sub):
    add_sized(alice, 100_000, "a.bin")
    add_sized(alice, 250_000, "b.bin")
    trashed = deletion.trash_item(add_sized(alice, 999_999, "c.bin"))
    library.edit_metadata(trashed, caption="x")  # two waiting changes, no bytes
    with CaptureQueriesContext(connection) as queries:
        facts = subscriptions.next_disc(alice)
    assert len(queries) == 3
    assert (facts.items, facts.changes, facts.bytes) == (3, 5, 350_000)
    assert facts.capacity == capacity_bytes("cd")
    assert facts.fill == pytest.approx(350_000 / capacity_bytes("cd"))
    assert facts.discs_needed == 1


def test_next_disc_says_when(alice, sub):
    assert subscriptions.next_disc(alice).when == "As soon as you add photos or videos."
    add_sized(alice, 1000)
    with time_machine.travel(dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)):
        Subscription.objects.filter(pk=sub.pk).update(next_run_at=timezone.now() + dt.timedelta(days=3))
        assert subscriptions.next_disc(alice).when.startswith("On 4 November 2026")
    add_sized(alice, capacity_bytes("cd"))
    assert subscriptions.next_disc(alice).when == "Very soon: you have enough to fill a disc."
    assert subscriptions.next_disc(alice).discs_needed == 2
    subscriptions.pause(sub, alice)
    assert subscriptions.next_disc(alice).when.startswith("Not while your subscription is paused")
