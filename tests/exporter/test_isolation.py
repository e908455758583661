"""One bad item never stops the scheduler (exporter.failures, exporter.scheduling):
the others are planned and built, dead workers' discs are taken over, the
failure is recorded with a reason people can read (export_status, the staff
dashboard), and an item that keeps failing is held back while the rest of
its library goes out."""

import datetime as dt
import io
import json
import os
import struct
import warnings

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse
from PIL import Image, ImageOps

from exporter import build, deletion, scheduling, status, thumbnails
from exporter.held_back import reason_for_people
from exporter.models import (
    Change,
    Disc,
    DiscEntry,
    DiscStatus,
    ExportCursor,
    ExportFailure,
    ItemIssue,
    JobRun,
    Resolution,
    Subscription,
    SubscriptionStatus,
)
from tests.conftest import address
from tests.exporter.test_scheduling import build_queue  # noqa: F401  (the fixture)
from tests.factories import add_file, jpeg_bytes
from tests.s3 import _free_port

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)


def exif_orientation_struct_error_jpeg() -> bytes:
    """A real 700-byte JPEG that makes Pillow's ``ImageOps.exif_transpose``
    raise ``struct.error``: it is rotated (orientation 6), and its resolution
    unit, a SHORT by the EXIF standard, is stored as a LONG of 70000, which
    Pillow cannot write back when it drops the orientation."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x0128] = 2  # ResolutionUnit
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (200, 80, 40)).save(out, "JPEG", exif=exif)
    data = bytearray(out.getvalue())
    tiff = data.find(b"Exif\x00\x00") + 6
    order = "<" if data[tiff : tiff + 2] == b"II" else ">"
    ifd = tiff + struct.unpack_from(order + "I", data, tiff + 4)[0]
    for n in range(struct.unpack_from(order + "H", data, ifd)[0]):
        entry = ifd + 2 + 12 * n
        if struct.unpack_from(order + "H", data, entry)[0] == 0x0128:
            struct.pack_into(order + "HHII", data, entry, 0x0128, 4, 1, 70_000)  # type LONG, count 1
    return bytes(data)


@pytest.fixture
def carol(django_user_model):
    """A third subscriber."""
    user = django_user_model.objects.create_user("carol", "carol@example.com", "carol-password-1")
    Subscription.objects.create(user=user, medium="cd", **address("Carol Cole", "1 Mill Lane", "Leeds", "GB"))
    return user


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def due_now(*users, when=T0):
    Subscription.objects.filter(user__in=users).update(ship_now_requested_at=when)


def carried_names(user) -> set[str]:
    return set(
        DiscEntry.objects.filter(disc__owner=user, held_back=False).values_list("version__original_name", flat=True)
    )


def pending_of(item) -> int:
    return Change.objects.filter(item=item, resolution=Resolution.PENDING).count()


def unreadable_object(item) -> None:
    """The stored original becomes something no read succeeds on (a folder
    where the file was): the kind of storage fault that raises, not a wrong byte."""
    path = default_storage.path(item.current_version.storage_name)
    default_storage.delete(item.current_version.storage_name)
    os.mkdir(path)


@pytest.mark.usefixtures("build_queue")
def test_a_photo_that_makes_pillow_raise_stops_nobody_else_and_a_dead_workers_disc_is_taken_over(
    alice, bob, carol, clock
):
    bad_bytes = exif_orientation_struct_error_jpeg()
    with warnings.catch_warnings(), pytest.raises(struct.error):  # a real bad file, not a stand-in
        warnings.simplefilter("ignore")
        ImageOps.exif_transpose(Image.open(io.BytesIO(bad_bytes)))
    # Carol's first disc was being built by a worker that was killed: its lease has run out.
    add_file(carol, "carol-1.jpg", jpeg_bytes(color=(7, 8, 9)))
    due_now(carol, when=T0 - dt.timedelta(hours=1))
    scheduling.run_due(T0 - dt.timedelta(hours=1), queue_builds=False)
    (abandoned,) = Disc.objects.filter(owner=carol)
    bad = add_file(alice, "rotated.jpg", bad_bytes)
    add_file(alice, "fine.jpg", jpeg_bytes(color=(1, 2, 3)))
    add_file(bob, "bob.jpg", jpeg_bytes(color=(4, 5, 6)))
    Disc.objects.filter(pk=abandoned.pk).update(
        status=DiscStatus.BUILDING, leased_by="killed:1:x", lease_expires_at=T0 - dt.timedelta(minutes=1)
    )
    add_file(carol, "carol-2.jpg", jpeg_bytes(color=(10, 11, 12)))
    due_now(alice, bob, carol)

    run = scheduling.run_due(T0)

    assert run.finished_at is not None
    planned = {d.owner.username: d for d in Disc.objects.filter(planned_at=T0)}
    assert set(planned) == {"alice", "bob", "carol"}
    # Every disc due is queued in the same pass, the dead worker's among them.
    queued = [d.pk for d in Disc.objects.filter(queued_at=T0)]
    assert set(queued) == {abandoned.pk, *(d.pk for d in planned.values())}
    assert run.builds_queued == 4
    for disc_id in queued:  # what the build workers do with the tasks
        assert build.build_disc(disc_id).status == DiscStatus.VERIFIED
    assert "fine.jpg" in carried_names(alice)
    assert carried_names(carol) == {"carol-1.jpg", "carol-2.jpg"}
    # The bad photo is never lost: either it went out with the placeholder
    # (if thumbnails call it unthumbnailable) or it waits, its failure recorded.
    if "rotated.jpg" not in carried_names(alice):
        assert pending_of(bad) == 1
        failure = ExportFailure.objects.get(item=bad, resolved_at__isnull=True)
        assert (failure.error, failure.failures) == ("struct.error", 1)
        assert "65535" in failure.message
        assert "1 items could not be read" in run.note


def test_an_item_that_keeps_failing_is_recorded_then_held_back_and_the_rest_goes_out(
    alice, bob, clock, client, sam, settings
):
    settings.DISCSUB_ITEM_MAX_FAILURES = 3
    good = add_file(alice, "good.jpg", jpeg_bytes(color=(1, 2, 3)))
    broken = add_file(alice, "broken.jpg", jpeg_bytes(color=(3, 2, 1)))
    unreadable_object(broken)
    add_file(bob, "bob.jpg", jpeg_bytes(color=(4, 5, 6)))
    due_now(alice, bob)

    first = scheduling.run_due(T0, queue_builds=False)

    # Its first failure already holds nothing else up.
    assert carried_names(alice) == {"good.jpg"} and carried_names(bob) == {"bob.jpg"}
    assert pending_of(good) == 0 and pending_of(broken) == 1
    failure = ExportFailure.objects.get(item=broken)
    assert (failure.stage, failure.error, failure.message, failure.failures) == (
        "reading",
        "IsADirectoryError",
        "Is a directory",
        1,
    )
    assert "1 items could not be read" in first.note
    (row,) = status.export_failures()
    assert (row["username"], row["item_name"], row["held_back"]) == ("alice", "broken.jpg", False)

    for n in (1, 2, 3):
        due_now(alice, when=T0 + dt.timedelta(days=n))
        scheduling.run_due(T0 + dt.timedelta(days=n), queue_builds=False)
    failure.refresh_from_db()
    # Held back at its third failure, and not read again after.
    assert (failure.failures, failure.held_back_at) == (3, T0 + dt.timedelta(days=2))
    issue = ItemIssue.objects.get(item=broken, resolved_at__isnull=True)
    assert issue.kind == ItemIssue.Kind.UNREADABLE and issue.version == broken.current_version
    assert "3 times in a row" in issue.message and "IsADirectoryError: Is a directory" in issue.message
    assert pending_of(broken) == 1, "its change waits: nothing lost, nothing sent twice"

    # Staff see it: export_status (text and JSON) and the dashboard, with no storage path.
    call_command("export_status", stdout=(text := io.StringIO()))
    line = next(line for line in text.getvalue().splitlines() if "broken.jpg" in line)
    assert "alice" in line and "3 times in a row" in line and "held back" in line
    assert "IsADirectoryError: Is a directory" in line
    call_command("export_status", "--json", stdout=(out := io.StringIO()))
    (row,) = json.loads(out.getvalue())["export_failures"]
    assert (row["item_id"], row["failures"], row["held_back"], row["error"]) == (
        broken.pk,
        3,
        True,
        "IsADirectoryError",
    )
    client.force_login(sam)
    page = client.get(reverse("staff:dashboard")).content.decode()
    assert "Export failures" in page and "broken.jpg" in page and "IsADirectoryError: Is a directory" in page
    for shown in (text.getvalue(), out.getvalue(), page):
        assert str(settings.MEDIA_ROOT) not in shown and broken.current_version.storage_name not in shown

    # Trashing it takes it out of the way: its changes are absorbed, the record closed.
    deletion.trash_item(broken)
    due_now(alice, when=T0 + dt.timedelta(days=4))
    scheduling.run_due(T0 + dt.timedelta(days=4), queue_builds=False)
    assert pending_of(broken) == 0
    assert not ExportFailure.objects.filter(resolved_at__isnull=True).exists()
    assert status.export_failures() == []
    # The disc with the rest is built and verified.
    (disc,) = Disc.objects.filter(owner=alice)
    assert build.build_disc(disc.pk).status == DiscStatus.VERIFIED


def test_a_failure_that_clears_closes_its_record_and_the_item_goes_out(alice, clock):
    item = add_file(alice, "flaky.jpg", jpeg_bytes())
    name = item.current_version.storage_name
    data = default_storage.open(name).read()
    unreadable_object(item)
    due_now(alice)
    scheduling.run_due(T0, queue_builds=False)
    assert ExportFailure.objects.get(item=item).failures == 1 and not Disc.objects.exists()
    # Storage is readable again.
    os.rmdir(default_storage.path(name))
    default_storage.save(name, io.BytesIO(data))
    due_now(alice, when=T0 + dt.timedelta(days=1))
    scheduling.run_due(T0 + dt.timedelta(days=1), queue_builds=False)
    assert carried_names(alice) == {"flaky.jpg"}
    failure = ExportFailure.objects.get(item=item)
    assert failure.resolved_at == T0 + dt.timedelta(days=1) and failure.resolution


def test_a_pass_that_raises_is_rolled_back_whole_recorded_and_retried_after_a_backoff(alice, bob, clock, settings):
    item = add_file(alice, "moved.jpg", jpeg_bytes())
    thumbnails.ensure_for_version(item.current_version)
    version = item.current_version
    good_name = version.storage_name
    # A row that points outside the storage: the planner's measuring refuses it.
    type(version).objects.filter(pk=version.pk).update(storage_name="../../outside/moved.jpg")
    add_file(bob, "bob.jpg", jpeg_bytes())
    Subscription.objects.filter(user__in=[alice, bob]).update(next_run_at=T0)
    cursor_before = ExportCursor.objects.filter(owner=alice).values_list("position", "discs_planned").first()

    run = scheduling.run_due(T0, queue_builds=False)

    assert run.finished_at is not None and carried_names(bob) == {"bob.jpg"}
    # Alice's pass is rolled back whole: no disc, no change resolved, the schedule not moved.
    assert not Disc.objects.filter(owner=alice).exists()
    assert pending_of(item) == 1
    assert Subscription.objects.get(user=alice).next_run_at == T0
    assert ExportCursor.objects.filter(owner=alice).values_list("position", "discs_planned").first() == cursor_before
    failure = ExportFailure.objects.get(owner=alice)
    assert (failure.item, failure.stage, failure.failures) == (None, "planning", 1)
    assert failure.error == "django.core.exceptions.SuspiciousFileOperation"
    assert "moved.jpg" not in failure.message and str(settings.MEDIA_ROOT) not in failure.message
    assert failure.message.startswith("The joined path ((a path)) is located outside of the base path")
    assert failure.retry_at == T0 + dt.timedelta(minutes=2)
    assert "1 subscribers failed and were rolled back" in run.note
    (row,) = status.export_failures()
    assert (row["item_id"], row["retry_at"]) == (None, failure.retry_at)

    # Not tried again before its backoff is over; then it is, and goes through.
    soon = scheduling.run_due(T0 + dt.timedelta(minutes=1), queue_builds=False)
    assert "1 subscribers wait to retry a failed pass" in soon.note
    assert ExportFailure.objects.get(owner=alice).failures == 1
    type(version).objects.filter(pk=version.pk).update(storage_name=good_name)
    scheduling.run_due(T0 + dt.timedelta(minutes=3), queue_builds=False)
    assert carried_names(alice) == {"moved.jpg"}
    assert ExportFailure.objects.get(owner=alice).resolved_at == T0 + dt.timedelta(minutes=3)
    assert JobRun.objects.filter(finished_at__isnull=True).count() == 0


def test_a_build_that_cannot_read_an_item_holds_it_back_and_makes_the_disc_of_the_rest(alice, clock):
    keep = add_file(alice, "keep.jpg", jpeg_bytes(color=(1, 2, 3)))
    lost = add_file(alice, "lost.jpg", jpeg_bytes(color=(3, 2, 1)))
    due_now(alice)
    scheduling.run_due(T0, queue_builds=False)
    (disc,) = Disc.objects.filter(owner=alice)
    unreadable_object(lost)  # after planning: the build is the first to meet it

    built = build.build_disc(disc.pk)

    assert built.status == DiscStatus.VERIFIED
    assert carried_names(alice) == {"keep.jpg"}
    entry = DiscEntry.objects.get(disc=disc, item=lost)
    assert entry.held_back and entry.held_reason == reason_for_people(ItemIssue.Kind.UNREADABLE)
    assert ItemIssue.objects.get(item=lost).kind == ItemIssue.Kind.UNREADABLE
    assert not ItemIssue.objects.filter(item=keep).exists()


def test_storage_that_is_down_holds_back_no_item_the_pass_backs_off_and_goes_out_later(alice, s3, clock):
    good = add_file(alice, "good.jpg", jpeg_bytes(color=(1, 2, 3)))
    # Object storage goes away: every request to it is refused (nothing listens there).
    s3.use(f"http://127.0.0.1:{_free_port()}")
    due_now(alice)

    for n in range(3):
        when = T0 + dt.timedelta(minutes=10 * n)
        run = scheduling.run_due(when, queue_builds=False)
        assert "1 subscribers failed and were rolled back" in run.note

    # Nobody's item is counted or held back: it is the subscriber's pass that failed.
    assert not ExportFailure.objects.filter(version__isnull=False).exists()
    assert not ItemIssue.objects.exists()
    failure = ExportFailure.objects.get(owner=alice, version__isnull=True)
    assert (failure.failures, failure.error) == (3, "botocore.exceptions.EndpointConnectionError")
    assert pending_of(good) == 1 and not Disc.objects.exists()

    s3.use()  # storage is back
    later = T0 + dt.timedelta(hours=1)
    scheduling.run_due(later, queue_builds=False)
    assert carried_names(alice) == {"good.jpg"}
    failure.refresh_from_db()
    assert failure.resolved_at == later


def test_a_decoder_that_cannot_start_holds_back_no_item(alice, clock, monkeypatch):
    item = add_file(alice, "fine.jpg", jpeg_bytes())
    thumbnails.decoder().stop()
    monkeypatch.setattr("sys.executable", "/nonexistent/python3")  # Popen itself fails, as with EAGAIN
    due_now(alice)

    scheduling.run_due(T0, queue_builds=False)

    assert not ExportFailure.objects.filter(version__isnull=False).exists()
    assert ExportFailure.objects.get(owner=alice).error == "exporter.thumbnail_decoder.DecoderUnavailable"
    assert pending_of(item) == 1 and not ItemIssue.objects.exists()


def test_quick_failures_hold_nothing_back_until_they_span_the_minimum_time(alice, clock, settings):
    settings.DISCSUB_ITEM_MAX_FAILURES = 3
    settings.DISCSUB_ITEM_HOLD_AFTER_MINUTES = 60
    broken = add_file(alice, "broken.jpg", jpeg_bytes())
    unreadable_object(broken)
    for minutes in (0, 1, 2, 30):
        due_now(alice, when=T0 + dt.timedelta(minutes=minutes))
        scheduling.run_due(T0 + dt.timedelta(minutes=minutes), queue_builds=False)
    failure = ExportFailure.objects.get(item=broken)
    assert (failure.failures, failure.held_back_at) == (4, None)
    assert not ItemIssue.objects.exists()

    due_now(alice, when=T0 + dt.timedelta(minutes=60))
    scheduling.run_due(T0 + dt.timedelta(minutes=60), queue_builds=False)
    failure.refresh_from_db()
    assert (failure.failures, failure.held_back_at) == (5, T0 + dt.timedelta(minutes=60))
    assert ItemIssue.objects.get(item=broken).kind == ItemIssue.Kind.UNREADABLE


@pytest.mark.parametrize("stops", ["paused", "cancelled and done"])
def test_a_failed_pass_is_closed_when_the_subscription_stops_being_due(alice, clock, stops):
    item = add_file(alice, "moved.jpg", jpeg_bytes())
    thumbnails.ensure_for_version(item.current_version)
    type(item.current_version).objects.filter(pk=item.current_version.pk).update(storage_name="../../outside/x.jpg")
    due_now(alice)
    scheduling.run_due(T0, queue_builds=False)
    failure = ExportFailure.objects.get(owner=alice, version__isnull=True, resolved_at__isnull=True)

    if stops == "paused":
        Subscription.objects.filter(user=alice).update(status=SubscriptionStatus.PAUSED)
    else:
        Subscription.objects.filter(user=alice).update(status=SubscriptionStatus.CANCELLED, final_disc_planned_at=T0)
    later = T0 + dt.timedelta(hours=1)
    scheduling.run_due(later, queue_builds=False)

    failure.refresh_from_db()
    assert failure.resolved_at == later and failure.resolution == "the subscription is no longer due"
    assert status.export_failures() == []


def test_a_path_saying_missing_does_not_make_an_unreadable_item_a_missing_one(alice, clock, settings):
    # This test's data folder is named after it, so a reason that quotes a
    # path says "missing": the kind must come from what failed, not from words.
    assert "missing" in str(settings.MEDIA_ROOT)
    add_file(alice, "keep.jpg", jpeg_bytes(color=(1, 2, 3)))
    looped = add_file(alice, "looped.jpg", jpeg_bytes(color=(3, 2, 1)))
    due_now(alice)
    scheduling.run_due(T0, queue_builds=False)
    (disc,) = Disc.objects.filter(owner=alice)
    path = default_storage.path(looped.current_version.storage_name)
    os.unlink(path)
    os.symlink(path, path)  # a link to itself: every open or stat fails with ELOOP, naming the path

    built = build.build_disc(disc.pk)

    assert built.status == DiscStatus.VERIFIED and carried_names(alice) == {"keep.jpg"}
    assert ItemIssue.objects.get(item=looped).kind == ItemIssue.Kind.UNREADABLE
