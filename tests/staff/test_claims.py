"""Claiming a batch: the oldest first, never a copy without an address, and
two staff claiming at once never get the same copy (PostgreSQL)."""

import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.urls import reverse

from exporter import fulfillment
from exporter.models import CopyStatus, DiscCopy, Subscription
from tests.factories import new_copy
from tests.tools import require_postgres


def staff_member(django_user_model, name: str):
    user = django_user_model.objects.create_user(name, password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_disccopy"))
    return user


@pytest.mark.django_db
def test_a_batch_is_the_oldest_copies_that_can_be_mailed(client, alice, sam, django_user_model, make_copy):
    # The oldest copies belong to subscribers without an address: they must not starve the batch.
    nobody = django_user_model.objects.create_user("nobody")
    Subscription.objects.create(user=nobody)
    stranger = django_user_model.objects.create_user("stranger")  # no subscription row at all
    stuck = [make_copy(nobody) for _ in range(4)] + [make_copy(stranger)]
    ready = [make_copy(alice) for _ in range(5)]
    client.force_login(sam)
    response = client.post(reverse("staff:claim"), {"count": "3", "drive": "Drive A"}, follow=True)
    assert "You claimed 3 copies" in response.content.decode()
    claimed = DiscCopy.objects.filter(status=CopyStatus.CLAIMED)
    assert sorted(c.pk for c in claimed) == [c.pk for c in ready[:3]]
    assert all(c.claimed_by == sam and c.drive == "Drive A" for c in claimed)
    # The copies that wait for an address are on the exceptions tab, and only there.
    page = client.get(reverse("staff:step", args=["exceptions"])).content.decode()
    assert "Subscriber has no mailing address" in page
    for copy in stuck + ready:
        assert (f'href="{reverse("staff:copy", args=[copy.pk])}"' in page) == (copy in stuck)


@pytest.mark.django_db
def test_claiming_when_nothing_waits_says_so(client, sam):
    client.force_login(sam)
    response = client.post(reverse("staff:claim"), {"count": "5"}, follow=True)
    assert "Nothing to claim" in response.content.decode()


@pytest.mark.django_db
def test_claim_a_batch_filtered_by_medium(client, alice, sam, make_copy):
    cds = [make_copy(alice, medium="cd") for _ in range(2)]
    dvd = make_copy(alice, medium="dvd")
    client.force_login(sam)
    client.post(reverse("staff:claim"), {"count": "10", "medium": "dvd"})
    assert list(DiscCopy.objects.filter(status=CopyStatus.CLAIMED)) == [dvd]
    assert all(DiscCopy.objects.get(pk=c.pk).status == CopyStatus.QUEUED for c in cds)


def _race(users, work) -> dict:
    """Run ``work(user)`` in one thread per user, released together; each thread has its own connection."""
    barrier = threading.Barrier(len(users))
    results, errors = {}, []

    def run(user):
        try:
            barrier.wait(timeout=10)
            results[user.username] = work(user)
        except Exception as e:  # reported below: a thread's exception would otherwise vanish
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_two_staff_claiming_the_same_batch_at_once_never_share_a_copy(alice, bob, sam, django_user_model):
    require_postgres()
    kim = staff_member(django_user_model, "kim")
    copies = [new_copy(owner, sam) for owner in [alice, bob] * 15]
    ids = [c.pk for c in copies]

    def claim_through_the_queue(user):
        client = Client()
        client.force_login(user)
        response = client.post(reverse("staff:batch"), {"copies": ids, "action": "claim", "drive": user.username})
        assert response.status_code == 302
        return set(DiscCopy.objects.filter(claimed_by=user).values_list("pk", flat=True))

    got = _race([sam, kim], claim_through_the_queue)
    assert not got["sam"] & got["kim"]
    assert got["sam"] | got["kim"] == set(ids)
    for copy in DiscCopy.objects.filter(pk__in=ids):
        # Exactly one claim event per copy, by the one who holds it.
        claims = list(copy.events.filter(to_status=CopyStatus.CLAIMED))
        assert len(claims) == 1 and claims[0].actor_id == copy.claimed_by_id


@pytest.mark.django_db(transaction=True)
def test_two_staff_claiming_the_next_batch_at_once_get_different_copies(alice, bob, sam, django_user_model):
    require_postgres()
    kim = staff_member(django_user_model, "kim")
    copies = [new_copy(owner, sam) for owner in [alice, bob] * 10]

    got = _race([sam, kim], lambda user: {c.pk for c in fulfillment.claim_next(user, limit=8, drive="D")})
    assert not got["sam"] & got["kim"]
    # Skipped, not waited for: between them they hold 16 of the 20, the oldest first.
    assert len(got["sam"]) + len(got["kim"]) == 16
    assert got["sam"] | got["kim"] == {c.pk for c in copies[:16]}
