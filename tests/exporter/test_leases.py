"""Leases on discs being built (exporter.build, exporter.workers): a worker
that dies leaves a lease that runs out, and another worker takes the disc
over and builds the same bytes; permanent failures wait for staff."""

import datetime as dt
import hashlib
import subprocess
import sys
import time

import pytest
import time_machine
from django.utils import timezone

from exporter import build, cleanup, library, workers
from exporter.errors import IllegalTransition
from exporter.models import Disc, DiscEvent, DiscStatus, WorkerHeartbeat
from exporter.planning import plan_next_disc
from tests.factories import add_file, jpeg_bytes

pytestmark = pytest.mark.django_db


def planned_disc(owner, files=2):
    album = library.ensure_album_path(owner, ["Trip"])
    for n in range(files):
        add_file(owner, f"IMG_{n}.jpg", jpeg_bytes(color=(n * 60 % 255, 20, 20)), albums=[album])
    return plan_next_disc(owner, allow_partial=True)


def dead_pid() -> int:
    """The pid of a process that has exited (as a killed worker's is)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def abandon(disc, status, *, expired=True, pid=None):
    """Leave the disc as a worker that died while holding it would."""
    holder = f"other-host:{pid or dead_pid()}:deadbeef"
    expires = timezone.now() + dt.timedelta(seconds=-1 if expired else 300)
    Disc.objects.filter(pk=disc.pk).update(status=status, leased_by=holder, lease_expires_at=expires)
    return holder


def test_a_claim_takes_a_lease_that_names_the_worker(alice):
    disc = build.claim_for_build(planned_disc(alice).pk)
    assert disc.status == DiscStatus.BUILDING
    assert disc.leased_by.startswith(workers.worker_id() + ":")
    assert disc.lease_expires_at > timezone.now() + dt.timedelta(seconds=200)
    assert build.claim_for_build(disc.pk) is None, "a live lease keeps other workers out"


def test_a_disc_whose_worker_died_while_building_is_rebuilt_to_the_same_bytes(alice):
    disc = build.build_disc(planned_disc(alice).pk)
    first = build.image_path(disc).read_bytes()
    # As if a second build had died half way: building, a stale lease.
    Disc.objects.filter(pk=disc.pk).update(image_sha256="", image_name="", verified_at=None)
    dead = dead_pid()
    holder = abandon(disc, DiscStatus.BUILDING, pid=dead)
    # What the dead worker left: its work folder and its half-written image.
    left_work = build.settings.BUILD_DIR / f"disc-{disc.pk}-{dead}-140000"
    left_work.mkdir(parents=True)
    left_image = build.image_path(disc).parent / f".disc-{disc.number:04d}.iso.partial-{dead}-140000"
    left_image.write_bytes(b"half an image")
    assert build.claim_for_build(disc.pk, now=timezone.now() - dt.timedelta(seconds=5)) is None, "not run out yet"

    again = build.build_disc(disc.pk)
    # The worker that takes a disc over clears what its dead holder left.
    assert not left_work.exists() and not left_image.exists()
    assert again.status == DiscStatus.VERIFIED
    assert build.image_path(again).read_bytes() == first
    assert again.image_sha256 == hashlib.sha256(first).hexdigest()
    takeover = DiscEvent.objects.filter(disc=disc, note__contains="ran out").get()
    assert holder in takeover.note and (takeover.from_status, takeover.to_status) == ("building", "building")
    assert (again.leased_by, again.lease_expires_at) == ("", None)


def test_a_disc_whose_worker_died_while_verifying_is_only_verified_again(alice):
    disc = build.build_disc(planned_disc(alice).pk)
    Disc.objects.filter(pk=disc.pk).update(verified_at=None)
    abandon(disc, DiscStatus.BUILT)
    disc.copies.all().delete()
    again = build.build_disc(disc.pk)
    assert again.status == DiscStatus.VERIFIED
    steps = list(DiscEvent.objects.filter(disc=disc).values_list("from_status", "to_status"))
    assert steps[-2:] == [("built", "built"), ("built", "verified")]
    assert DiscEvent.objects.filter(disc=disc, to_status="built", from_status="building").count() == 1
    assert again.copies.count() == 1, "its first copy is queued once"


def test_a_worker_that_lost_its_lease_cannot_record_its_image(alice):
    stalled = build.claim_for_build(planned_disc(alice).pk)
    # It stalled past its lease; another worker took the disc over.
    Disc.objects.filter(pk=stalled.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    taker = build.claim_for_build(stalled.pk)
    assert taker is not None and taker.leased_by != stalled.leased_by
    with pytest.raises(IllegalTransition, match="lease"):
        build.build_image(stalled)
    # Its failure is not recorded either: the disc is the taker's.
    build._fail(stalled, "too late")
    taker.refresh_from_db()
    assert (taker.status, taker.last_error) == (DiscStatus.BUILDING, "")
    assert build.build_image(taker).status == DiscStatus.VERIFIED


def test_too_many_attempts_make_a_failure_permanent_until_staff_retry(alice, settings, sam):
    settings.DISCSUB_MAX_BUILD_ATTEMPTS = 2
    disc = planned_disc(alice)
    for attempt in (1, 2):
        claimed = build.claim_for_build(disc.pk, now=timezone.now() + dt.timedelta(days=attempt))
        failed = build._fail(claimed, "the data disk is full")
    assert failed.failure_permanent and failed.next_attempt_at is None
    assert failed.last_error.startswith("gave up after 2 attempts")
    with time_machine.travel(timezone.now() + dt.timedelta(days=30)):
        assert build.claim_for_build(disc.pk) is None
        assert disc.pk not in build.due_discs().values_list("pk", flat=True)
    retried = build.retry_failed(disc.pk, sam)
    assert not retried.failure_permanent and retried.attempts == 0
    assert build.build_disc(disc.pk).status == DiscStatus.VERIFIED
    with pytest.raises(IllegalTransition, match="not failed"):
        build.retry_failed(disc.pk, sam)


def test_source_checks_that_keep_failing_are_permanent(alice, monkeypatch):
    from exporter.errors import SourceMismatch

    disc = planned_disc(alice)
    entry = disc.entries.first()

    def always_bad(*args, **kwargs):
        raise SourceMismatch({entry.item_id: "sha256 mismatch"})

    monkeypatch.setattr(build, "write_disc_image", always_bad)
    failed = build.build_disc(disc.pk)
    assert failed.status == DiscStatus.FAILED and failed.failure_permanent
    assert "kept failing" in failed.last_error


@pytest.mark.django_db(transaction=True)
def test_the_lease_is_renewed_while_the_worker_holds_it(alice, settings):
    settings.DISCSUB_LEASE_SECONDS = 1
    disc = build.claim_for_build(planned_disc(alice).pk)
    first = disc.lease_expires_at
    workers.beat("building", disc.pk)
    seen = WorkerHeartbeat.objects.get(worker=workers.worker_id()).seen_at
    with workers.LeaseKeeper(disc.pk, disc.leased_by):
        deadline = time.monotonic() + 10
        while Disc.objects.get(pk=disc.pk).lease_expires_at <= first:
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.05)
    beat = WorkerHeartbeat.objects.get(worker=workers.worker_id())
    assert (beat.task, beat.disc_id) == ("building", disc.pk) and beat.seen_at > seen


def test_leftovers_of_killed_workers_are_removed_and_live_ones_kept(alice, settings):
    disc = planned_disc(alice)
    other = planned_disc(alice)
    build_dir = settings.BUILD_DIR
    images = settings.IMAGES_DIR / str(alice.pk)
    images.mkdir(parents=True)
    dead = dead_pid()
    killed_work = build_dir / f"disc-{disc.pk}-{dead}-140000"
    (killed_work / "sources").mkdir(parents=True)
    (killed_work / "sources" / "photo.jpg").write_bytes(b"x" * 100)
    killed_image = images / f".disc-{disc.number:04d}.iso.partial-{dead}-140000"
    killed_image.write_bytes(b"half an image")
    # A worker on another machine holds a live lease on the other disc: its
    # partial image (in a shared images folder) stays, whatever the pid here.
    live_pid = dead_pid()
    abandon(other, DiscStatus.BUILDING, expired=False, pid=live_pid)
    live_image = images / f".disc-{other.number:04d}.iso.partial-{live_pid}-7"
    live_image.write_bytes(b"being written")
    # A process alive here (this one) is never cleaned up after.
    mine = build_dir / f"disc-{disc.pk}-{__import__('os').getpid()}-1"
    mine.mkdir()
    finished = images / f"disc-{disc.number:04d}.iso"
    finished.write_bytes(b"a finished image is not a leftover")

    removed = cleanup.clean_leftovers()
    assert sorted(removed) == sorted([killed_work, killed_image])
    assert not killed_work.exists() and not killed_image.exists()
    assert live_image.exists() and mine.exists() and finished.exists()
    assert cleanup.clean_leftovers() == []


def test_a_full_build_area_fails_the_build_cleanly_and_a_later_retry_works(alice, settings, small_filesystem):
    # The build area (PAR2 recovery data, staged sources) on a 2 MiB disk that
    # something else has nearly filled: a 1 MiB file's recovery data does not fit.
    mount, grow = small_filesystem
    settings.DISCSUB_PAR2_REDUNDANCY = {"cd": 10}  # PAR2 files are made in the build area
    filler = mount / "someone-elses.bin"
    filler.write_bytes(b"\0" * (2 * 1024 * 1024 - 64 * 1024))
    settings.BUILD_DIR = mount / "build"
    album = library.ensure_album_path(alice, ["Big"])
    add_file(alice, "large.bin", __import__("os").urandom(1024 * 1024), albums=[album])
    disc = plan_next_disc(alice, allow_partial=True)
    failed = build.build_disc(disc.pk)
    assert failed.status == DiscStatus.FAILED and not failed.failure_permanent
    assert failed.next_attempt_at is not None
    assert "space" in failed.last_error or "full" in failed.last_error, failed.last_error
    assert [p for p in mount.rglob("*") if p.is_file()] == [filler], "nothing is left in the build area"
    assert not list(settings.IMAGES_DIR.rglob("*.partial-*"))
    grow()
    with time_machine.travel(failed.next_attempt_at, tick=False):
        assert build.build_disc(disc.pk).status == DiscStatus.VERIFIED
