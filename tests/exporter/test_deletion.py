"""The deletion lifecycle (exporter.deletion): trash, Recently deleted, undo,
the trash emptying itself, and the disc series staying exactly-once."""

import datetime as dt
import io

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone

from exporter import deletion, library, status, thumbnails
from exporter.library import LibraryError
from exporter.models import Change, ChangeKind, DiscEntry, EntryKind, ItemStatus, JobRun, MediaItem, Resolution
from exporter.planning import plan_next_disc
from tests.factories import add_file, jpeg_bytes, verified_disc

pytestmark = pytest.mark.django_db
NOON = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def entries(disc) -> dict[int, str]:
    return dict(DiscEntry.objects.filter(disc=disc).values_list("item_id", "kind"))


def test_trashing_starts_the_clock_and_restoring_stops_it(alice, settings):
    settings.DISCSUB_TRASH_DAYS = 30
    item = deletion.trash_item(add_file(alice, "a.jpg"), now=NOON)
    assert item.status == ItemStatus.TRASHED and item.trashed_at == NOON
    assert deletion.trash_expires_on(item) == NOON + dt.timedelta(days=30)
    assert deletion.erase_after(item) is None
    deletion.restore_item(item)
    assert (item.status, item.trashed_at, deletion.trash_expires_on(item)) == (ItemStatus.LIVE, None, None)


def test_delete_now_moves_an_item_to_recently_deleted_with_its_erasure_date(alice, settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 7
    item = deletion.trash_item(add_file(alice, "a.jpg"), now=NOON)
    later = NOON + dt.timedelta(hours=3)
    deletion.delete_now(item, now=later)
    assert (item.status, item.trashed_at, item.deleted_at) == (ItemStatus.DELETED, None, later)
    assert deletion.is_recently_deleted(item)
    assert deletion.erase_after(item) == later + dt.timedelta(days=7)
    assert deletion.trash_expires_on(item) is None
    # Its bytes stay: only the purge erases them.
    assert default_storage.exists(item.current_version.storage_name)


def test_staff_can_delete_a_live_item_at_once(alice):
    item = deletion.delete_now(add_file(alice, "a.jpg"))
    assert item.status == ItemStatus.DELETED
    assert list(Change.objects.filter(item=item).values_list("kind", flat=True)) == [
        ChangeKind.ADDED,
        ChangeKind.DELETED,
    ]


def test_undelete_brings_back_a_recently_deleted_or_trashed_item(alice):
    gone = deletion.delete_now(add_file(alice, "gone.jpg"))
    trashed = deletion.trash_item(add_file(alice, "trashed.jpg"))
    for item in (gone, trashed):
        deletion.undelete_item(item)
        assert (item.status, item.trashed_at, item.deleted_at) == (ItemStatus.LIVE, None, None)
        assert Change.objects.filter(item=item).last().kind == ChangeKind.RESTORED


@pytest.mark.parametrize(
    "start, move",
    [
        ("deleted", deletion.restore_item),  # restore is from the trash only
        ("deleted", deletion.trash_item),
        ("live", deletion.restore_item),
        ("live", deletion.undelete_item),
    ],
)
def test_moves_the_state_forbids_are_refused_and_change_nothing(alice, start, move):
    item = add_file(alice, "a.jpg")
    if start == "deleted":
        deletion.delete_now(item)
    before = Change.objects.filter(item=item).count()
    if start == "live" and move in (deletion.restore_item, deletion.undelete_item):
        # Already live: the move to the state it is in is harmless.
        move(item)
    else:
        with pytest.raises(LibraryError, match="cannot be changed that way"):
            move(item)
    item.refresh_from_db()
    assert item.status == start
    assert Change.objects.filter(item=item).count() == before


def test_an_erased_item_cannot_come_back(alice):
    item = deletion.delete_now(add_file(alice, "a.jpg"))
    MediaItem.objects.filter(pk=item.pk).update(erased_at=timezone.now())
    with pytest.raises(LibraryError, match="erased"):
        deletion.undelete_item(item)
    item.refresh_from_db()
    assert item.status == ItemStatus.DELETED and not deletion.is_recently_deleted(item)
    assert deletion.erase_after(item) is None


def test_the_database_refuses_dates_that_contradict_the_status(alice):
    item = add_file(alice, "a.jpg")
    for fields in ({"trashed_at": NOON}, {"deleted_at": NOON}, {"status": ItemStatus.TRASHED}):
        with pytest.raises(IntegrityError), transaction.atomic():
            MediaItem.objects.filter(pk=item.pk).update(**fields)


def test_a_deleted_item_cannot_be_edited_and_deleting_twice_is_harmless(alice):
    item = add_file(alice, "a.jpg")
    deletion.delete_now(item)
    deletion.delete_now(item)
    assert item.status == ItemStatus.DELETED
    with pytest.raises(LibraryError):
        library.edit_metadata(item, caption="x")
    assert Change.objects.filter(owner=alice, kind=ChangeKind.DELETED).count() == 1


# --- the trash empties itself ------------------------------------------------------


def test_empty_trash_moves_only_what_has_waited_long_enough(alice, settings):
    settings.DISCSUB_TRASH_DAYS = 30
    old = deletion.trash_item(add_file(alice, "old.jpg"), now=NOON)
    young = deletion.trash_item(add_file(alice, "young.jpg"), now=NOON + dt.timedelta(days=5))
    live = add_file(alice, "live.jpg")
    when = NOON + dt.timedelta(days=30)
    run = deletion.empty_trash(now=when)
    assert run.name == deletion.EMPTY_TRASH_JOB and "1 items moved" in run.note
    for item in (old, young, live):
        item.refresh_from_db()
    assert (old.status, old.deleted_at) == (ItemStatus.DELETED, when)
    assert young.status == ItemStatus.TRASHED and live.status == ItemStatus.LIVE
    # A doubled run does nothing twice.
    assert "0 items moved" in deletion.empty_trash(now=when).note
    assert Change.objects.filter(item=old, kind=ChangeKind.DELETED).count() == 1
    assert JobRun.objects.filter(name=deletion.EMPTY_TRASH_JOB).count() == 2


def test_with_zero_trash_days_the_next_run_empties_the_trash(alice, settings):
    settings.DISCSUB_TRASH_DAYS = 0
    item = deletion.trash_item(add_file(alice, "a.jpg"))
    deletion.empty_trash()
    item.refresh_from_db()
    assert item.status == ItemStatus.DELETED


def test_an_item_restored_and_trashed_again_waits_again(alice, settings):
    settings.DISCSUB_TRASH_DAYS = 30
    item = deletion.trash_item(add_file(alice, "a.jpg"), now=NOON)
    deletion.restore_item(item)
    deletion.trash_item(item, now=NOON + dt.timedelta(days=20))
    deletion.empty_trash(now=NOON + dt.timedelta(days=31))
    item.refresh_from_db()
    assert item.status == ItemStatus.TRASHED


# --- the disc series stays exactly-once ----------------------------------------------


def test_a_deletion_reaches_exactly_one_disc(alice):
    item = add_file(alice, "a.jpg")
    plan_next_disc(alice, allow_partial=True)
    deletion.trash_item(item)
    deletion.delete_now(item)
    other = add_file(alice, "b.jpg")
    second = plan_next_disc(alice, allow_partial=True)
    assert entries(second) == {item.pk: EntryKind.DELETION, other.pk: EntryKind.FILE}
    add_file(alice, "c.jpg")
    third = plan_next_disc(alice, allow_partial=True)
    assert item.pk not in entries(third)
    assert DiscEntry.objects.filter(item=item, kind=EntryKind.DELETION).count() == 1


def test_undo_before_a_disc_records_the_deletion_cancels_it(alice):
    item = add_file(alice, "a.jpg")
    first = plan_next_disc(alice, allow_partial=True)
    deletion.trash_item(item)
    deletion.delete_now(item)
    deletion.undelete_item(item)
    assert plan_next_disc(alice, allow_partial=True) is None  # nothing to ship: the discs hold it as it is
    assert not Change.objects.filter(item=item, resolution=Resolution.PENDING).exists()
    assert list(DiscEntry.objects.filter(item=item).values_list("disc", "kind")) == [(first.pk, EntryKind.FILE)]


def test_undo_after_a_disc_recorded_the_deletion_brings_the_item_back_on_the_next_disc(alice):
    item = add_file(alice, "a.jpg", caption="Kept")
    plan_next_disc(alice, allow_partial=True)
    deletion.delete_now(item)
    second = plan_next_disc(alice, allow_partial=True)
    assert entries(second) == {item.pk: EntryKind.DELETION}
    deletion.undelete_item(item)
    third = plan_next_disc(alice, allow_partial=True)
    assert entries(third) == {item.pk: EntryKind.FILE}
    entry = DiscEntry.objects.get(disc=third)
    assert entry.version == item.current_version and entry.metadata["caption"] == "Kept"
    assert plan_next_disc(alice, allow_partial=True) is None  # carried once
    # Deleted again: the series says it is back, so the deletion ships again, once.
    deletion.delete_now(item)
    fourth = plan_next_disc(alice, allow_partial=True)
    assert entries(fourth) == {item.pk: EntryKind.DELETION}


def test_an_item_no_disc_held_ships_nothing_when_deleted_and_all_when_undeleted(alice):
    item = add_file(alice, "a.jpg")
    deletion.delete_now(item)
    assert plan_next_disc(alice, allow_partial=True) is None
    deletion.undelete_item(item)
    disc = plan_next_disc(alice, allow_partial=True)
    assert entries(disc) == {item.pk: EntryKind.FILE}


def test_undo_of_a_trashed_item_a_disc_holds_ships_nothing(alice):
    item = add_file(alice, "a.jpg")
    plan_next_disc(alice, allow_partial=True)
    deletion.trash_item(item)
    assert plan_next_disc(alice, allow_partial=True) is None
    deletion.restore_item(item)
    assert plan_next_disc(alice, allow_partial=True) is None


def test_the_facts_say_what_discs_hold_and_what_the_next_disc_will_record(alice):
    never = deletion.delete_now(add_file(alice, "never.jpg"))
    held = add_file(alice, "held.jpg")
    plan_next_disc(alice, allow_partial=True)
    facts = deletion.deletion_facts(never)
    assert not facts.on_a_disc and not facts.next_disc_records_deletion and not facts.deletion_on_a_disc
    deletion.delete_now(held)
    facts = deletion.deletion_facts(held)
    assert facts.on_a_disc and facts.next_disc_records_deletion and not facts.deletion_on_a_disc
    assert facts.erase_after == deletion.erase_after(held) and facts.erased_at is None
    plan_next_disc(alice, allow_partial=True)
    held.refresh_from_db()
    facts = deletion.deletion_facts(held)
    assert facts.on_a_disc and not facts.next_disc_records_deletion and facts.deletion_on_a_disc


def test_a_list_page_gets_the_facts_in_one_query(alice, django_assert_num_queries):
    for n in range(5):
        deletion.trash_item(add_file(alice, f"{n}.jpg"))
    plan_next_disc(alice, allow_partial=True)
    with django_assert_num_queries(1):
        items = list(deletion.with_disc_facts(MediaItem.objects.filter(owner=alice)))
        facts = [deletion.deletion_facts(item) for item in items]
    assert len(facts) == 5 and all(f.trash_expires_on and not f.on_a_disc for f in facts)


# --- storage accounting ------------------------------------------------------------


def test_storage_usage_counts_every_version_thumbnail_and_image(alice, bob):
    live = add_file(alice, "live.jpg", jpeg_bytes(color=(200, 10, 10)))
    library.replace_bytes(live, io.BytesIO(b"x" * 1000))
    trashed = deletion.trash_item(add_file(alice, "t.jpg", b"t" * 300))
    gone = deletion.delete_now(add_file(alice, "g.jpg", b"g" * 50))
    erased = deletion.delete_now(add_file(alice, "e.jpg", b"e" * 7))
    MediaItem.objects.filter(pk=erased.pk).update(erased_at=timezone.now())
    add_file(bob, "bob.jpg", b"b" * 10_000)
    thumb = thumbnails.ensure_for_version(live.versions.get(number=1))
    assert thumb is not None
    disc = verified_disc(alice)

    usage = deletion.storage_usage(alice)
    first = live.versions.get(number=1).size
    assert usage.originals == first + 1000 + 300 + 50
    assert usage.in_trash == 300 and usage.waiting_erasure == 50
    assert usage.thumbnails == thumb.size == default_storage.size(thumb.storage_name)
    assert usage.images == disc.image_size
    assert usage.total == usage.originals + usage.thumbnails + usage.images
    assert (usage.items, usage.items_in_trash, usage.items_waiting_erasure) == (3, 1, 1)
    assert trashed.pk and gone.pk
    assert deletion.storage_usage(alice, measure_thumbnails=False).thumbnails == 0


def test_export_status_shows_storage_per_subscriber_largest_first(alice, bob, capsys):
    add_file(alice, "a.jpg", b"a" * 3000)
    deletion.trash_item(add_file(alice, "t.jpg", b"t" * 1000))
    deletion.delete_now(add_file(bob, "b.jpg", b"b" * 100))
    rows = status.storage_by_subscriber(limit=1)
    assert [(r["username"], r["originals_bytes"], r["trash_bytes"], r["items"]) for r in rows] == [
        ("alice", 4000, 1000, 2)
    ]
    call_command("export_status", "--top", "5")
    out = capsys.readouterr().out
    assert "  alice: 4.0 KB in 2 items (1.0 KB in the trash, 0 B waiting to be erased), images 0 B" in out
    assert "  bob: 100 B in 1 items (0 B in the trash, 100 B waiting to be erased), images 0 B" in out
