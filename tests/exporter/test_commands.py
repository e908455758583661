import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from exporter.models import Album, Change, Disc, MediaItem
from tests.factories import add_sized, jpeg_bytes

pytestmark = pytest.mark.django_db
ROOT = Path(settings.BASE_DIR)


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def photo_tree(tmp_path):
    root = tmp_path / "photos"
    (root / "Trips" / "Rome").mkdir(parents=True)
    (root / "Trips" / "Rome" / "IMG 1.jpg").write_bytes(jpeg_bytes())
    (root / "Trips" / "what?.jpg").write_bytes(jpeg_bytes(color=(1, 2, 3)))
    (root / "top level.jpg").write_bytes(jpeg_bytes(color=(9, 9, 9)))
    return root


def test_import_media_makes_nested_albums_and_keeps_names(alice, photo_tree):
    run("import_media", "alice", str(photo_tree))
    names = dict(MediaItem.objects.filter(owner=alice).values_list("original_name", "pk"))
    assert set(names) == {"IMG 1.jpg", "what?.jpg", "top level.jpg"}
    rome = MediaItem.objects.get(pk=names["IMG 1.jpg"]).albums.get()
    assert rome.path() == ["Trips", "Rome"]
    assert not MediaItem.objects.get(pk=names["top level.jpg"]).albums.exists()


def test_import_media_refuses_an_unknown_user_and_changes_nothing(photo_tree):
    with pytest.raises(CommandError, match="unknown user 'nobody'"):
        run("import_media", "nobody", str(photo_tree))
    assert not MediaItem.objects.exists() and not Album.objects.exists()


def test_import_media_refuses_a_missing_path_and_changes_nothing(alice, photo_tree):
    with pytest.raises(CommandError, match="no such file"):
        run("import_media", "alice", str(photo_tree), str(photo_tree / "nope"))
    assert not MediaItem.objects.exists()


def test_import_media_can_create_the_user(photo_tree, django_user_model):
    run("import_media", "carol", str(photo_tree), "--create-user")
    assert MediaItem.objects.filter(owner__username="carol").count() == 3


def test_build_discs_json_then_list_discs(alice, photo_tree):
    run("import_media", "alice", str(photo_tree))
    lines = run("build_discs", "--user", "alice", "--now", "--json").splitlines()
    assert len(lines) == 1
    disc = json.loads(lines[0])
    assert {"id", "user", "number", "medium", "path", "size", "sha256", "files"} <= set(disc)
    assert (disc["user"], disc["number"], disc["medium"], disc["files"]) == ("alice", 1, "cd", 3)
    image = Path(disc["path"])
    assert image.is_absolute() and image.stat().st_size == disc["size"]
    listed = [json.loads(line) for line in run("list_discs", "--user", "alice", "--json").splitlines()]
    assert listed == [{**disc, "status": "verified"}]
    # Nothing more is due.
    assert run("build_discs", "--user", "alice", "--now", "--json") == ""
    assert not Change.objects.filter(owner=alice, resolution="pending").exists()


def test_build_discs_medium_overrides_the_subscription(alice, photo_tree):
    run("import_media", "alice", str(photo_tree))
    disc = json.loads(run("build_discs", "--user", "alice", "--now", "--medium", "bd", "--json"))
    assert disc["medium"] == "bd"
    assert Disc.objects.get().capacity_sectors == 11_826_176


def test_build_discs_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="unknown user"):
        run("build_discs", "--user", "ghost", "--now")


def _verify(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "verify_disc", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "DISCSUB_DATA_DIR": str(settings.DATA_DIR)},
    )


def test_verify_disc_exit_codes(alice, photo_tree, tmp_path):
    run("import_media", "alice", str(photo_tree))
    image = Path(json.loads(run("build_discs", "--user", "alice", "--now", "--json"))["path"])
    good = _verify(image)
    assert good.returncode == 0, good.stdout + good.stderr
    data = bytearray(image.read_bytes())
    offset = data.find(jpeg_bytes())
    assert offset > 0
    data[offset + 200] ^= 0xFF
    bad_image = tmp_path / "bad.iso"
    bad_image.write_bytes(data)
    bad = _verify(bad_image)
    assert bad.returncode == 1
    assert "data/Trips/Rome/IMG 1.jpg" in bad.stdout
    missing = _verify(tmp_path / "nothing-here.iso")
    assert missing.returncode != 0 and "no such file" in missing.stderr


def test_import_media_refuses_what_passes_the_quota_naming_the_file_and_the_numbers(alice, photo_tree, settings):
    settings.DISCSUB_QUOTA_GB = 1
    add_sized(alice, 1024**3 - 100, "archive.bin")
    out = run("import_media", "alice", str(photo_tree))
    assert "imported 0 files for alice" in out
    assert "“what?.jpg” (699 bytes) does not fit in your storage:" in out
    assert "you use 1.0 GB of your 1.0 GB, so 100 bytes is left." in out
    imported = set(MediaItem.objects.filter(owner=alice).values_list("original_name", flat=True))
    assert imported == {"archive.bin"}
