"""manage.py import_media is idempotent and resumable, refuses what the
portal refuses and links that leave the tree, and reports instead of
stopping (issue #12, finding 9)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from exporter import import_tree
from exporter.models import Change, MediaItem
from tests.factories import jpeg_bytes

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("import_media", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def names(user) -> list[str]:
    return sorted(MediaItem.objects.filter(owner=user).values_list("original_name", flat=True))


def albums_of(user, name: str) -> list[list[str]]:
    return sorted(a.path() for a in MediaItem.objects.get(owner=user, original_name=name).albums.all())


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "photos"
    (root / "Trips" / "Rome").mkdir(parents=True)
    (root / "Trips" / "Rome" / "colosseum.jpg").write_bytes(jpeg_bytes(color=(200, 10, 10)))
    (root / "Trips" / "pier.jpg").write_bytes(jpeg_bytes(color=(10, 200, 10)))
    (root / "cat.jpg").write_bytes(jpeg_bytes(color=(10, 10, 200)))
    return root


def test_a_broken_symlink_is_reported_and_the_rest_imported(alice, tree):
    (tree / "Trips" / "gone.jpg").symlink_to(tree / "nowhere.jpg")
    out = run("alice", str(tree))
    assert names(alice) == ["cat.jpg", "colosseum.jpg", "pier.jpg"]
    assert "imported 3 files" in out
    assert f"{tree / 'Trips' / 'gone.jpg'}: a broken symbolic link" in out


def test_a_second_run_imports_nothing_again(alice, tree):
    run("alice", str(tree))
    changes = Change.objects.count()
    (tree / "Trips" / "new.jpg").write_bytes(jpeg_bytes(color=(1, 1, 1)))
    out = run("alice", str(tree))
    assert "imported 1 files" in out and "skipped 3 already in the library" in out
    assert names(alice) == ["cat.jpg", "colosseum.jpg", "new.jpg", "pier.jpg"]
    assert Change.objects.count() == changes + 1


def test_a_run_cut_short_is_finished_by_running_it_again(alice, tree):
    walked = import_tree.walk([tree])
    # The first run stopped after its first file (a killed process, a full disk).
    assert import_tree.import_file(alice, walked.candidates[0])[0] == import_tree.IMPORTED
    out = run("alice", str(tree))
    assert "imported 2 files" in out and "skipped 1 already" in out
    assert names(alice) == ["cat.jpg", "colosseum.jpg", "pier.jpg"]


def test_same_bytes_in_another_album_are_one_item_in_both(alice, tree):
    (tree / "Best").mkdir()
    (tree / "Best" / "colosseum again.jpg").write_bytes((tree / "Trips" / "Rome" / "colosseum.jpg").read_bytes())
    (tree / "Trips" / "Rome" / "colosseum copy.jpg").write_bytes(
        (tree / "Trips" / "Rome" / "colosseum.jpg").read_bytes()
    )
    out = run("alice", str(tree))
    # Best/ comes first: its file is the item, which then joins Trips/Rome.
    assert names(alice) == ["cat.jpg", "colosseum again.jpg", "pier.jpg"]
    assert albums_of(alice, "colosseum again.jpg") == [["Best"], ["Trips", "Rome"]]
    assert "added 1 files already in the library to another album" in out
    assert "skipped 1 already in the library" in out  # the second copy in Trips/Rome
    again = run("alice", str(tree))
    assert "imported 0 files" in again and "skipped 5 already in the library" in again
    assert len(names(alice)) == 3


def test_a_file_link_out_of_the_tree_is_refused_and_said(alice, tree, tmp_path):
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(jpeg_bytes(color=(5, 5, 5)))
    (tree / "leak.jpg").symlink_to(outside)
    (tree / "hostname").symlink_to("/etc/hostname")
    out = run("alice", str(tree))
    assert "leak.jpg" not in names(alice) and "hostname" not in names(alice)
    assert f"{tree / 'leak.jpg'}: a symbolic link that leads out of the folder being imported (to {outside})" in out
    assert f"{tree / 'hostname'}: a symbolic link that leads out" in out


def test_links_inside_the_tree_are_followed(alice, tree):
    (tree / "favourite.jpg").symlink_to(tree / "Trips" / "pier.jpg")
    (tree / "Rome again").symlink_to(tree / "Trips" / "Rome")  # walked already: reported
    (tree / "Trips" / "Rome" / "up").symlink_to(tree)  # a loop
    (tree / "Elsewhere").mkdir()
    (tree / "Elsewhere" / "dog.jpg").write_bytes(jpeg_bytes(color=(7, 7, 7)))
    (tree / "Trips" / "Dogs").symlink_to(tree / "Elsewhere")  # a link met before its target
    out = run("alice", str(tree))
    assert names(alice) == ["cat.jpg", "colosseum.jpg", "dog.jpg", "pier.jpg"]
    assert albums_of(alice, "pier.jpg") == [["Trips"]]  # the link's top-level spot has no album
    assert albums_of(alice, "dog.jpg") == [["Elsewhere"]]
    assert f"{tree / 'Rome again'}: a link to a folder imported already (as Trips/Rome)" in out
    assert f"{tree / 'Trips' / 'Rome' / 'up'}: a link to a folder imported already (as the top folder)" in out
    assert f"{tree / 'Trips' / 'Dogs'}: a link to a folder imported already (as Elsewhere)" in out


def test_a_folder_link_walked_first_becomes_its_album(alice, tmp_path):
    root = tmp_path / "only links"
    root.mkdir()
    real = root / ".hidden"
    real.mkdir()
    (real / "owl.jpg").write_bytes(jpeg_bytes(color=(3, 3, 3)))
    (root / "Birds").symlink_to(real)
    (tmp_path / "outside").mkdir()
    (root / "Out").symlink_to(tmp_path / "outside")
    out = run("alice", str(root))
    assert albums_of(alice, "owl.jpg") == [[".hidden"]]
    assert f"{root / 'Birds'}: a link to a folder imported already (as .hidden)" in out
    assert f"{root / 'Out'}: a symbolic link that leads out of the folder being imported" in out


def test_what_the_portal_refuses_is_refused(alice, tree, settings):
    settings.DISCSUB_UPLOAD_MAX_BYTES = 50_000
    (tree / "empty.jpg").write_bytes(b"")
    (tree / "notes.jpg").write_text("not a photo at all")
    (tree / "huge.jpg").write_bytes(jpeg_bytes() + b"\0" * 60_000)
    os.mkfifo(tree / "pipe.jpg")
    out = run("alice", str(tree))
    assert names(alice) == ["cat.jpg", "colosseum.jpg", "pier.jpg"]
    assert "refused 4:" in out
    assert "“empty.jpg” is empty (0 bytes)" in out
    assert "“notes.jpg” is not a photo or video we recognise" in out
    assert "“huge.jpg” is larger than the" in out
    assert f"{tree / 'pipe.jpg'}: not a regular file" in out


@contextlib.contextmanager
def as_nobody():
    """Root reads every file: the unreadable file needs another user (65534, nobody)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(65534)
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_an_unreadable_file_or_folder_is_reported_and_skipped(alice, settings):
    # Folders anyone may enter (pytest's own are private to root), one file and one folder closed.
    base = Path(tempfile.mkdtemp(prefix="discsub-import-"))
    try:
        tree, data = base / "photos", base / "data"
        (tree / "Locked").mkdir(parents=True)
        (tree / "open.jpg").write_bytes(jpeg_bytes(color=(4, 4, 4)))
        (tree / "closed.jpg").write_bytes(jpeg_bytes(color=(6, 6, 6)))
        (tree / "Locked" / "inside.jpg").write_bytes(jpeg_bytes(color=(8, 8, 8)))
        data.mkdir()
        for path in (base, tree, data):
            path.chmod(0o777)
        (tree / "open.jpg").chmod(0o644)
        (tree / "closed.jpg").chmod(0)
        (tree / "Locked").chmod(0)
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(data)}},
        }
        with as_nobody():
            out = run("alice", str(tree))
        assert names(alice) == ["open.jpg"]
        assert f"{tree / 'closed.jpg'}: cannot be read (permission denied)" in out
        assert f"{tree / 'Locked'}: the folder cannot be read (permission denied)" in out
    finally:
        (base / "photos" / "Locked").chmod(0o700)
        import shutil

        shutil.rmtree(base)


def test_a_folder_swapped_for_a_link_out_after_the_walk_is_not_read(alice, tree, tmp_path):
    # The walk finds Trips/Rome/colosseum.jpg inside the tree; then, before the
    # import opens it, Trips/Rome becomes a link to a folder outside with a
    # file of the same name.  O_NOFOLLOW guards only the last name.
    walked = import_tree.walk([tree])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "colosseum.jpg").write_bytes(jpeg_bytes(color=(1, 2, 3)))
    (tree / "Trips" / "Rome").rename(tmp_path / "moved away")
    (tree / "Trips" / "Rome").symlink_to(outside)
    (candidate,) = [c for c in walked.candidates if c.path.name == "colosseum.jpg"]
    outcome, detail = import_tree.import_file(alice, candidate)
    assert outcome == import_tree.REFUSED and "changed since the folder was read" in detail
    assert names(alice) == []


def test_the_target_of_a_followed_link_swapped_after_the_walk_is_not_read(alice, tree, tmp_path):
    (tree / "favourite.jpg").symlink_to(tree / "Trips" / "Rome" / "colosseum.jpg")
    walked = import_tree.walk([tree])
    # Trips, a folder on the way to the link's target, now leads out.
    outside = tmp_path / "outside"
    (outside / "Rome").mkdir(parents=True)
    (outside / "Rome" / "colosseum.jpg").write_bytes(jpeg_bytes(color=(9, 9, 9)))
    (tree / "Trips").rename(tmp_path / "moved away")
    (tree / "Trips").symlink_to(outside)
    (favourite,) = [c for c in walked.candidates if c.path.name == "favourite.jpg"]
    outcome, detail = import_tree.import_file(alice, favourite)
    assert outcome == import_tree.REFUSED and "changed since the folder was read" in detail
    assert names(alice) == []


def test_a_folder_nested_deeper_than_the_restore_tool_reads_is_refused_and_said(alice, tmp_path):
    from exporter.disc_tools.restore import MAX_ALBUM_DEPTH

    root = tmp_path / "deep"
    folder = root.joinpath(*(f"{n}" for n in range(MAX_ALBUM_DEPTH + 1)))
    folder.mkdir(parents=True)
    (folder / "too deep.jpg").write_bytes(jpeg_bytes(color=(4, 4, 4)))
    (folder.parent / "deep enough.jpg").write_bytes(jpeg_bytes(color=(6, 6, 6)))
    out = run("alice", str(root))
    assert names(alice) == ["deep enough.jpg"]
    assert f"too deep.jpg: Albums can be nested at most {MAX_ALBUM_DEPTH} deep" in out
