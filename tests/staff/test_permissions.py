"""Who gets into the staff pages: a matrix of every URL × every persona,
and CSRF on every POST."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from exporter import build
from exporter.models import CopyStatus, DiscCopy

pytestmark = pytest.mark.django_db

ACTIONS = ["claim", "release", "burned", "burn-failed", "read-back", "labelled", "delivered", "returned"]


@pytest.fixture
def copy(alice, make_copy):
    copy = make_copy(alice)
    path = build.image_path(copy.disc)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 4096)
    return copy


def get_urls(copy):
    return [
        reverse("staff:queue"),
        *[reverse("staff:step", args=[s]) for s in ["burn", "read-back", "label", "ship", "mail", "exceptions"]],
        reverse("staff:copy", args=[copy.pk]),
        reverse("staff:print") + f"?copies={copy.pk}",
        reverse("staff:disc-label", args=[copy.disc_id]),
        reverse("staff:disc-image", args=[copy.disc_id]),
        reverse("staff:dashboard"),
    ]


def post_urls(copy):
    return [
        (reverse("staff:claim"), {"count": "1"}),
        (reverse("staff:batch"), {"copies": [copy.pk], "action": "claim"}),
        (reverse("staff:ship"), {"copies": [copy.pk], "carrier": "royal-mail", "tracking_number": "AB123456789GB"}),
        *[(reverse("staff:copy-action", args=[copy.pk, a]), {"drive": "D", "media_batch": "B"}) for a in ACTIONS],
        *[(reverse("staff:purge-hold", args=[1, a]), {}) for a in ("approve", "cancel")],
    ]


@pytest.fixture
def personas(alice, sam, django_user_model):
    staff_without_permission = django_user_model.objects.create_user("casey", password="x", is_staff=True)
    permission_without_staff = django_user_model.objects.create_user("drew", password="x")
    permission_without_staff.user_permissions.add(Permission.objects.get(codename="change_disccopy"))
    return {
        "subscriber": alice,
        "staff flag only": staff_without_permission,
        "permission only": permission_without_staff,
    }


def test_anonymous_visitors_are_sent_to_sign_in(client, copy):
    for url in get_urls(copy):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("login") + "?next="), url
    for url, data in post_urls(copy):
        response = client.post(url, data)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    copy.refresh_from_db()
    assert copy.status == CopyStatus.QUEUED


def test_subscribers_and_half_staff_get_404_everywhere_and_change_nothing(client, copy, personas):
    for name, user in personas.items():
        client.force_login(user)
        for url in get_urls(copy):
            assert client.get(url).status_code == 404, (name, url)
        for url, data in post_urls(copy):
            assert client.post(url, data).status_code == 404, (name, url)
    copy.refresh_from_db()
    assert copy.status == CopyStatus.QUEUED
    assert copy.events.count() == 1


def test_staff_may_open_every_page(client, copy, sam):
    client.force_login(sam)
    for url in get_urls(copy):
        response = client.get(url)
        assert response.status_code == 200, url
    response = client.get(reverse("staff:disc-image", args=[copy.disc_id]))
    assert b"".join(response.streaming_content) == b"\0" * 4096


def test_staff_actions_go_through(client, copy, sam):
    client.force_login(sam)
    response = client.post(reverse("staff:copy-action", args=[copy.pk, "claim"]), {"drive": "Drive A"})
    assert response.status_code == 302
    copy.refresh_from_db()
    assert copy.status == CopyStatus.CLAIMED and copy.claimed_by == sam


def test_every_post_needs_the_csrf_token(copy, sam):
    client = Client(enforce_csrf_checks=True)
    client.force_login(sam)
    for url, data in post_urls(copy):
        assert client.post(url, data).status_code == 403, url
    assert DiscCopy.objects.get(pk=copy.pk).status == CopyStatus.QUEUED
    # The pages themselves carry the token for their forms.
    page = client.get(reverse("staff:step", args=["burn"]))
    assert b"csrfmiddlewaretoken" in page.content


def test_the_admin_is_not_the_fulfilment_ui(client, sam):
    client.force_login(sam)
    # The admin knows nothing of copies: there is no change form to move them by hand.
    assert client.get("/admin/exporter/disccopy/").status_code == 404
