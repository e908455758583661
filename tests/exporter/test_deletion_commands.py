"""The commands of the deletion lifecycle: delete_items, undelete_items and purge."""

import datetime as dt
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from exporter import deletion, library, purge
from exporter.models import HoldStatus, ItemStatus, MediaItem, PurgeHold, PurgeRecord
from tests.factories import add_file

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_waiting(settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 0
    settings.DISCSUB_PURGE_FLOOR_ITEMS = 5


@pytest.fixture
def library_of_alice(alice):
    trips = library.ensure_album_path(alice, ["Trips"])
    rome = library.ensure_album_path(alice, ["Trips", "Rome"])
    home = library.ensure_album_path(alice, ["Home"])
    return {
        "paris": add_file(alice, "IMG_0001.JPG", albums=[trips]),
        "rome": add_file(alice, "IMG_0002.JPG", albums=[rome]),
        "cat": add_file(alice, "cat.png", albums=[home]),
        "dog": add_file(alice, "dog.png", albums=[home, rome]),
    }


def statuses(items) -> dict[str, str]:
    return {name: MediaItem.objects.get(pk=item.pk).status for name, item in items.items()}


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_delete_items_by_album_takes_the_albums_inside_it(library_of_alice):
    out = run("delete_items", "alice", "--album", "Trips")
    assert out.startswith("deleted 3 items of alice")
    assert statuses(library_of_alice) == {"paris": "deleted", "rome": "deleted", "cat": "live", "dog": "deleted"}
    assert "undelete_items" in out


def test_delete_items_by_glob_to_the_trash(library_of_alice):
    run("delete_items", "alice", "--match", "IMG_*", "--trash")
    assert statuses(library_of_alice) == {"paris": "trashed", "rome": "trashed", "cat": "live", "dog": "live"}
    # Deleting takes trashed items too.
    run("delete_items", "alice", "--all")
    assert set(statuses(library_of_alice).values()) == {"deleted"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["nobody", "--all"], "unknown user 'nobody'"),
        (["alice", "--album", "Trips/Nowhere"], "alice has no album 'Trips/Nowhere'"),
        (["alice", "--album", "/"], "--album needs an album path"),
    ],
)
def test_delete_items_refuses_what_does_not_exist_and_changes_nothing(library_of_alice, args, message):
    with pytest.raises(CommandError, match=message):
        run("delete_items", *args)
    assert set(statuses(library_of_alice).values()) == {"live"}


def test_delete_items_needs_exactly_one_selection(library_of_alice):
    with pytest.raises(CommandError):
        run("delete_items", "alice")
    with pytest.raises(CommandError):
        run("delete_items", "alice", "--all", "--match", "*")


def test_undelete_items_brings_back_the_trash_and_recently_deleted(library_of_alice):
    items = library_of_alice
    deletion.trash_item(items["paris"])
    deletion.delete_now(items["cat"])
    deletion.delete_now(items["dog"])
    assert run("undelete_items", "alice", "--match", "*.png").startswith("brought back 2 items of alice")
    assert statuses(items) == {"paris": "trashed", "rome": "live", "cat": "live", "dog": "live"}
    run("undelete_items", "alice", "--all")
    assert set(statuses(items).values()) == {"live"}


def test_undelete_items_counts_what_is_erased_and_fails_on_what_is_being_erased(library_of_alice):
    items = library_of_alice
    deletion.delete_now(items["cat"])
    purge.run_purge()
    deletion.delete_now(items["dog"])

    def killed_once_recorded(step: str) -> None:
        if step == "recorded":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        purge.run_purge(crash=killed_once_recorded)
    deletion.trash_item(items["paris"])
    with pytest.raises(CommandError, match="1 items could not be brought back"):
        run("undelete_items", "alice", "--all")
    out = run("undelete_items", "alice", "--match", "IMG_*")
    assert out.startswith("brought back 0 items")  # paris came back in the failed run already
    assert statuses(items) == {"paris": "live", "rome": "live", "cat": "deleted", "dog": "deleted"}
    assert "1 matching items were erased by the purge" in run("undelete_items", "alice", "--match", "cat*")


def test_purge_json_says_erased_held_or_waiting_for_each_item(alice, bob, settings, capsys):
    settings.DISCSUB_DELETE_HOLD_DAYS = 30
    old = add_file(alice, "old.jpg")
    new = add_file(alice, "new.jpg")
    deletion.delete_now(old, now=timezone.now() - dt.timedelta(days=31))
    deletion.delete_now(new)
    bobs = [add_file(bob, f"b{n}.jpg") for n in range(10)]
    for item in bobs[:8]:
        deletion.delete_now(item, now=timezone.now() - dt.timedelta(days=31))
    call_command("purge", "--json")
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(set(row) == {"item", "user", "action", "reason"} for row in rows)
    by_item = {row["item"]: row for row in rows}
    assert by_item[str(old.public_id)]["action"] == "erased" and by_item[str(old.public_id)]["user"] == "alice"
    assert by_item[str(new.public_id)]["action"] == "waiting"
    assert "in its hold until" in by_item[str(new.public_id)]["reason"]
    assert {by_item[str(i.public_id)]["action"] for i in bobs[:8]} == {"held"}
    assert len(rows) == 10


def test_purge_dry_run_and_the_staff_decisions(alice, capsys):
    items = [add_file(alice, f"{n}.jpg") for n in range(10)]
    for item in items[:8]:
        deletion.delete_now(item)
    out = run("purge", "--dry-run")
    assert "0 would be erased, 8 held by the guard, 0 waiting" in out and not PurgeHold.objects.exists()
    out = run("purge")
    hold = PurgeHold.objects.get()
    assert f"PURGE HELD: hold #{hold.pk} (alice)" in out
    with pytest.raises(CommandError, match="need --by NAME"):
        run("purge", "--approve", str(hold.pk))
    with pytest.raises(CommandError, match="There is no purge hold #999"):
        run("purge", "--cancel", "999", "--by", "Sam")
    out = run("purge", "--approve", str(hold.pk), "--by", "Sam Staff")
    assert "8 erased, 0 held by the guard, 0 waiting" in out
    assert set(PurgeRecord.objects.values_list("approved_by", flat=True)) == {"Sam Staff"}
    hold.refresh_from_db()
    assert hold.status == HoldStatus.APPROVED


def test_purge_cancel_brings_a_held_bulk_delete_back(alice):
    items = [add_file(alice, f"{n}.jpg") for n in range(10)]
    run("delete_items", "alice", "--all")
    run("purge")
    hold = PurgeHold.objects.get()
    out = run("purge", "--cancel", str(hold.pk), "--by", "Sam Staff")
    assert "0 erased, 0 held by the guard, 0 waiting" in out
    assert set(MediaItem.objects.filter(pk__in=[i.pk for i in items]).values_list("status", flat=True)) == {
        ItemStatus.LIVE
    }
    assert not PurgeRecord.objects.exists()
