"""Each list page runs a fixed number of queries, whatever the number of rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from exporter import deletion, library
from exporter.models import MediaItem
from exporter.planning import plan_next_disc
from tests.factories import add_file, jpeg_bytes, verified_disc
from tests.portal.conftest import ship_copy

pytestmark = pytest.mark.django_db


def count(client, url) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries), [q["sql"] for q in queries.captured_queries]


# Every portal page also runs the banner's queries (exporter.blockers: the
# subscription, the copies not yet mailed, the items held back).
BANNER = 3


def assert_constant(client, url, grow, expected: int) -> None:
    """``expected`` counts the page's own queries; the banner's come on top."""
    few, _ = count(client, url)
    grow()
    many, sql = count(client, url)
    assert (few, many) == (expected + BANNER, expected + BANNER), "\n".join(sql)


def test_library(client, alice):
    # 1 session, 2 user, 3 albums, 4 count for the paginator, 5 the page of
    # items (waiting / disc number annotated), 6 their album memberships.
    albums = [library.ensure_album_path(alice, ["Trips", f"Trip {n}"]) for n in range(3)]
    add_file(alice, "first.jpg", albums=albums[:1])
    client.force_login(alice)

    def grow():
        for n in range(12):
            add_file(alice, f"more-{n}.jpg", albums=albums[: n % 3 + 1])
        plan_next_disc(alice, allow_partial=True)  # some now say "on disc 1"
        add_file(alice, "after.jpg")

    assert_constant(client, reverse("library"), grow, 6)
    assert "On disc 1" in client.get(reverse("library")).content.decode()


@pytest.mark.parametrize("show", ["trash", "deleted"])
def test_the_trash_and_recently_deleted(client, alice, show):
    # As the library: the dates come with the items, whether a disc holds
    # each one and (Recently deleted) whether the purge has begun on it are
    # annotated on the page's query.
    def add_removed(name):
        item = deletion.trash_item(add_file(alice, name))
        return deletion.delete_now(item) if show == "deleted" else item

    add_removed("first.jpg")
    client.force_login(alice)

    def grow():
        for n in range(6):
            add_file(alice, f"held-{n}.jpg")
        plan_next_disc(alice, allow_partial=True)  # now on disc 1
        for item in MediaItem.objects.filter(owner=alice, status="live"):
            deletion.trash_item(item)
            if show == "deleted":
                deletion.delete_now(item)

    assert_constant(client, reverse("library") + f"?show={show}", grow, 6)
    assert "Disc 1 keeps it" in client.get(reverse("library") + f"?show={show}").content.decode()


def test_an_album_page(client, alice):
    # As the library, plus 1 for the album named in the URL (with its parent).
    album = library.ensure_album_path(alice, ["Trips", "Spain"])
    add_file(alice, "first.jpg", albums=[album])
    client.force_login(alice)
    url = reverse("library") + f"?album={album.public_id}"
    assert_constant(client, url, lambda: [add_file(alice, f"x{n}.jpg", albums=[album]) for n in range(8)], 7)


def test_disc_history(client, alice, sam):
    # 1 session, 2 user, 3 discs with their change dates, 4 their copies with envelopes.
    ship_copy(verified_disc(alice), sam)
    client.force_login(alice)

    def grow():
        for _ in range(4):
            ship_copy(verified_disc(alice), sam)
        verified_disc(alice)

    assert_constant(client, reverse("discs"), grow, 4)


def test_a_disc_and_its_timeline(client, alice, sam):
    # 1 session, 2 user, 3 the disc, 4 its events, 5 its copies with envelopes,
    # 6 the copies' events, 7 replacements used this period.
    disc = verified_disc(alice)
    client.force_login(alice)
    url = reverse("disc", args=[disc.public_id])

    def grow():
        from exporter import fulfillment

        copy = ship_copy(disc, sam)
        fulfillment.report_problem(copy.pk, alice, problem="damaged")

    assert_constant(client, url, grow, 7)


def test_the_manifest(client, alice):
    # 1 session, 2 user, 3 the disc, 4 its entries with versions, 5 the discs
    # before it (series catalog), 6 the owner's name for the manifest.
    add_file(alice, "a.jpg", jpeg_bytes())
    first = plan_next_disc(alice, allow_partial=True)
    client.force_login(alice)
    few, _ = count(client, reverse("manifest", args=[first.public_id]))
    for n in range(10):
        add_file(alice, f"b{n}.jpg", jpeg_bytes(color=(n, 2 * n, 3 * n)))
    second = plan_next_disc(alice, allow_partial=True)
    many, sql = count(client, reverse("manifest", args=[second.public_id]))
    assert (few, many) == (6 + BANNER, 6 + BANNER), "\n".join(sql)


def test_the_next_disc(client, alice):
    # 1 session, 2 user, 3 subscription (lookup), 4 subscription (facts),
    # 5 waiting items' count and bytes, 6 waiting changes.
    add_file(alice, "a.jpg")
    client.force_login(alice)
    assert_constant(client, reverse("next_disc"), lambda: [add_file(alice, f"n{n}.jpg") for n in range(10)], 6)


def test_a_verified_discs_manifest_is_made_once(client, alice):
    # The first view makes it (6 queries, as above); later ones take it from
    # the cache: 1 session, 2 user, 3 the disc.
    disc = verified_disc(alice)
    client.force_login(alice)
    url = reverse("manifest", args=[disc.public_id])
    assert count(client, url)[0] == 6 + BANNER
    assert count(client, url)[0] == 3 + BANNER
    assert count(client, reverse("manifest_json", args=[disc.public_id]))[0] == 3
