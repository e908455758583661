"""The purge (exporter.purge): bytes stay through the hold and are gone after
it, on the filesystem and on a real S3 endpoint with versioning on; a kill
at each step and a storage error leave nothing claimed that is not true."""

import datetime as dt
import hashlib
import io

import pytest
from django.core.files.storage import default_storage

from exporter import deletion, library, purge, quotas, tasks, thumbnails
from exporter.library import LibraryError
from exporter.models import DiscStatus, JobRun, PurgeRecord, PurgeStatus
from exporter.planning import plan_next_disc
from tests.factories import add_file, jpeg_bytes
from tests.s3 import REFUSE, Rule

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


class Killed(BaseException):
    """Stands for the process dying: nothing in the purge catches it."""


def kill_at(step: str):
    def crash(reached: str) -> None:
        if reached == step:
            raise Killed(step)

    return crash


@pytest.fixture(autouse=True)
def hold_a_week(settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 7
    thumbnails._known.clear()
    yield
    thumbnails._known.clear()


def photo_with_history(owner, name="a.jpg"):
    """An item with two versions and a thumbnail for each: every kind of object the purge erases."""
    item = add_file(owner, name, jpeg_bytes(color=(10, 200, 10)))
    library.replace_bytes(item, io.BytesIO(jpeg_bytes(color=(200, 10, 10))))
    for version in item.versions.all():
        assert thumbnails.ensure_for_version(version) is not None
    return item


def stored_names(item) -> list[str]:
    names = [v.storage_name for v in item.versions.all()]
    names += [thumbnails.storage_name_for(str(item.public_id), v.number) for v in item.versions.all()]
    return names


def present(names) -> list[str]:
    return [n for n in names if default_storage.exists(n)]


def by_item(outcomes) -> dict[int, purge.Outcome]:
    return {o.item_id: o for o in outcomes}


def test_bytes_stay_through_the_hold_and_are_gone_after_it(alice):
    item = photo_with_history(alice)
    keep = photo_with_history(alice, "keep.jpg")
    names = stored_names(item)
    deletion.delete_now(item, now=T0)

    early = by_item(purge.run_purge(now=T0 + 7 * DAY - dt.timedelta(seconds=1)))
    assert early[item.pk].action == purge.WAITING and "in its hold until 2026-06-08 12:00" in early[item.pk].reason
    assert present(names) == names and not PurgeRecord.objects.exists()

    after = by_item(purge.run_purge(now=T0 + 7 * DAY))
    assert after[item.pk].action == purge.ERASED and keep.pk not in after
    assert present(names) == []
    assert present(stored_names(keep)) == stored_names(keep)
    item.refresh_from_db()
    assert item.erased_at == T0 + 7 * DAY and not deletion.is_recently_deleted(item)
    # The record outlives the bytes: each object's name, size and sha256.
    record = PurgeRecord.objects.get(item=item)
    assert record.status == PurgeStatus.ERASED and record.rule == "deleted 2026-06-01 12:00 UTC, held 7 days"
    originals = [o for o in record.stored if o["kind"] == "original"]
    assert [(o["size"], o["sha256"]) for o in originals] == [(v.size, v.sha256) for v in item.versions.all()]
    stored = [o for o in record.stored if o["size"] is not None]
    assert sorted(o["name"] for o in stored) == sorted(names)
    assert all(o["erased"] and o["versions"] == 1 for o in stored)
    with pytest.raises(LibraryError, match="erased"):
        deletion.undelete_item(item)
    # A doubled pass does nothing twice.
    assert item.pk not in by_item(purge.run_purge(now=T0 + 8 * DAY))
    assert PurgeRecord.objects.count() == 1


def test_with_a_hold_of_zero_days_the_next_pass_erases(alice, settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 0
    item = add_file(alice, "a.jpg")
    deletion.delete_now(item)
    assert tasks.purge() == {"erased": 1, "held": 0, "waiting": 0}
    assert not default_storage.exists(item.current_version.storage_name)
    assert "1 erased" in JobRun.objects.get(name=purge.JOB_NAME).note


def test_an_undone_deletion_is_never_erased(alice, settings):
    settings.DISCSUB_DELETE_HOLD_DAYS = 0
    item = add_file(alice, "a.jpg")
    deletion.delete_now(item, now=T0)
    deletion.undelete_item(item)
    deletion.trash_item(item)  # in the trash is not deleted either
    assert purge.run_purge(now=T0 + DAY) == []
    assert default_storage.exists(item.current_version.storage_name)


def test_erase_item_rechecks_under_its_own_lock(alice):
    # Selected while due, undone before its turn: erase_item looks again.
    item = add_file(alice, "a.jpg")
    deletion.delete_now(item, now=T0)
    deletion.undelete_item(item)
    outcome = purge.erase_item(item.pk, T0 + 30 * DAY)
    assert (outcome.action, outcome.reason) == (purge.WAITING, "no longer deleted")
    assert default_storage.exists(item.current_version.storage_name)


def test_the_purge_waits_for_every_disc_that_carries_the_item_to_be_built(alice):
    item = add_file(alice, "a.jpg")
    disc = plan_next_disc(alice, allow_partial=True)
    deletion.delete_now(item, now=T0)
    (outcome,) = purge.run_purge(now=T0 + 8 * DAY)
    assert (outcome.action, outcome.reason) == (purge.WAITING, "disc 1 carries it and is not built yet")
    disc.status = DiscStatus.VERIFIED
    disc.save(update_fields=["status"])
    (outcome,) = purge.run_purge(now=T0 + 8 * DAY)
    assert outcome.action == purge.ERASED


def test_a_dry_run_erases_nothing(alice):
    item = add_file(alice, "a.jpg")
    deletion.delete_now(item, now=T0)
    (outcome,) = purge.run_purge(now=T0 + 8 * DAY, dry_run=True)
    assert outcome.action == purge.ERASED and outcome.reason.startswith("dry run, would erase")
    assert default_storage.exists(item.current_version.storage_name)
    assert not PurgeRecord.objects.exists() and not JobRun.objects.filter(name=purge.JOB_NAME).exists()


def test_erased_bytes_leave_the_quota_and_the_storage_accounting(alice):
    item = add_file(alice, "a.jpg", b"x" * 5000)
    add_file(alice, "b.jpg", b"y" * 100)
    deletion.delete_now(item, now=T0)
    assert quotas.used_bytes(alice) == 5100 and deletion.storage_usage(alice).waiting_erasure == 5000
    purge.run_purge(now=T0 + 8 * DAY)
    usage = deletion.storage_usage(alice)
    assert quotas.used_bytes(alice) == usage.originals == 100 and usage.waiting_erasure == 0


@pytest.mark.parametrize("step", ["recorded", "object", "erased"])
def test_a_purge_killed_at_any_step_is_finished_by_the_next_pass(alice, step):
    item = photo_with_history(alice)
    names = stored_names(item)
    deletion.delete_now(item, now=T0)
    with pytest.raises(Killed):
        purge.run_purge(now=T0 + 8 * DAY, crash=kill_at(step))
    item.refresh_from_db()
    record = PurgeRecord.objects.get(item=item)
    # Never "erased" while bytes remain; the record says the erasure began.
    assert item.erased_at is None and record.status == PurgeStatus.ERASING
    assert len(present(names)) == {"recorded": 4, "object": 3, "erased": 0}[step]
    with pytest.raises(LibraryError, match="being erased"):
        deletion.undelete_item(item)

    (outcome,) = purge.run_purge(now=T0 + 9 * DAY)
    assert outcome.action == purge.ERASED
    item.refresh_from_db()
    record.refresh_from_db()
    assert present(names) == [] and item.erased_at == T0 + 9 * DAY
    assert (record.status, record.attempts, PurgeRecord.objects.count()) == (PurgeStatus.ERASED, 2, 1)
    assert all(o["erased"] for o in record.stored)


# --- on a real S3 endpoint (moto server) ----------------------------------------------


def versions_of(s3, key: str) -> list[str]:
    pages = s3.client.get_paginator("list_object_versions").paginate(Bucket=s3.bucket, Prefix=key)
    return [
        v["VersionId"] for p in pages for v in p.get("Versions", []) + p.get("DeleteMarkers", []) if v["Key"] == key
    ]


def versioned(s3) -> None:
    s3.client.put_bucket_versioning(Bucket=s3.bucket, VersioningConfiguration={"Status": "Enabled"})


def test_on_s3_every_stored_version_of_every_object_goes(alice, s3):
    versioned(s3)
    item = photo_with_history(alice)
    keep = add_file(alice, "keep.jpg")
    first = item.versions.get(number=1).storage_name
    # The bucket keeps what was overwritten and what was deleted: both must go.
    s3.client.put_object(Bucket=s3.bucket, Key=first, Body=b"an older copy")
    s3.client.put_object(Bucket=s3.bucket, Key=first, Body=s3.get(first))
    thumb = thumbnails.storage_name_for(str(item.public_id), 2)
    s3.client.delete_object(Bucket=s3.bucket, Key=thumb)
    assert len(versions_of(s3, first)) == 3 and len(versions_of(s3, thumb)) == 2
    deletion.delete_now(item, now=T0)

    (outcome,) = purge.run_purge(now=T0 + 6 * DAY)
    assert outcome.action == purge.WAITING and len(versions_of(s3, first)) == 3

    (outcome,) = purge.run_purge(now=T0 + 7 * DAY)
    assert outcome.action == purge.ERASED
    for name in stored_names(item):
        assert versions_of(s3, name) == [], name
    assert s3.keys() == sorted([keep.current_version.storage_name, *s3.keys("thumbnails/" + str(keep.public_id))])
    record = PurgeRecord.objects.get(item=item)
    assert {o["name"]: o["versions"] for o in record.stored}[first] == 3
    stored_first = next(o for o in record.stored if o["name"] == first)
    assert stored_first["sha256"] == hashlib.sha256(jpeg_bytes(color=(10, 200, 10))).hexdigest()


def test_a_storage_error_leaves_the_item_not_erased_and_says_what_failed(alice, s3, fault_proxy):
    versioned(s3)
    item = photo_with_history(alice)
    names = stored_names(item)
    deletion.delete_now(item, now=T0)
    fault_proxy.rules.append(Rule(REFUSE, method="DELETE", times=-1))

    (outcome,) = purge.run_purge(now=T0 + 8 * DAY)
    assert outcome.action == purge.WAITING and "erasure failed, tried again by the next pass" in outcome.reason
    record = PurgeRecord.objects.get(item=item)
    assert record.status == PurgeStatus.FAILED and record.error.startswith("original version 1: ")
    assert names[0] not in record.error  # storage names stay out of messages
    item.refresh_from_db()
    assert item.erased_at is None and deletion.storage_usage(item.owner).waiting_erasure > 0
    assert all(versions_of(s3, n) for n in names), "nothing was erased"

    fault_proxy.rules.clear()
    (outcome,) = purge.run_purge(now=T0 + 9 * DAY)
    assert outcome.action == purge.ERASED
    record.refresh_from_db()
    assert (record.status, record.error, record.attempts) == (PurgeStatus.ERASED, "", 2)
    assert all(versions_of(s3, n) == [] for n in names)
