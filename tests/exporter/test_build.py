import hashlib
import io
import os
import subprocess
import time

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command

from exporter import build, library, planning
from exporter.disc_tools import restore
from exporter.errors import ExportError
from exporter.media import Medium
from exporter.models import DiscEntry, DiscEvent, DiscStatus, ItemIssue
from exporter.planning import plan_next_disc
from tests.factories import add_file, jpeg_bytes
from tests.tools import require_tool

pytestmark = pytest.mark.django_db


def planned_disc(owner, files=3):
    album = library.ensure_album_path(owner, ["Holidays", "Été"])
    for n in range(files):
        add_file(owner, f"IMG_{n}.jpg", jpeg_bytes(color=(n * 40 % 255, 10, 10)), albums=[album])
    return plan_next_disc(owner, allow_partial=True)


# The restore.py that discs of each released layout carry.  Discs already shipped
# are rebuilt years later and must come out byte-identical (DESIGN §2.6): a change
# to the tool goes into a new layout version, and these files stay as they are.
RESTORE_PY_SHA256 = {
    1: "9ee41232e59db977ba3479fc865ae5b37437c71c318813248ad70ffafdc3ce6d",
    2: "541eb9308f6dc8a3ad61a3108a2447ea664aabdf2af0f796ab57d7f47b4aa97e",
    3: "8a0706eed15673d22ebba01a89c822cf9c5d98fed00a41088d19397670fb14de",
}
# And the repair.py that discs carry from layout 3 on.
REPAIR_PY_SHA256 = {
    3: "d246373cd9e1f66d1035684526c6ebd72cc0d27cc87e32cb88a27cdce2307bee",
}


def test_every_released_layout_carries_a_frozen_pinned_restore_tool():
    from exporter import contents

    assert set(contents.FROZEN_RESTORE_TOOLS) == set(RESTORE_PY_SHA256)
    for layout, sha256 in RESTORE_PY_SHA256.items():
        assert hashlib.sha256(contents.restore_tool(layout).read_bytes()).hexdigest() == sha256, layout
    # The current layout's frozen tool is restore.py as it is: an edit to
    # restore.py fails here until it goes into a new layout version.
    with open(restore.__file__, "rb") as fh:
        current = fh.read()
    assert contents.restore_tool(planning.LAYOUT_VERSION).read_bytes() == current, (
        "restore.py changed: freeze it as a new layout version (exporter.contents, planning.LAYOUT_VERSION)"
    )
    with pytest.raises(ExportError):
        contents.restore_tool(planning.LAYOUT_VERSION + 1)
    assert set(contents.FROZEN_REPAIR_TOOLS) == set(REPAIR_PY_SHA256)
    for layout, sha256 in REPAIR_PY_SHA256.items():
        assert hashlib.sha256(contents.FROZEN_REPAIR_TOOLS[layout].read_bytes()).hexdigest() == sha256, layout
    assert contents.FROZEN_REPAIR_TOOLS[planning.LAYOUT_VERSION].read_bytes() == contents.REPAIR_TOOL.read_bytes(), (
        "repair.py changed: freeze it as a new layout version (exporter.contents, planning.LAYOUT_VERSION)"
    )


def test_a_disc_carries_the_restore_tool_of_its_layout_version(alice, monkeypatch):
    monkeypatch.setattr(planning, "LAYOUT_VERSION", 1)
    old = build.build_disc(planned_disc(alice).pk)
    monkeypatch.undo()
    new = build.build_disc(planned_disc(alice).pk)
    assert (old.status, new.status) == (DiscStatus.VERIFIED, DiscStatus.VERIFIED)
    assert (old.layout_version, new.layout_version) == (1, planning.LAYOUT_VERSION) and planning.LAYOUT_VERSION > 1
    tools = {d.layout_version: restore.IsoImage(str(build.image_path(d))).read_small("restore.py") for d in (old, new)}
    assert hashlib.sha256(tools[1]).hexdigest() == RESTORE_PY_SHA256[1]
    with open(restore.__file__, "rb") as fh:
        assert tools[planning.LAYOUT_VERSION] == fh.read()


def test_a_planned_disc_is_built_verified_and_recorded(alice):
    disc = planned_disc(alice)
    built = build.build_disc(disc.pk)
    assert built.status == DiscStatus.VERIFIED
    path = build.image_path(built)
    data = path.read_bytes()
    assert built.image_size == len(data) == built.planned_sectors * 2048
    assert built.image_sha256 == hashlib.sha256(data).hexdigest()
    steps = list(DiscEvent.objects.filter(disc=disc).values_list("from_status", "to_status"))
    assert steps == [("", "planned"), ("planned", "building"), ("building", "built"), ("built", "verified")]
    # No temporary files are left next to the image.
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    # The verified image's first copy waits for staff to burn it.
    assert list(built.copies.values_list("reason", "status")) == [("first", "queued")]


def test_building_twice_does_nothing_the_second_time(alice):
    disc = planned_disc(alice)
    assert build.build_disc(disc.pk).status == DiscStatus.VERIFIED
    assert build.build_disc(disc.pk) is None
    assert DiscEvent.objects.filter(disc=disc, to_status=DiscStatus.BUILDING).count() == 1
    assert disc.copies.count() == 1


def test_an_image_opens_in_7z_with_the_original_names(alice, tmp_path):
    seven = require_tool("7z", "p7zip-full")
    disc = build.build_disc(planned_disc(alice).pk)
    out = subprocess.run([seven, "x", "-y", f"-o{tmp_path / 'x'}", str(build.image_path(disc))], capture_output=True)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "x" / "data" / "Holidays" / "Été" / "IMG_0.jpg").exists()
    assert (tmp_path / "x" / "manifest.json").exists()


def test_a_source_checksum_mismatch_holds_the_item_back_and_flags_it(alice):
    disc = planned_disc(alice)
    bad = DiscEntry.objects.filter(disc=disc).order_by("id").first()
    with default_storage.open(bad.version.storage_name, "wb") as fh:  # silent corruption in storage
        fh.write(b"rotten bytes")
    built = build.build_disc(disc.pk)
    assert built.status == DiscStatus.VERIFIED
    bad.refresh_from_db()
    assert bad.held_back and "did not match the checksum recorded when it was uploaded" in bad.held_reason
    issue = ItemIssue.objects.get(item=bad.item)
    assert issue.kind == ItemIssue.Kind.CHECKSUM_MISMATCH
    # The other items are on the disc; the bad one is not.
    on_disc = set(build.expected_files(built))
    assert bad.paths[0] not in on_disc and bad.paths[0] + ".xmp" not in on_disc
    assert len([p for p in on_disc if p.startswith("data/") and not p.endswith(".xmp")]) == 2
    # It ships again once its bytes are replaced.
    library.replace_bytes(bad.item, io.BytesIO(b"good bytes"))
    again = plan_next_disc(alice, allow_partial=True)
    assert DiscEntry.objects.get(disc=again).item == bad.item


def test_a_missing_storage_object_holds_the_item_back(alice):
    disc = planned_disc(alice, files=2)
    gone = DiscEntry.objects.filter(disc=disc).order_by("id").first()
    default_storage.delete(gone.version.storage_name)
    built = build.build_disc(disc.pk)
    assert built.status == DiscStatus.VERIFIED
    gone.refresh_from_db()
    assert gone.held_back
    assert ItemIssue.objects.filter(item=gone.item).exists()


def test_the_same_disc_always_builds_to_the_same_bytes(alice, tmp_path, monkeypatch):
    disc = build.build_disc(planned_disc(alice).pk)
    first = build.image_path(disc).read_bytes()
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        with time_machine.travel("2031-02-03 04:05:06+00:00", tick=False):
            call_command("rebuild_disc", disc.pk, to=str(tmp_path / "again.iso"))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert (tmp_path / "again.iso").read_bytes() == first


def test_rebuild_refuses_an_image_that_differs(alice, tmp_path):
    disc = build.build_disc(planned_disc(alice).pk)
    type(disc).objects.filter(pk=disc.pk).update(image_sha256="0" * 64)
    with pytest.raises(CommandError, match="differs"):
        call_command("rebuild_disc", disc.pk, to=str(tmp_path / "again.iso"))


def test_a_cd_sized_medium_is_respected(alice):
    disc = planned_disc(alice, files=1)
    assert disc.medium == Medium.CD
    assert build.build_disc(disc.pk).image_size <= disc.capacity_sectors * 2048


def test_a_full_data_disk_fails_the_build_cleanly_and_a_later_retry_works(alice, settings, small_filesystem):
    mount, grow = small_filesystem
    settings.IMAGES_DIR = mount
    album = library.ensure_album_path(alice, ["Big"])
    add_file(alice, "large.bin", os.urandom(3 * 1024 * 1024), albums=[album])
    disc = plan_next_disc(alice, allow_partial=True)
    failed = build.build_disc(disc.pk)
    assert failed.status == DiscStatus.FAILED
    assert "full" in failed.last_error
    # Staff pages show the reason: no path of this machine in it, nor in the event.
    notes = " ".join(DiscEvent.objects.filter(disc=disc).values_list("note", flat=True))
    assert str(mount) not in failed.last_error and str(mount) not in notes
    assert "/" not in failed.last_error, failed.last_error
    assert failed.next_attempt_at is not None
    # No half image, no temporary file, nothing else changed.
    assert [p for p in mount.rglob("*") if p.is_file()] == []
    assert not DiscEntry.objects.filter(disc=disc, held_back=True).exists()
    # Not due yet: a retry right away does nothing.
    assert build.build_disc(disc.pk) is None
    grow()
    with time_machine.travel(failed.next_attempt_at, tick=False):
        retried = build.build_disc(disc.pk)
    assert retried.status == DiscStatus.VERIFIED
    assert retried.attempts == 2


def test_a_failed_build_tells_staff_why_without_naming_paths_of_this_machine(alice, settings, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    settings.IMAGES_DIR = blocker / "images"
    disc = planned_disc(alice)
    with pytest.raises(NotADirectoryError):  # an unexpected error: recorded, then raised for the task's retry
        build.build_disc(disc.pk)
    failed = type(disc).objects.get(pk=disc.pk)
    assert failed.status == DiscStatus.FAILED
    assert "Not a directory" in failed.last_error
    notes = " ".join(DiscEvent.objects.filter(disc=failed).values_list("note", flat=True))
    assert str(tmp_path) not in failed.last_error + notes
    assert "(a path)" in failed.last_error


def test_a_disc_its_own_restore_tool_would_refuse_is_not_built(alice):
    # An item 101 albums deep (the library refuses that now; an older library
    # holds it): its disc's manifest.json is one restore.py refuses.
    from exporter.models import Album

    parent = None
    for n in range(restore.MAX_ALBUM_DEPTH + 1):
        parent = Album.objects.create(owner=alice, parent=parent, name=f"{n}")
    item = add_file(alice, "deep.jpg", jpeg_bytes())
    item.albums.add(parent)
    disc = plan_next_disc(alice, allow_partial=True)
    built = build.build_disc(disc.pk)
    assert built.status == DiscStatus.FAILED and built.failure_permanent
    assert "does not pass the check of the disc's own restore.py" in built.last_error
    assert "expected a list of at most 100" in built.last_error
    assert not build.image_path(built).exists()
