"""`make run`'s demo data leaves a living queue: copies at every step, each
with a history the event log reconstructs, and a staff login that gets in."""

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from exporter import build, fulfillment
from exporter.models import Disc, DiscCopy
from exporter.verify import verify_image
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
    # Every demo disc is real: its image verifies against the catalog, staff download it, and its
    # subscriber's disc and manifest pages work.
    for disc in Disc.objects.select_related("owner"):
        assert verify_image(build.image_path(disc), build.expected_files(disc)).ok
        download = client.get(reverse("staff:disc-image", args=[disc.pk]))
        assert download.status_code == 200
        assert b"".join(download.streaming_content)[32768 + 1 : 32768 + 6] == b"CD001"
    for disc in Disc.objects.exclude(owner__username="demo").select_related("owner"):
        subscriber = Client()
        subscriber.force_login(disc.owner)
        for name in ("disc", "manifest"):
            page = subscriber.get(reverse(name, args=[disc.public_id]))
            assert page.status_code == 200, (name, disc)
        assert f"IMG_{disc.number}00.JPG" in page.content.decode()
    # Loading twice changes nothing.
    call_command("load_demo")
    assert DiscCopy.objects.count() == 20
