"""Staff see what the purge's guard holds and decide it, in their own name
(exporter.purge_guard); only those allowed to decide purges may."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from exporter import deletion, purge, purge_guard
from exporter.models import HoldStatus, ItemStatus, MediaItem, PurgeHold, PurgeRecord
from tests.browser import SHOTS, chromium_browser
from tests.factories import add_file
from tests.staff.test_browser import session_cookie, shoot

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def bulk_delete(owner, n: int = 10, gone: int = 8) -> PurgeHold:
    """A library of ``n`` of which ``gone`` are deleted at once and held by the guard."""
    items = [add_file(owner, f"{owner.username}-{k}.jpg") for k in range(n)]
    for item in items[:gone]:
        deletion.delete_now(item, now=T0)
    purge.run_purge(now=T0 + dt.timedelta(days=1))
    return PurgeHold.objects.get(owner=owner, status=HoldStatus.HELD)


@pytest.fixture(autouse=True)
def limits(settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 0
    settings.DISCSUB_PURGE_FLOOR_ITEMS = 5


@pytest.mark.django_db
def test_the_dashboard_alerts_and_cancel_brings_the_items_back(client, alice, sam):
    hold = bulk_delete(alice)
    client.force_login(sam)
    page = client.get(reverse("staff:dashboard")).content.decode()
    assert "Purge held: erasing nothing until staff decide" in page
    assert "alice: 8 of 10 items (80%)" in page and "Approve erasure" in page
    response = client.post(reverse("staff:purge-hold", args=[hold.pk, "cancel"]), follow=True)
    assert f"Hold #{hold.pk} cancelled: 8 items are back in the library." in response.content.decode()
    hold.refresh_from_db()
    assert (hold.status, hold.decided_by) == (HoldStatus.CANCELLED, "sam")
    assert set(MediaItem.objects.filter(owner=alice).values_list("status", flat=True)) == {ItemStatus.LIVE}
    assert "Purge held" not in client.get(reverse("staff:dashboard")).content.decode()


@pytest.mark.django_db
def test_approve_puts_the_staff_members_name_on_the_records(client, alice, sam):
    sam.first_name, sam.last_name = "Sam", "Staff"
    sam.save()
    hold = bulk_delete(alice)
    client.force_login(sam)
    client.post(reverse("staff:purge-hold", args=[hold.pk, "approve"]))
    again = client.post(reverse("staff:purge-hold", args=[hold.pk, "approve"]), follow=True)
    assert f"Purge hold #{hold.pk} is approved already." in again.content.decode()
    purge.run_purge(now=T0 + dt.timedelta(days=2))
    assert set(PurgeRecord.objects.values_list("approved_by", flat=True)) == {"Sam Staff"}
    assert PurgeRecord.objects.count() == 8


@pytest.mark.django_db
def test_staff_who_may_not_decide_purges_see_the_alert_and_cannot_act(client, alice, django_user_model):
    hold = bulk_delete(alice)
    clerk = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="change_disccopy"))
    client.force_login(clerk)
    page = client.get(reverse("staff:dashboard")).content.decode()
    assert "alice: 8 of 10 items" in page and "Needs a purge approver" in page and "Approve erasure" not in page
    for action in ("approve", "cancel", "erase"):
        assert client.post(reverse("staff:purge-hold", args=[hold.pk, action])).status_code == 404
    hold.refresh_from_db()
    assert hold.status == HoldStatus.HELD


@pytest.mark.django_db(transaction=True)
def test_a_held_purge_in_the_browser(live_server, alice, bob, sam):
    hold = bulk_delete(alice)
    bulk_delete(bob, 40, 30)
    for n in range(3):
        deletion.trash_item(add_file(alice, f"trash-{n}.jpg", b"t" * 5000))
    cookie = session_cookie(sam, live_server)
    with chromium_browser() as chromium:
        context = chromium.new_context()
        context.add_cookies([cookie])
        page = context.new_page()
        page.goto(live_server.url + "/staff/dashboard/")
        alert = page.get_by_role("region", name="Purge held: erasing nothing until staff decide")
        assert alert.is_visible()
        assert alert.get_by_role("group", name=f"Hold #{hold.pk}, alice").is_visible()
        shoot(page, "20-purge-held")
        alert.get_by_role("group", name=f"Hold #{hold.pk}, alice").get_by_role(
            "button", name="Cancel, bring back"
        ).click()
        assert f"Hold #{hold.pk} cancelled: 8 items are back in the library." in page.locator(".messages").inner_text()
        storage = page.get_by_role("region", name="Storage per subscriber")
        assert storage.get_by_role("row").filter(has_text="alice").is_visible()
        shoot(page, "21-purge-cancelled")
        context.close()
    assert MediaItem.objects.filter(owner=alice, status=ItemStatus.LIVE).count() == 10
    assert purge_guard.open_holds().count() == 1
    assert (SHOTS / "staff-20-purge-held-phone.png").exists()
