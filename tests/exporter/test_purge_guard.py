"""The guard (exporter.purge_guard): a bulk delete over the limits erases
nothing and waits for a named staff member; ordinary deletes purge on time."""

import datetime as dt

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command

from exporter import deletion, library, purge, purge_guard
from exporter.models import Change, Disc, DiscStatus, HoldStatus, ItemStatus, MediaItem, PurgeHold, PurgeRecord
from exporter.planning import plan_next_disc
from tests.factories import add_file

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def limits(settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 0
    settings.DISCSUB_PURGE_MAX_LIBRARY_PERCENT = 10
    settings.DISCSUB_PURGE_FLOOR_ITEMS = 5
    settings.DISCSUB_PURGE_FLOOR_MB = 1  # the test files are a few KB: the item floor decides


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol", "carol@example.com", "carol-password-1")


def plan_and_build(owner):
    """Plan the owner's next disc and take it as built: the purge waits for unbuilt discs
    (tests/exporter/test_purge.py), building real images is tested elsewhere."""
    disc = plan_next_disc(owner, allow_partial=True)
    Disc.objects.filter(pk=disc.pk).update(status=DiscStatus.VERIFIED)
    return disc


def library_of(owner, n: int) -> list[MediaItem]:
    album = library.ensure_album_path(owner, ["Holidays"])
    return [add_file(owner, f"{owner.username}-{k}.jpg", albums=[album], caption=f"#{k}") for k in range(n)]


def snapshot(owner) -> list[tuple]:
    """Everything a subscriber would call their library, item by item."""
    return [
        (
            i.public_id,
            i.status,
            i.original_name,
            i.caption,
            i.current_version.sha256,
            tuple(i.albums.values_list("name", flat=True)),
            default_storage.exists(i.current_version.storage_name),
        )
        for i in MediaItem.objects.filter(owner=owner).select_related("current_version").order_by("pk")
    ]


def actions(outcomes) -> dict[str, int]:
    return {a: sum(o.action == a for o in outcomes) for a in (purge.ERASED, purge.HELD, purge.WAITING)}


def test_a_bug_that_deletes_most_of_several_libraries_erases_nothing(alice, bob, carol, sam):
    for owner in (alice, bob, carol):
        library_of(owner, 20)
        plan_and_build(owner)
    before = {owner.pk: snapshot(owner) for owner in (alice, bob, carol)}
    # The bug: 18 of every 20 items deleted at once.
    for owner in (alice, bob, carol):
        for item in MediaItem.objects.filter(owner=owner).order_by("pk")[:18]:
            deletion.delete_now(item, now=T0)

    outcomes = purge.run_purge(now=T0 + DAY)
    assert actions(outcomes) == {"erased": 0, "held": 54, "waiting": 0}
    assert not PurgeRecord.objects.exists()
    holds = list(purge_guard.open_holds())
    assert sorted(h.owner.username for h in holds) == ["alice", "bob", "carol"]
    hold = next(h for h in holds if h.owner == alice)
    assert (hold.items_due, hold.library_items) == (18, 20)
    assert hold.reason.startswith("alice: 18 of 20 items (90%)")
    assert all(o.reason.startswith("hold #") and "waiting for staff" in o.reason for o in outcomes)
    # A second pass holds the same items in the same holds, and still erases nothing.
    assert actions(purge.run_purge(now=T0 + 2 * DAY))["held"] == 54
    assert PurgeHold.objects.count() == 3

    # Meanwhile the discs recorded the deletions.
    for owner in (alice, bob, carol):
        plan_and_build(owner)
    # Staff cancel: every item comes back, unchanged, and the next disc carries them again.
    for hold in holds:
        _, back = purge_guard.cancel(hold.pk, "Sam Staff")
        assert back == 18
    for owner in (alice, bob, carol):
        assert snapshot(owner) == before[owner.pk]
        disc = plan_and_build(owner)
        assert disc.entries.filter(kind="file").count() == 18
    assert actions(purge.run_purge(now=T0 + 3 * DAY)) == {"erased": 0, "held": 0, "waiting": 0}
    assert {h.status for h in PurgeHold.objects.all()} == {HoldStatus.CANCELLED}
    assert {h.decided_by for h in PurgeHold.objects.all()} == {"Sam Staff"}


def test_a_small_subscriber_deleting_a_few_photos_purges_on_time(alice, bob):
    items = library_of(alice, 6)
    library_of(bob, 20)
    for item in items[:4]:  # two thirds of a small library, under the floor of five
        deletion.delete_now(item, now=T0)
    assert actions(purge.run_purge(now=T0 + DAY)) == {"erased": 4, "held": 0, "waiting": 0}
    assert not PurgeHold.objects.exists()


def test_an_approved_hold_is_erased_with_the_staff_members_name(alice):
    items = library_of(alice, 10)
    for item in items[:8]:
        deletion.delete_now(item, now=T0)
    purge.run_purge(now=T0 + DAY)
    (hold,) = purge_guard.open_holds()
    purge_guard.approve(hold.pk, "Sam Staff", now=T0 + DAY)
    outcomes = purge.run_purge(now=T0 + DAY)
    assert actions(outcomes)["erased"] == 8
    records = PurgeRecord.objects.all()
    assert {r.approved_by for r in records} == {"Sam Staff"} and {r.hold_id for r in records} == {hold.pk}
    assert all(f"approved with hold #{hold.pk}" in r.rule for r in records)
    assert all("approved by Sam Staff" in o.reason for o in outcomes)
    # The approval covered those items only; the two left purge as usual.
    for item in items[8:]:
        deletion.delete_now(item, now=T0 + DAY)
    assert actions(purge.run_purge(now=T0 + 2 * DAY))["erased"] == 2


def test_deletes_spread_over_a_day_add_up(alice):
    items = library_of(alice, 40)
    for item in items[:4]:
        deletion.delete_now(item, now=T0)
    assert actions(purge.run_purge(now=T0 + dt.timedelta(hours=1)))["erased"] == 4
    for item in items[4:8]:
        deletion.delete_now(item, now=T0 + dt.timedelta(hours=1))
    # 4 erased an hour ago + 4 due: 8 of 40 (20%), over the floor of five.
    assert actions(purge.run_purge(now=T0 + dt.timedelta(hours=2)))["held"] == 4
    (hold,) = purge_guard.open_holds()
    assert hold.reason.startswith("alice: 8 of 40 items (20%)")


def test_more_becoming_due_joins_the_open_hold(alice):
    items = library_of(alice, 10)
    for item in items[:7]:
        deletion.delete_now(item, now=T0)
    purge.run_purge(now=T0 + DAY)
    deletion.delete_now(items[7], now=T0 + DAY)
    purge.run_purge(now=T0 + 2 * DAY)
    (hold,) = purge_guard.open_holds()
    assert hold.items.count() == hold.items_due == 8


def test_the_service_limit_per_day_holds_everyone(alice, bob, settings):
    settings.DISCSUB_PURGE_MAX_GB_PER_DAY = 0
    for owner in (alice, bob):
        deletion.delete_now(library_of(owner, 20)[0], now=T0)
    outcomes = purge.run_purge(now=T0 + DAY)
    assert actions(outcomes)["held"] == 2
    (hold,) = purge_guard.open_holds()
    assert hold.scope == "service" and hold.owner is None and hold.items.count() == 2
    assert hold.reason.startswith("the service: ") and "the limit is 0 bytes a day" in hold.reason


def test_a_sharp_jump_against_the_trailing_average_holds(alice, bob, settings):
    settings.DISCSUB_PURGE_SERVICE_FLOOR_MB = 1
    settings.DISCSUB_PURGE_JUMP_FACTOR = 3
    a = library_of(alice, 40)
    library_of(bob, 40)
    # Four large files (1.6 MB): each subscriber's two stay under their own byte floor (1 MB).
    big = [add_file(owner, f"big-{n}.bin", b"%d" % n * 400_000) for owner in (alice, bob) for n in range(2)]
    # An ordinary fortnight: one item erased a day.
    for day in range(14):
        deletion.delete_now(a[day], now=T0 + day * DAY)
        assert actions(purge.run_purge(now=T0 + day * DAY))["erased"] == 1
    # Then four items at once, under each subscriber's own limit but a jump for the service.
    for item in big:
        deletion.delete_now(item, now=T0 + 14 * DAY)
    outcomes = purge.run_purge(now=T0 + 15 * DAY)
    assert actions(outcomes)["held"] == 4
    (hold,) = purge_guard.open_holds()
    assert "over 3 times the daily average of the last 14 days" in hold.reason


def test_a_dry_run_says_held_and_creates_no_hold(alice):
    for item in library_of(alice, 10)[:8]:
        deletion.delete_now(item, now=T0)
    outcomes = purge.run_purge(now=T0 + DAY, dry_run=True)
    assert actions(outcomes)["held"] == 8 and "waiting for staff: alice: 8 of 10" in outcomes[0].reason
    assert not PurgeHold.objects.exists()


def test_an_erasure_that_began_is_finished_even_under_a_hold(alice):
    items = library_of(alice, 10)
    deletion.delete_now(items[0], now=T0)

    def kill(step):
        if step == "object":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        purge.run_purge(now=T0 + DAY, crash=kill)
    for item in items[1:9]:
        deletion.delete_now(item, now=T0 + DAY)
    outcomes = {o.item_id: o.action for o in purge.run_purge(now=T0 + 2 * DAY)}
    assert outcomes.pop(items[0].pk) == purge.ERASED
    assert set(outcomes.values()) == {purge.HELD}


@pytest.mark.parametrize(
    "hold_id, by, message",
    [(999, "Sam", "There is no purge hold #999"), (None, " ", "Say who decides"), (None, "Sam", "approved already")],
)
def test_staff_requests_the_guard_refuses_say_why(alice, hold_id, by, message):
    for item in library_of(alice, 10)[:8]:
        deletion.delete_now(item, now=T0)
    purge.run_purge(now=T0 + DAY)
    (hold,) = purge_guard.open_holds()
    if message.endswith("already"):
        purge_guard.approve(hold.pk, "Someone")
    with pytest.raises(purge_guard.GuardError, match=message):
        purge_guard.cancel(hold_id or hold.pk, by)
    assert MediaItem.objects.filter(owner=alice, status=ItemStatus.DELETED).count() == 8
    assert Change.objects.filter(owner=alice, kind="restored").count() == 0


def test_export_status_alerts_staff(alice, capsys):
    for item in library_of(alice, 10)[:8]:
        deletion.delete_now(item, now=T0)
    purge.run_purge(now=T0 + DAY)
    (hold,) = purge_guard.open_holds()
    call_command("export_status")
    out = capsys.readouterr().out
    assert f"PURGE HELD: hold #{hold.pk}" in out and "alice: 8 of 10 items" in out
    assert "manage.py purge --approve" in out
