"""`make run`'s demo data leaves a living queue: copies at every step, each
with a history the event log reconstructs, and a staff login that gets in."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from exporter import fulfillment
from exporter.models import DiscCopy
from tests.staff.conftest import EVERY_STATE

pytestmark = pytest.mark.django_db


def test_the_demo_queue_has_copies_at_every_step(capsys):
    call_command("load_demo", photos=2, videos=0)
    states = set(DiscCopy.objects.values_list("status", flat=True))
    assert states >= set(EVERY_STATE)
    for copy in DiscCopy.objects.all():
        assert fulfillment.history(copy)[-1] == copy.status
    client = Client()
    assert client.login(username="staff", password="staff-password")
    page = client.get(reverse("staff:step", args=["exceptions"])).content.decode()
    assert "Subscriber has no mailing address" in page and "Returned undeliverable: waiting for a new address" in page
    assert client.get(reverse("staff:dashboard")).status_code == 200
    # Loading twice changes nothing.
    call_command("load_demo")
    assert DiscCopy.objects.count() == 20
