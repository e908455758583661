"""The queue and the dashboard run the same number of queries with 2 copies
in each state as with 6."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from exporter import fulfillment
from exporter.models import CopyStatus, Disc, DiscStatus, ExportFailure, ItemIssue, PurgeHold, Subscription
from tests.factories import COPY_STATES_WALKED as EVERY_STATE
from tests.factories import add_sized, new_copy, verified_disc

pytestmark = pytest.mark.django_db


def add_work(owners, sam, per_state: int) -> None:
    for n in range(per_state):
        owner = owners[n % len(owners)]
        for state in EVERY_STATE:
            new_copy(owner, sam, state)
        # A failed read-back, a subscriber without an address, a flagged item.
        copy = new_copy(owner, sam, CopyStatus.BURNED)
        fulfillment.record_read_back(
            copy.pk, sam, drive=f"D{n}", media_batch=f"B{n}", method="checkisomd5", value="FAIL"
        )
        ItemIssue.objects.create(item=add_sized(owner, 100, f"x{n}.jpg"), kind="checksum_mismatch", message="bad")
        unreadable = add_sized(owner, 100, f"u{n}.jpg")
        ExportFailure.objects.create(
            owner=owner,
            item=unreadable,
            version=unreadable.current_version,
            stage="reading",
            error="struct.error",
            message=f"unreadable ({n})",
            first_at=unreadable.uploaded_at,
            last_at=unreadable.uploaded_at,
        )
        failed = verified_disc(owner)
        Disc.objects.filter(pk=failed.pk).update(status=DiscStatus.FAILED, last_error=f"par2 is not installed ({n})")
        # A disc whose worker died and that nobody took over.
        stuck = verified_disc(owner)
        Disc.objects.filter(pk=stuck.pk).update(
            status=DiscStatus.BUILDING, leased_by=f"dead:{n}", lease_expires_at=timezone.now() - dt.timedelta(hours=1)
        )
        # A bulk delete the purge's guard holds for staff.
        held = add_sized(owner, 100, f"d{n}.jpg")
        hold = PurgeHold.objects.create(
            scope=f"test:{per_state}:{n}", owner=owner, reason=f"too much ({n})", created_at=timezone.now()
        )
        hold.items.add(held)
    nobody = owners[0].__class__.objects.create_user(f"nobody{per_state}")
    Subscription.objects.create(user=nobody)
    verified_disc(nobody)


def count(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


URLS = [reverse("staff:step", args=[s]) for s in ["burn", "read-back", "label", "ship", "mail", "exceptions"]]


def test_queue_and_dashboard_queries_do_not_grow_with_copies(client, alice, bob, sam):
    client.force_login(sam)
    add_work([alice, bob], sam, 2)
    small = {url: count(client, url) for url in [*URLS, reverse("staff:dashboard")]}
    add_work([alice, bob], sam, 4)
    large = {url: count(client, url) for url in [*URLS, reverse("staff:dashboard")]}
    assert small == large
    # Failed builds show with their reasons on the dashboard and the exceptions tab.
    for url in [reverse("staff:dashboard"), URLS[-1]]:
        assert "par2 is not installed (3)" in client.get(url).content.decode()
    assert "Overdue take-overs" in client.get(reverse("staff:dashboard")).content.decode()
    # Queue: session, user, the user's permissions (2: direct and via groups), the tab
    # counts (3: per state, exception copies, failed builds), the page's count and its
    # rows; the exceptions tab adds the list of failed builds.
    assert large[URLS[0]] == 9
    assert large[URLS[-1]] == 10
    # Dashboard: session, user, permissions (2), copies per state, oldest waiting copy,
    # throughput, failure rates per drive and per batch, disc counts, failed builds,
    # export failures, flagged items, backlog (2), oldest pending change, worker heartbeats,
    # overdue take-overs, purge holds, storage per subscriber (4: versions, items, images, names).
    assert large[reverse("staff:dashboard")] == 23
    page = client.get(reverse("staff:dashboard")).content.decode()
    assert "unreadable (3)" in page and "too much (3)" in page
