"""Trash with one click and its Undo, restore, delete now, and the library's
selection (one POST for many items): what the pages say and what changes."""

import datetime as dt
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse

from exporter import deletion, library, purge
from exporter.models import Change, MediaItem
from exporter.planning import plan_next_disc
from tests.factories import add_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(client, alice):
    client.force_login(alice)
    return client


def select(client, action, items, **extra):
    data = {"action": action, "items": [str(i.public_id) for i in items], **extra}
    return client.post(reverse("act_on_selection"), data)


def statuses(*items) -> list[str]:
    return [MediaItem.objects.get(pk=i.pk).status for i in items]


def follow(client, response) -> str:
    return client.get(response["Location"]).content.decode()


def all_of_alices(alice):
    """Every item of Alice's, with its state, albums and feed length."""
    items = MediaItem.objects.filter(owner=alice).order_by("pk")
    rows = [(i.original_name, i.status, sorted(a.name for a in i.albums.all())) for i in items]
    return rows, Change.objects.filter(owner=alice).count()


# --- one item ---------------------------------------------------------------------------


def test_one_click_moves_an_item_to_the_trash_and_undo_brings_it_back(signed_in, alice):
    item = add_file(alice, "beach.jpg")
    response = signed_in.post(reverse("trash_item", args=[item.public_id]))
    assert statuses(item) == ["trashed"]
    # Back in the library, which names the item with an Undo button.
    assert urlsplit(response["Location"]).path == reverse("library")
    assert parse_qs(urlsplit(response["Location"]).query)["undo"] == [str(item.public_id)]
    page = follow(signed_in, response)
    assert "“beach.jpg” is in the trash." in page and ">Undo</button>" in page
    assert 'name="action" value="restore"' in page
    response = select(signed_in, "restore", [item])
    assert statuses(item) == ["live"]
    page = follow(signed_in, response)
    assert "“beach.jpg” is back in your library." in page and ">Undo</button>" not in page


def test_a_live_item_offers_no_delete_only_the_trash(signed_in, alice):
    item = add_file(alice, "beach.jpg")
    page = signed_in.get(reverse("item", args=[item.public_id])).content.decode()
    assert "Move to trash" in page
    assert "Delete" not in page and "data-confirm" not in page
    # Posted anyway, it is refused and nothing changes.
    response = signed_in.post(reverse("delete_item", args=[item.public_id]))
    assert "Only items in the trash can be deleted" in follow(signed_in, response)
    assert statuses(item) == ["live"]


def test_delete_now_goes_to_recently_deleted_with_an_undo_and_twice_is_harmless(signed_in, alice, settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 30
    item = deletion.trash_item(add_file(alice, "blurry.jpg"))
    for _ in range(2):
        response = signed_in.post(reverse("delete_item", args=[item.public_id]))
        assert response.status_code == 302
        assert statuses(item) == ["deleted"]
    assert Change.objects.filter(item=item, kind="deleted").count() == 1
    assert urlsplit(response["Location"]).path == reverse("library")
    assert parse_qs(urlsplit(response["Location"]).query) == {"show": ["trash"], "undo": [str(item.public_id)]}
    page = follow(signed_in, response)
    erased_from = MediaItem.objects.get(pk=item.pk).deleted_at + dt.timedelta(days=30)
    assert '“blurry.jpg” is in <a href="?show=deleted">Recently deleted</a>.' in page
    assert f"You can undo this at least until {erased_from:%-d %B %Y}" in page
    assert 'name="action" value="undelete"' in page
    response = select(signed_in, "undelete", [item], back="trash")
    assert statuses(item) == ["live"]
    assert "“blurry.jpg” is back in your library." in follow(signed_in, response)


def test_restore_from_the_item_page_returns_to_it(signed_in, alice):
    item = deletion.trash_item(add_file(alice, "blurry.jpg"))
    response = signed_in.post(reverse("restore_item", args=[item.public_id]))
    assert response["Location"] == reverse("item", args=[item.public_id])
    assert statuses(item) == ["live"]


# --- what the pages say -----------------------------------------------------------------------


def test_a_trashed_item_never_says_waiting_for_a_disc(signed_in, alice):
    deletion.trash_item(add_file(alice, "never-shipped.jpg"))
    trash = signed_in.get(reverse("library") + "?show=trash").content.decode()
    assert "never-shipped.jpg" in trash
    assert "Waiting for a disc" not in trash
    assert "On no disc" in trash and "keeps it</span>" not in trash
    assert "Nothing in the trash goes on a disc. The trash empties itself: 30 days after" in trash
    goes = MediaItem.objects.get(original_name="never-shipped.jpg").trashed_at + dt.timedelta(days=30)
    assert f"Deleted on {goes:%-d %b %Y} unless you restore it" in trash
    item = MediaItem.objects.get(original_name="never-shipped.jpg")
    page = signed_in.get(reverse("item", args=[item.public_id])).content.decode()
    assert "Waiting for a disc" not in page and "goes on your next disc" not in page
    assert "No disc holds it, so no disc will mention it." in page
    assert "keeps its copy" not in page


def test_discs_keep_it_only_where_a_disc_holds_it(signed_in, alice):
    on_disc = add_file(alice, "on-disc.jpg")
    disc = plan_next_disc(alice, allow_partial=True)
    later = add_file(alice, "later.jpg")
    page = signed_in.get(reverse("item", args=[on_disc.public_id])).content.decode()
    assert f"Disc {disc.number} keeps its copy whatever you do here" in page
    assert "keeps its copy" not in signed_in.get(reverse("item", args=[later.public_id])).content.decode()
    select(signed_in, "trash", [on_disc, later])
    trash = signed_in.get(reverse("library") + "?show=trash").content.decode()
    assert trash.count(f"Disc {disc.number} keeps it") == 1 and trash.count("On no disc") == 1
    page = signed_in.get(reverse("item", args=[on_disc.public_id])).content.decode()
    assert f"Disc {disc.number} keeps its copy; once it is deleted, your next disc records the deletion." in page
    response = select(signed_in, "delete", [on_disc, later], back="trash")
    assert "2 items are in <a" in follow(signed_in, response)
    # Recently deleted says, per item, whether a disc holds it and records the deletion.
    recent = signed_in.get(reverse("library") + "?show=deleted").content.decode()
    assert recent.count(f"Disc {disc.number} keeps it") == 1 and recent.count("On no disc") == 1
    assert recent.count("your next disc records the deletion") == 1
    plan_next_disc(alice, allow_partial=True)  # the deletion goes on disc 2
    recent = signed_in.get(reverse("library") + "?show=deleted").content.decode()
    assert "your next disc records the deletion" not in recent and recent.count("a disc records the deletion") == 1


# --- a selection ------------------------------------------------------------------------------


def test_a_selection_is_trashed_restored_and_deleted_in_one_post_each(signed_in, alice):
    items = [add_file(alice, f"{n}.jpg") for n in range(3)]
    response = select(signed_in, "trash", items)
    assert statuses(*items) == ["trashed"] * 3
    assert "3 items are in the trash." in follow(signed_in, response)
    response = select(signed_in, "restore", items[:1], back="trash")
    assert response["Location"] == reverse("library") + "?show=trash"
    assert statuses(*items) == ["live", "trashed", "trashed"]
    select(signed_in, "delete", items[1:], back="trash")
    assert statuses(*items) == ["live", "deleted", "deleted"]


def test_a_selection_moves_out_of_the_album_shown_into_the_one_chosen(signed_in, alice):
    trips, family, friends = (library.ensure_album_path(alice, [name]) for name in ("Trips", "Family", "Friends"))
    a = add_file(alice, "a.jpg", albums=[trips, friends])
    b = add_file(alice, "b.jpg", albums=[trips])
    response = select(signed_in, "move", [a, b], album=str(family.public_id), shown=str(trips.public_id))
    assert response["Location"] == reverse("library") + f"?album={trips.public_id}"
    assert "2 items are in “Family”." in follow(signed_in, response)
    assert sorted(x.name for x in a.albums.all()) == ["Family", "Friends"]
    assert [x.name for x in b.albums.all()] == ["Family"]
    # From the whole library, a move only adds the album.
    select(signed_in, "move", [b], album=str(trips.public_id))
    assert sorted(x.name for x in b.albums.all()) == ["Family", "Trips"]
    response = select(signed_in, "move", [b])
    assert "Choose the album" in follow(signed_in, response)


def test_a_forged_id_in_a_selection_changes_nothing(signed_in, alice, bob):
    mine = [add_file(alice, f"{n}.jpg") for n in range(2)]
    bobs = add_file(bob, "bobs.jpg")
    album = library.ensure_album_path(alice, ["Trips"])
    before = all_of_alices(alice)
    for action in ("trash", "move"):
        assert select(signed_in, action, [*mine, bobs], album=str(album.public_id)).status_code == 404
    data = {"action": "trash", "items": [str(mine[0].public_id), "not-a-uuid"]}
    assert signed_in.post(reverse("act_on_selection"), data).status_code == 404
    data = {"action": "trash", "items": [str(mine[0].public_id), str(uuid.uuid4())]}
    assert signed_in.post(reverse("act_on_selection"), data).status_code == 404
    assert all_of_alices(alice) == before
    assert statuses(bobs) == ["live"]
    # Nor into another subscriber's album.
    bobs_album = library.ensure_album_path(bob, ["Bob's"])
    assert select(signed_in, "move", mine, album=str(bobs_album.public_id)).status_code == 404
    assert all_of_alices(alice) == before


def test_one_refusal_leaves_the_whole_selection_as_it_was(signed_in, alice):
    trashed = deletion.trash_item(add_file(alice, "trashed.jpg"))
    live = add_file(alice, "live.jpg")
    before = all_of_alices(alice)
    response = select(signed_in, "delete", [trashed, live], back="trash")
    refusal = "Only items in the trash can be deleted: move them to the trash first. Nothing was changed."
    assert refusal in follow(signed_in, response)
    assert all_of_alices(alice) == before


def test_sending_a_selection_twice_is_harmless(signed_in, alice):
    items = [add_file(alice, f"{n}.jpg") for n in range(2)]
    album = library.ensure_album_path(alice, ["Trips"])
    for action, extra, status in (("move", {"album": str(album.public_id)}, "live"), ("trash", {}, "trashed")):
        select(signed_in, action, items, **extra)
        after_first = all_of_alices(alice)
        assert select(signed_in, action, items, **extra).status_code == 302
        assert all_of_alices(alice) == after_first
        assert statuses(*items) == [status] * 2


def test_a_selection_needs_items_an_action_and_a_sane_size(signed_in, alice):
    item = add_file(alice, "a.jpg")
    mine = [str(item.public_id)]
    for data in ({"action": "trash"}, {"items": mine}, {"items": mine, "action": "x"}):
        response = signed_in.post(reverse("act_on_selection"), data)
        assert "Choose one or more items, then what to do with them." in follow(signed_in, response)
    data = {"action": "trash", "items": [str(uuid.uuid4()) for _ in range(501)]}
    assert "at most 500 items" in follow(signed_in, signed_in.post(reverse("act_on_selection"), data))
    assert statuses(item) == ["live"]


def test_the_undo_offer_names_only_my_trashed_items(signed_in, alice, bob):
    mine = deletion.trash_item(add_file(alice, "mine.jpg"))
    live = add_file(alice, "live.jpg")
    bobs = deletion.trash_item(add_file(bob, "bobs-secret.jpg"))
    url = reverse("library") + f"?undo={mine.public_id}&undo={live.public_id}&undo={bobs.public_id}&undo=junk"
    page = signed_in.get(url).content.decode()
    assert "“mine.jpg” is in the trash." in page
    assert "bobs-secret" not in page and str(bobs.public_id) not in page
    offer = page[page.index('<div class="undo"') : page.index("</div>", page.index('<div class="undo"'))]
    assert offer.count('name="items"') == 1 and str(mine.public_id) in offer


def test_the_library_shows_the_action_bar_and_a_box_per_item(signed_in, alice):
    library.ensure_album_path(alice, ["Trips"])
    items = [add_file(alice, f"{n}.jpg") for n in range(3)]
    page = signed_in.get(reverse("library")).content.decode()
    for item in items:
        assert f'name="items" value="{item.public_id}" form="selection"' in page
    assert 'class="secondary">Move to trash</button>' in page and "Move to album</button>" in page
    assert 'value="restore"' not in page
    deletion.trash_item(items[0])
    trash = signed_in.get(reverse("library") + "?show=trash").content.decode()
    assert 'value="delete"' in trash and 'value="restore"' in trash and "Move to album" not in trash


# --- Recently deleted ----------------------------------------------------------------------------


def test_recently_deleted_says_when_the_bytes_go_and_undoes_until_then(signed_in, alice, settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 14
    items = [deletion.trash_item(add_file(alice, f"{n}.jpg")) for n in range(3)]
    for item in items:
        deletion.delete_now(item)
    page = signed_in.get(reverse("library") + "?show=deleted").content.decode()
    assert "Deleted items wait here 14 days and you can still undo each one." in page
    erased_from = MediaItem.objects.get(pk=items[0].pk).deleted_at + dt.timedelta(days=14)
    assert page.count(f"Erased on or after {erased_from:%-d %b %Y}") == 3
    assert 'value="undelete" class="secondary">Undo delete</button>' in page
    assert "Move to trash" not in page and 'value="delete"' not in page
    response = select(signed_in, "undelete", items[:2], back="deleted")
    assert response["Location"] == reverse("library") + "?show=deleted"
    assert "2 items are back in your library." in follow(signed_in, response)
    assert statuses(*items) == ["live", "live", "deleted"]
    # Once the purge has erased an item it is off the page and cannot come back.
    outcomes = purge.run_purge(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=15))
    assert [(o.item, o.action) for o in outcomes] == [(str(items[2].public_id), "erased")]
    assert "2.jpg" not in signed_in.get(reverse("library") + "?show=deleted").content.decode()
    response = select(signed_in, "undelete", items[2:], back="deleted")
    assert "stored bytes have been erased; it cannot come back. Nothing was changed." in follow(signed_in, response)
    assert statuses(*items) == ["live", "live", "deleted"]


def test_the_trash_empties_itself_into_recently_deleted(signed_in, alice, settings):
    settings.DISCSUB_TRASH_DAYS = 0
    item = deletion.trash_item(add_file(alice, "old.jpg"))
    deletion.empty_trash()
    assert "old.jpg" not in signed_in.get(reverse("library") + "?show=trash").content.decode()
    assert "old.jpg" in signed_in.get(reverse("library") + "?show=deleted").content.decode()
    assert statuses(item) == ["deleted"]


def test_a_live_item_cannot_be_undeleted_into_a_mess(signed_in, alice):
    """Undo on an item already back is harmless: it stays live, one change."""
    item = deletion.trash_item(add_file(alice, "a.jpg"))
    deletion.delete_now(item)
    for _ in range(2):
        select(signed_in, "undelete", [item], back="deleted")
    assert statuses(item) == ["live"]
    assert Change.objects.filter(item=item, kind="restored").count() == 1


def test_settings_show_what_is_stored_in_the_trash_and_waiting_to_be_erased(signed_in, alice):
    for n in range(3):
        add_file(alice, f"live-{n}.jpg", b"x" * 1500)
    deletion.trash_item(add_file(alice, "trashed.jpg", b"t" * 1000))
    deletion.delete_now(deletion.trash_item(add_file(alice, "deleted.jpg", b"d" * 700)))
    page = signed_in.get(reverse("settings")).content.decode()
    storage = page[page.index('id="storage-h"') : page.index("</section>", page.index('id="storage-h"'))]
    assert '<dt>Stored for you</dt><dd class="num">6.1\xa0KB</dd>' in storage  # 3 × 1,500 + 1,000 + 700
    assert "5 items, every version" in storage
    assert '<dt>In the trash</dt><dd class="num">1000\xa0bytes</dd>' in storage
    assert '<dt>Waiting to be erased</dt><dd class="num">700\xa0bytes</dd>' in storage
    assert "Your plan stores up to 200.0\xa0GB of originals." in storage


class Killed(BaseException):
    """Stands for the purge's process dying half-way."""


def test_an_item_the_purge_has_begun_to_erase_offers_no_undo(signed_in, alice, settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 0
    item = deletion.delete_now(deletion.trash_item(add_file(alice, "going.jpg")))

    def killed_after_recording(step: str) -> None:
        if step == "recorded":
            raise Killed(step)

    with pytest.raises(Killed):
        purge.run_purge(crash=killed_after_recording)
    page = signed_in.get(reverse("library") + "?show=deleted").content.decode()
    assert "Being erased now: it can no longer come back" in page
    assert "Undo the delete" not in page and f'value="{item.public_id}" form="selection" disabled' in page
    response = select(signed_in, "undelete", [item], back="deleted")
    assert "being erased; it cannot come back. Nothing was changed." in follow(signed_in, response)
    assert statuses(item) == ["deleted"]


def test_a_delete_the_guard_holds_says_it_waits_for_staff_and_can_be_undone(signed_in, alice, settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 0
    settings.DISCSUB_PURGE_FLOOR_ITEMS = 1  # a library of three, all deleted at once: over the limit
    items = [deletion.trash_item(add_file(alice, f"{n}.jpg")) for n in range(3)]
    select(signed_in, "delete", items, back="trash")
    outcomes = purge.run_purge()
    assert {o.action for o in outcomes} == {"held"}
    page = signed_in.get(reverse("library") + "?show=deleted").content.decode()
    assert page.count("Waiting for a check by our staff before anything is erased") == 3
    assert "Erased on or after" not in page and page.count("Undo the delete of") == 3
    select(signed_in, "undelete", items[:1], back="deleted")
    assert statuses(*items) == ["live", "deleted", "deleted"]
