"""The data folder (secret key, database, originals, images, build area,
uploads, sign-in counts) is private to the service's user: 0700 folders and
0600 files, on a fresh machine and on one set up by an earlier version."""

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# What a first `make run` does to the data folder: settings made (the secret
# key), the database opened, an upload stored, a sign-in counted in the file
# cache, an image and a build folder written by the engine's own mkdir calls.
FIRST_START = """
import django
django.setup()
from pathlib import Path
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
connection.cursor().execute("create table t (x int)")
default_storage.save("originals/1/photo.jpg", ContentFile(b"jpeg"))
cache.set("signin", 1)
for folder in (settings.IMAGES_DIR / "1", settings.BUILD_DIR / "disc-1"):
    folder.mkdir(parents=True)
    (folder / "part").write_bytes(b"x")
"""


def first_start(data: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(data.parent),
        "DJANGO_SETTINGS_MODULE": "discsub.settings",
        "DISCSUB_DATA_DIR": str(data),
    }
    result = subprocess.run(
        [sys.executable, "-c", FIRST_START], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def modes(data: Path) -> dict[str, int]:
    found = {".": stat.S_IMODE(data.stat().st_mode)}
    for path in data.rglob("*"):
        found[str(path.relative_to(data))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_a_new_data_folder_is_private(tmp_path):
    data = tmp_path / "var"
    first_start(data)
    found = modes(data)
    for name in (
        "secret_key",
        "discsub.sqlite3",
        "media/originals/1/photo.jpg",
        "images/1/part",
        "build/disc-1/part",
    ):
        assert found.pop(name) == 0o600, name
    for name in (".", "media", "media/originals", "media/originals/1", "images", "build", "uploads", "cache"):
        assert found.pop(name) == 0o700, name
    # Everything else (the cache's files, SQLite's journal) is private too.
    assert all(mode & 0o077 == 0 for mode in found.values()), found


def test_a_world_readable_folder_from_an_earlier_version_is_made_private(tmp_path):
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    (data / "secret_key").write_text("k" * 60)
    (data / "secret_key").chmod(0o644)
    first_start(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
    assert (data / "secret_key").read_text() == "k" * 60  # the same key: sessions survive
