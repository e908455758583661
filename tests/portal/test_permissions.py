"""Every portal URL × {anonymous, the owner, another subscriber, staff}.

Anonymous → the sign-in page; the owner → the page or the action; another
subscriber or a staff member → 404 for anything naming Alice's things (never
403, never her data), and nothing of hers changes.  POSTs need the CSRF token.
"""

import uuid
from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import reverse

from exporter.models import Album, DiscCopy, MediaItem, Subscription
from tests.factories import jpeg_bytes


@dataclass
class Case:
    name: str
    method: str
    url: callable  # world -> url
    owner: int  # status for Alice
    data: callable = field(default=lambda w: {})  # world -> POST data
    # True: the URL names one of Alice's things (others get 404);
    # False: a page about the signed-in user's own account (others see their own).
    names_object: bool = True
    # A staff member without a subscription gets 404 here.
    needs_subscription: bool = False


def _upload(w):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return {"files": [SimpleUploadedFile("new.jpg", jpeg_bytes(), "image/jpeg")]}


def item_url(name):
    return lambda w: reverse(name, kwargs={"public_id": w["item"].public_id})


CASES = [
    Case("home", "get", lambda w: reverse("home"), 302, names_object=False),
    Case("library", "get", lambda w: reverse("library"), 200, names_object=False),
    Case("library album", "get", lambda w: reverse("library") + f"?album={w['album'].public_id}", 200),
    Case("item", "get", item_url("item"), 200),
    Case("thumbnail", "get", lambda w: reverse("thumbnail", args=[w["item"].public_id, 1]), 200),
    Case("upload", "post", lambda w: reverse("upload"), 302, _upload, names_object=False),
    Case(
        "upload into album",
        "post",
        lambda w: reverse("upload"),
        302,
        lambda w: {**_upload(w), "album": str(w["album"].public_id)},
    ),
    Case("create album", "post", lambda w: reverse("create_album"), 302, lambda w: {"name": "New"}, names_object=False),
    Case(
        "create album inside",
        "post",
        lambda w: reverse("create_album"),
        302,
        lambda w: {"name": "Sub", "parent": str(w["album"].public_id)},
        names_object=False,  # an unknown parent is a form error, not a 404
    ),
    Case("edit item", "post", item_url("edit_item"), 302, lambda w: {"title": "T", "caption": "C"}),
    Case("move item", "post", item_url("move_item"), 302, lambda w: {"albums": []}),
    Case("trash item", "post", item_url("trash_item"), 302),
    Case("restore item", "post", lambda w: reverse("restore_item", args=[w["trashed"].public_id]), 302),
    Case("delete item", "post", lambda w: reverse("delete_item", args=[w["trashed"].public_id]), 302),
    Case(
        "act on a selection",
        "post",
        lambda w: reverse("act_on_selection"),
        302,
        lambda w: {"action": "trash", "items": [str(w["item"].public_id), str(w["trashed"].public_id)]},
    ),
    Case(
        "move a selection",
        "post",
        lambda w: reverse("act_on_selection"),
        302,
        lambda w: {"action": "move", "items": [str(w["item"].public_id)], "album": str(w["album"].public_id)},
    ),
    Case("next disc", "get", lambda w: reverse("next_disc"), 200, names_object=False, needs_subscription=True),
    Case("ship now", "post", lambda w: reverse("ship_now"), 302, names_object=False, needs_subscription=True),
    Case("discs", "get", lambda w: reverse("discs"), 200, names_object=False),
    Case("disc", "get", lambda w: reverse("disc", args=[w["disc"].public_id]), 200),
    Case("manifest", "get", lambda w: reverse("manifest", args=[w["disc"].public_id]), 200),
    Case("manifest.json", "get", lambda w: reverse("manifest_json", args=[w["disc"].public_id]), 200),
    Case("image", "get", lambda w: reverse("disc_image", args=[w["disc"].public_id]), 200),
    Case(
        "report problem",
        "post",
        lambda w: reverse("report_problem", args=[w["disc"].public_id, w["copy"].public_id]),
        302,
        lambda w: {"problem": "damaged"},
    ),
    Case("settings", "get", lambda w: reverse("settings"), 200, names_object=False, needs_subscription=True),
    Case(
        "change plan",
        "post",
        lambda w: reverse("change_plan"),
        302,
        lambda w: {"medium": "dvd", "cadence": "weekly"},
        names_object=False,
        needs_subscription=True,
    ),
    Case(
        "change address",
        "post",
        lambda w: reverse("change_address"),
        302,
        lambda w: {"name": "A", "line1": "1 Road", "city": "Leeds", "postal_code": "LS1 4AP", "country": "GB"},
        names_object=False,
        needs_subscription=True,
    ),
    Case(
        "change emails",
        "post",
        lambda w: reverse("change_emails"),
        302,
        lambda w: {"on_shipped": "on"},
        names_object=False,
        needs_subscription=True,
    ),
    Case("pause", "post", lambda w: reverse("pause"), 302, names_object=False, needs_subscription=True),
    Case("resume", "post", lambda w: reverse("resume"), 302, names_object=False, needs_subscription=True),
    Case(
        "cancel",
        "post",
        lambda w: reverse("cancel"),
        302,
        lambda w: {"confirm": "yes"},
        names_object=False,
        needs_subscription=True,
    ),
    Case("password change", "get", lambda w: reverse("password_change"), 200, names_object=False),
    Case(
        "password change (post)",
        "post",
        lambda w: reverse("password_change"),
        200,  # the form again, with the wrong old password refused
        lambda w: {"old_password": "wrong", "new_password1": "x-long-pass-9", "new_password2": "x-long-pass-9"},
        names_object=False,
    ),
    Case("password changed", "get", lambda w: reverse("password_change_done"), 200, names_object=False),
]
# Open to everyone, so outside the matrix: sign in, sign out and the
# password reset pages (tests/portal/test_accounts.py).
IDS = [c.name for c in CASES]
POSTS = [c for c in CASES if c.method == "post"]


def _request(client, case, world):
    url = case.url(world)
    if case.method == "get":
        return client.get(url)
    return client.post(url, case.data(world))


def alice_state(alice):
    """Everything of Alice's a request could change."""
    subscription = Subscription.objects.get(user=alice)
    return (
        sorted(MediaItem.objects.filter(owner=alice).values_list("original_name", "status", "title", "caption")),
        sorted(Album.objects.filter(owner=alice).values_list("name", flat=True)),
        sorted(DiscCopy.objects.filter(disc__owner=alice).values_list("status", flat=True)),
        subscription.status,
        subscription.address(),
        subscription.ship_now_requested_at,
    )


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_anonymous_is_sent_to_sign_in(client, world, case):
    response = _request(client, case, world)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_owner_gets_the_page(client, alice, world, case):
    client.force_login(alice)
    response = _request(client, case, world)
    assert response.status_code == case.owner, response.content[:500]


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_others_get_404_and_nothing_of_alices(client, alice, bob, sam, world, case):
    """Bob (another subscriber) and Sam (staff, no subscription of his own)."""
    before = alice_state(alice)
    for other in (bob, sam):
        client.force_login(other)
        response = _request(client, case, world)
        if case.names_object or (other is sam and case.needs_subscription):
            assert response.status_code == 404, other
        else:
            assert response.status_code in (200, 302), other
        if not getattr(response, "streaming", False):
            body = response.content.decode("utf-8", "replace")
            for secret in ("beach.jpg", "Holidays", "Quay Street", "Dunes at dusk", str(world["disc"].public_id)):
                assert secret not in body
        assert alice_state(alice) == before


@pytest.mark.django_db
@pytest.mark.parametrize("case", POSTS, ids=[c.name for c in POSTS])
def test_posts_need_the_csrf_token(alice, world, case):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    before = alice_state(alice)
    response = _request(client, case, world)
    assert response.status_code == 403
    assert alice_state(alice) == before


@pytest.mark.django_db
def test_ids_in_urls_are_uuids_and_unknown_ones_are_404(client, alice, bob, world):
    item, disc = world["item"], world["disc"]
    client.force_login(alice)
    # Sequential primary keys are not URLs at all.
    for url in (f"/library/items/{item.pk}/", f"/discs/{disc.pk}/", f"/discs/{disc.pk}/image.iso"):
        assert client.get(url).status_code == 404
    # A well-formed id that is nobody's, and a malformed album id.
    assert client.get(reverse("item", args=[uuid.uuid4()])).status_code == 404
    assert client.get(reverse("disc_image", args=[uuid.uuid4()])).status_code == 404
    assert client.get(reverse("library") + "?album=12").status_code == 404
    # The ids that appear in Alice's pages are random UUIDs, not her pks.
    body = client.get(reverse("library")).content.decode()
    assert str(item.public_id) in body
    assert f"/library/items/{item.pk}/" not in body
    # Bob's copy id with Alice's disc (and the reverse) is a 404.
    client.force_login(bob)
    assert client.get(reverse("library") + f"?album={world['album'].public_id}").status_code == 404
