"""The life of a physical copy (DESIGN §5): every legal move, every illegal
one refused, events that tell the whole story, emails after commit."""

import datetime as dt
import itertools

import pytest
from django.core import mail
from django.utils import timezone

from exporter import carriers, fulfillment
from exporter.errors import IllegalTransition
from exporter.models import CopyReason, CopyStatus, DiscCopy, ReadBackCheck, Subscription
from tests.factories import verified_disc, walk_copy

pytestmark = pytest.mark.django_db


def first_copy(disc) -> DiscCopy:
    return disc.copies.get(reason=CopyReason.FIRST)


def to_state(copy: DiscCopy, target: str, staff) -> DiscCopy:
    return walk_copy(copy, target, staff)


def test_a_verified_image_queues_exactly_one_first_copy(alice):
    disc = verified_disc(alice)
    assert fulfillment.queue_first_copy(disc) is None
    copy = first_copy(disc)
    assert copy.status == CopyStatus.QUEUED
    assert fulfillment.history(copy) == [CopyStatus.QUEUED]


def test_the_main_path_records_who_did_what(alice, sam, django_capture_on_commit_callbacks):
    disc = verified_disc(alice)
    copy = first_copy(disc)
    with django_capture_on_commit_callbacks(execute=True):
        to_state(copy, CopyStatus.DELIVERED, sam)
    assert fulfillment.history(copy) == [
        "queued",
        "claimed",
        "burned",
        "checked",
        "labelled",
        "shipped",
        "delivered",
    ]
    assert all(e.actor == sam for e in copy.events.exclude(from_status=""))
    copy.refresh_from_db()
    assert copy.address["line1"] == "12 Quay Street"
    assert copy.shipment.tracking_number == "AB123456789GB"
    assert copy.delivered_at is not None
    subjects = [m.subject for m in mail.outbox]
    assert subjects == ["Your disc 1 is on the way", "Disc 1 has arrived"]
    assert "https://www.royalmail.com/track-your-item#/tracking-results/AB123456789GB" in mail.outbox[0].body
    assert mail.outbox[0].to == ["alice@example.com"]


ALL_STATES = list(CopyStatus)


@pytest.mark.parametrize(
    "source,target",
    [
        (s, t)
        for s, t in itertools.product(
            [
                CopyStatus.QUEUED,
                CopyStatus.CLAIMED,
                CopyStatus.BURNED,
                CopyStatus.CHECKED,
                CopyStatus.LABELLED,
                CopyStatus.SHIPPED,
                CopyStatus.DELIVERED,
            ],
            ALL_STATES,
        )
        if t not in fulfillment.TRANSITIONS[s]
    ],
)
def test_every_illegal_move_is_refused_and_changes_nothing(alice, sam, source, target):
    copy = to_state(first_copy(verified_disc(alice)), source, sam)
    events = copy.events.count()
    moves = {
        CopyStatus.QUEUED: lambda: fulfillment.release(copy.pk, sam),
        CopyStatus.CLAIMED: lambda: fulfillment.claim_copies([copy.pk], sam),
        CopyStatus.BURNED: lambda: fulfillment.mark_burned(copy.pk, sam, drive="D1", media_batch="B1"),
        CopyStatus.CHECKED: lambda: fulfillment.record_read_back(
            copy.pk, sam, drive="D", media_batch="B", method="checkisomd5", value="PASS"
        ),
        CopyStatus.LABELLED: lambda: fulfillment.mark_labelled(copy.pk, sam),
        CopyStatus.SHIPPED: lambda: fulfillment.ship([copy.pk], sam, carrier="dhl", tracking_number="1234567890"),
        CopyStatus.DELIVERED: lambda: fulfillment.mark_delivered(copy.pk, sam),
        CopyStatus.RETURNED: lambda: fulfillment.mark_returned(copy.pk, sam),
        CopyStatus.LOST: lambda: fulfillment.report_problem(copy.pk, alice, problem=CopyStatus.LOST),
        CopyStatus.DAMAGED: lambda: fulfillment.report_problem(copy.pk, alice, problem=CopyStatus.DAMAGED),
    }
    if target == CopyStatus.CLAIMED:
        # Claiming is a batch: a copy that is not queued is simply not claimed.
        assert moves[target]() == []
    else:
        with pytest.raises(IllegalTransition) as refused:
            moves[target]()
        assert f"Disc {copy.disc.number} of alice" in str(refused.value)
    copy.refresh_from_db()
    assert copy.status == source
    assert copy.events.count() == events
    assert DiscCopy.objects.count() == 1


def test_a_double_submission_is_refused_and_harmless(alice, sam):
    copy = to_state(first_copy(verified_disc(alice)), CopyStatus.CLAIMED, sam)
    fulfillment.mark_burned(copy.pk, sam, drive="D1", media_batch="B1")
    with pytest.raises(IllegalTransition, match="is to read back; it cannot be marked to read back"):
        fulfillment.mark_burned(copy.pk, sam, drive="D1", media_batch="B1")
    copy.refresh_from_db()
    assert copy.burn_attempts == 1
    assert fulfillment.history(copy) == ["queued", "claimed", "burned"]


def test_a_failed_read_back_goes_back_to_burning_and_counts_against_drive_and_batch(alice, sam):
    disc = verified_disc(alice)
    copy = to_state(first_copy(disc), CopyStatus.BURNED, sam)
    check = fulfillment.record_read_back(
        copy.pk, sam, drive="Pioneer-2", media_batch="V-0425", method="sha256", value="0" * 64
    )
    assert not check.ok
    copy.refresh_from_db()
    assert copy.status == CopyStatus.QUEUED and copy.claimed_by is None
    assert ReadBackCheck.objects.filter(drive="Pioneer-2", media_batch="V-0425", ok=False).count() == 1
    assert "read-back failed on Pioneer-2" in copy.events.last().note


@pytest.mark.parametrize(
    "output,ok",
    [
        ("PASS", True),
        ("FAIL", False),
        ("ISO MD5SUM = {md5}\nThe media check is complete, the result is: PASS.", True),
        ("ISO MD5SUM = {md5}\nThe media check is complete, the result is: FAIL.", False),
        ("ISO MD5SUM = 0123456789abcdef0123456789abcdef\nThe media check is complete, the result is: PASS.", False),
    ],
)
def test_checkisomd5_output_is_read_and_must_be_this_images(alice, sam, output, ok):
    disc = verified_disc(alice)
    copy = to_state(first_copy(disc), CopyStatus.BURNED, sam)
    check = fulfillment.record_read_back(
        copy.pk, sam, drive="D", media_batch="B", method="checkisomd5", value=output.format(md5=disc.implanted_md5)
    )
    assert check.ok is ok
    copy.refresh_from_db()
    assert copy.status == (CopyStatus.CHECKED if ok else CopyStatus.QUEUED)


def test_read_back_input_that_says_nothing_is_refused(alice, sam):
    copy = to_state(first_copy(verified_disc(alice)), CopyStatus.BURNED, sam)
    with pytest.raises(IllegalTransition, match="64-character sha256"):
        fulfillment.record_read_back(copy.pk, sam, drive="D", media_batch="B", method="sha256", value="abc")
    with pytest.raises(IllegalTransition, match="PASS or FAIL"):
        fulfillment.record_read_back(copy.pk, sam, drive="D", media_batch="B", method="checkisomd5", value="hmm")
    assert ReadBackCheck.objects.count() == 0
    copy.refresh_from_db()
    assert copy.status == CopyStatus.BURNED


def test_claims_skip_copies_of_subscribers_without_an_address(alice, bob, sam):
    Subscription.objects.filter(user=bob).update(address_line1="")
    a, b = first_copy(verified_disc(alice)), first_copy(verified_disc(bob))
    claimed = fulfillment.claim_copies([a.pk, b.pk], sam)
    assert [c.pk for c in claimed] == [a.pk]


def test_a_copy_claimed_by_someone_else_cannot_be_burned_by_me(alice, sam, django_user_model):
    other = django_user_model.objects.create_user("olga", is_staff=True)
    copy = to_state(first_copy(verified_disc(alice)), CopyStatus.CLAIMED, sam)
    with pytest.raises(IllegalTransition, match="claimed by sam"):
        fulfillment.mark_burned(copy.pk, other, drive="D", media_batch="B")
    with pytest.raises(IllegalTransition, match="claimed by sam"):
        fulfillment.burn_failed(copy.pk, other)
    with pytest.raises(IllegalTransition, match="claimed by sam"):
        fulfillment.release(copy.pk, other)
    copy.refresh_from_db()
    assert copy.status == CopyStatus.CLAIMED and copy.claimed_by == sam


def test_an_address_edit_after_claim_does_not_change_the_copy(alice, sam):
    copy = to_state(first_copy(verified_disc(alice)), CopyStatus.LABELLED, sam)
    Subscription.objects.filter(user=alice).update(address_line1="1 New Road", address_updated_at=timezone.now())
    shipment = fulfillment.ship([copy.pk], sam, carrier="royal-mail", tracking_number="ab 123 456 789 gb")
    assert shipment.address["line1"] == "12 Quay Street"
    assert shipment.tracking_number == "AB123456789GB"


def test_one_envelope_holds_one_subscribers_discs(alice, bob, sam):
    mine = [to_state(first_copy(verified_disc(alice)), CopyStatus.LABELLED, sam) for _ in range(2)]
    theirs = to_state(first_copy(verified_disc(bob)), CopyStatus.LABELLED, sam)
    with pytest.raises(IllegalTransition, match="one subscriber only"):
        fulfillment.ship([mine[0].pk, theirs.pk], sam, carrier="dhl", tracking_number="1234567890")
    shipment = fulfillment.ship([c.pk for c in mine], sam, carrier="dhl", tracking_number="1234567890")
    assert shipment.copies.count() == 2


def test_tracking_numbers_are_checked_per_carrier(alice, sam):
    copy = to_state(first_copy(verified_disc(alice)), CopyStatus.LABELLED, sam)
    with pytest.raises(carriers.InvalidTracking, match="not a UPS tracking number"):
        fulfillment.ship([copy.pk], sam, carrier="ups", tracking_number="12345")
    copy.refresh_from_db()
    assert copy.status == CopyStatus.LABELLED
    assert carriers.normalize_tracking("ups", "1z999aa1 0123456784") == "1Z999AA10123456784"
    assert carriers.normalize_tracking("other", "XY-9876") == "XY-9876"


def test_a_returned_copy_waits_for_an_address_fix_then_reships(alice, sam, django_capture_on_commit_callbacks):
    copy = to_state(first_copy(verified_disc(alice)), CopyStatus.SHIPPED, sam)
    with django_capture_on_commit_callbacks(execute=True):
        fulfillment.mark_returned(copy.pk, sam)
    assert "came back to us" in mail.outbox[-1].subject
    with pytest.raises(IllegalTransition, match="waits until the subscriber fixes the address"):
        fulfillment.ship([copy.pk], sam, carrier="dhl", tracking_number="1234567890")
    sub = Subscription.objects.get(user=alice)
    sub.address_line1 = "14 Quay Street"
    sub.address_updated_at = timezone.now() + dt.timedelta(seconds=1)
    sub.save()
    shipment = fulfillment.ship([copy.pk], sam, carrier="dhl", tracking_number="1234567890")
    assert shipment.address["line1"] == "14 Quay Street"
    assert fulfillment.history(copy)[-3:] == ["shipped", "returned", "shipped"]


def test_a_lost_disc_gets_a_replacement_of_the_same_image_within_limits(alice, sam, settings):
    settings.DISCSUB_REPLACEMENTS_PER_PERIOD = 1
    disc = verified_disc(alice)
    copy = to_state(first_copy(disc), CopyStatus.DELIVERED, sam)
    replacement = fulfillment.report_problem(copy.pk, alice, problem=CopyStatus.DAMAGED, note="cracked")
    assert replacement.disc == disc and replacement.replaces == copy
    assert replacement.status == CopyStatus.QUEUED
    copy.refresh_from_db()
    assert copy.status == CopyStatus.DAMAGED
    other = to_state(first_copy(verified_disc(alice)), CopyStatus.SHIPPED, sam)
    with pytest.raises(fulfillment.ReplacementLimit, match="1 replacements in the last 90 days"):
        fulfillment.report_problem(other.pk, alice, problem=CopyStatus.LOST)
    other.refresh_from_db()
    assert other.status == CopyStatus.SHIPPED
    assert fulfillment.replacements_left(alice) == 0


def test_emails_follow_the_subscribers_preferences(alice, sam, django_capture_on_commit_callbacks):
    Subscription.objects.filter(user=alice).update(email_on_shipped=False)
    copy = to_state(first_copy(verified_disc(alice)), CopyStatus.LABELLED, sam)
    with django_capture_on_commit_callbacks(execute=True):
        fulfillment.ship([copy.pk], sam, carrier="dhl", tracking_number="1234567890")
        fulfillment.mark_delivered(copy.pk, sam)
    assert [m.subject for m in mail.outbox] == ["Disc 1 has arrived"]


def test_a_mail_server_that_is_down_does_not_undo_the_move(alice, sam, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    copy = to_state(first_copy(verified_disc(alice)), CopyStatus.LABELLED, sam)
    with django_capture_on_commit_callbacks(execute=True):
        fulfillment.ship([copy.pk], sam, carrier="dhl", tracking_number="1234567890")
    copy.refresh_from_db()
    assert copy.status == CopyStatus.SHIPPED
