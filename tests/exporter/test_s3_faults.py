"""The fault test: S3 refuses, times out or returns corrupt bytes for some
requests (a fault-injecting proxy between the app and moto).  Affected discs
retry or are flagged; none is verified with wrong bytes."""

import datetime as dt
import hashlib
import os

import pytest
import time_machine
from django.utils import timezone

from exporter import build, library, verify
from exporter.models import Disc, DiscEntry, DiscStatus, ItemIssue
from exporter.planning import plan_next_disc
from tests.factories import add_file
from tests.s3 import CORRUPT, REFUSE, TIME_OUT, Rule, tree

pytestmark = pytest.mark.django_db


def fill(owner, count, size=150_000):
    album = library.ensure_album_path(owner, ["Fault", "Line"])
    return [add_file(owner, f"IMG_{n:03d}.JPG", os.urandom(size), albums=[album]) for n in range(count)]


def stored_image_is_right(store, disc, folder) -> bool:
    """The image in the bucket, read straight from moto (not through the
    proxy), holds exactly the files the database says, and is the recorded image."""
    data = store.get(f"images/{disc.image_name}")
    path = folder / f"disc-{disc.pk}.iso"
    path.write_bytes(data)
    result = verify.verify_image(path, build.expected_files(disc))
    return result.ok and hashlib.sha256(data).hexdigest() == disc.image_sha256 == result.image_sha256


def key_of(item):
    return item.current_version.storage_name


def test_refused_timed_out_and_corrupt_transfers_are_retried(alice, s3, fault_proxy, settings, tmp_path):
    items = fill(alice, 4)
    disc = plan_next_disc(alice, allow_partial=True)
    fault_proxy.rules = [
        Rule(REFUSE, "GET", key_of(items[0])),
        Rule(TIME_OUT, "GET", key_of(items[1])),
        Rule(CORRUPT, "GET", key_of(items[2])),
        Rule(REFUSE, "PUT", "/images/"),  # a part of the image upload
        Rule(CORRUPT, "GET", "/images/"),  # the image's read-back
    ]

    built = build.build_disc(disc.pk)

    assert sorted(f for f, _, _ in fault_proxy.injected) == sorted([REFUSE, TIME_OUT, CORRUPT, REFUSE, CORRUPT])
    assert built.status == DiscStatus.VERIFIED, built.last_error
    assert not DiscEntry.objects.filter(disc=disc, held_back=True).exists()
    assert not ItemIssue.objects.exists()
    assert stored_image_is_right(s3, built, tmp_path)
    assert tree(settings.BUILD_DIR) == []


def test_a_corrupt_or_missing_object_holds_its_item_back_and_nothing_else(alice, s3, fault_proxy, tmp_path):
    items = fill(alice, 4)
    s3.client.delete_object(Bucket=s3.bucket, Key=key_of(items[3]))
    disc = plan_next_disc(alice, allow_partial=True)
    fault_proxy.rules = [Rule(CORRUPT, "GET", key_of(items[1]), times=-1)]

    built = build.build_disc(disc.pk)

    assert built.status == DiscStatus.VERIFIED, built.last_error
    held = dict(DiscEntry.objects.filter(disc=disc, held_back=True).values_list("item_id", "held_reason"))
    assert set(held) == {items[1].pk, items[3].pk}
    issues = dict(ItemIssue.objects.values_list("item_id", "kind"))
    assert issues == {items[1].pk: ItemIssue.Kind.CHECKSUM_MISMATCH, items[3].pk: ItemIssue.Kind.MISSING_OBJECT}
    # The disc carries the two good items, byte for byte, and not the others.
    assert stored_image_is_right(s3, built, tmp_path)
    on_disc = {p for p in build.expected_files(built) if p.startswith("data/") and not p.endswith(".xmp")}
    assert on_disc == {"data/Fault/Line/IMG_000.JPG", "data/Fault/Line/IMG_002.JPG"}


def test_storage_that_stays_down_fails_the_disc_which_is_built_later(alice, s3, fault_proxy, settings, tmp_path):
    fill(alice, 3)
    disc = plan_next_disc(alice, allow_partial=True)
    fault_proxy.rules = [Rule(REFUSE, times=-1)]

    failed = build.build_disc(disc.pk)

    assert failed.status == DiscStatus.FAILED
    assert "object storage failed" in failed.last_error
    assert failed.next_attempt_at > timezone.now()
    assert not failed.image_sha256  # nothing was written, nothing recorded
    assert not DiscEntry.objects.filter(disc=disc, held_back=True).exists()  # storage down is not the item's fault
    assert s3.keys("images/") == []
    assert tree(settings.BUILD_DIR) == []

    fault_proxy.rules = []
    with time_machine.travel(failed.next_attempt_at + dt.timedelta(seconds=1)):
        built = build.build_disc(disc.pk)
    assert built.status == DiscStatus.VERIFIED, built.last_error
    assert stored_image_is_right(s3, built, tmp_path)


def test_an_upload_that_keeps_reading_back_wrong_is_never_verified(alice, s3, fault_proxy, settings):
    fill(alice, 2)
    disc = plan_next_disc(alice, allow_partial=True)
    fault_proxy.rules = [Rule(CORRUPT, "GET", "/images/", times=-1)]

    failed = build.build_disc(disc.pk)

    assert failed.status == DiscStatus.FAILED
    assert "uploading the image to object storage failed 3 times" in failed.last_error
    assert "reads back" in failed.last_error
    assert not failed.copies.exists()  # no copy queued for staff
    assert build.image_path(failed).exists()  # the local image stays until a verified upload


def test_random_faults_never_verify_a_disc_with_wrong_bytes(alice, bob, s3, fault_proxy, settings, tmp_path):
    for owner in (alice, bob):
        fill(owner, 6, size=60_000)
        plan_next_disc(owner, allow_partial=True)
    fill(alice, 4, size=60_000)
    plan_next_disc(alice, allow_partial=True)
    fault_proxy.set_chaos(0.2, seed=4)  # one request in five, any of the three faults

    now = timezone.now()
    for _ in range(8):  # rounds of the scheduler, hours apart
        now += dt.timedelta(hours=7)
        with time_machine.travel(now):
            for disc in build.due_discs():
                build.build_disc(disc.pk)
        if not Disc.objects.exclude(status=DiscStatus.VERIFIED).exists():
            break

    assert len(fault_proxy.injected) >= 5  # the faults happened
    verified = list(Disc.objects.filter(status=DiscStatus.VERIFIED))
    assert verified  # and some discs still made it
    for disc in verified:
        assert stored_image_is_right(s3, disc, tmp_path)
    for disc in Disc.objects.exclude(status=DiscStatus.VERIFIED):
        assert disc.status == DiscStatus.FAILED and disc.last_error
    assert tree(settings.BUILD_DIR) == []
