"""Hostile names, from the library to extracted files, through real readers."""

import json
import subprocess
import unicodedata

import pytest

from exporter import build, library
from exporter.models import DiscEntry, DiscStatus
from exporter.planning import plan_next_disc
from tests.factories import add_file
from tests.tools import require_tool

pytestmark = pytest.mark.django_db

HOSTILE = [
    unicodedata.normalize("NFC", "Café.jpg"),
    unicodedata.normalize("NFD", "Café.jpg"),
    "🎉 party 👨‍👩‍👧.jpg",
    "x" * 260 + ".jpg",
    'a/b\\c:d*e?f"g<h>i|j.jpg',
    "tab\there\nnewline\x01.jpg",
    "...dots...",
    "  spaces  ",
    "CON",
    "nul.txt",
    "Com1.jpg",
    "LPT9",
    "Case.JPG",
    "case.jpg",
    "..",
    ".",
    "/etc/passwd",
    "C:\\Windows\\win.ini",
    "same.jpg",
    "same.jpg",
    "",
]


def extract(tool: list[str], out) -> None:
    result = subprocess.run(tool, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_hostile_name_survives_every_reader(alice, tmp_path):
    seven = require_tool("7z", "p7zip-full")
    xorriso = require_tool("xorriso")
    album = library.ensure_album_path(alice, ["Albüm: <2024>", "..", "CON"])
    items = {}
    for n, name in enumerate(HOSTILE):
        data = f"item {n} {name!r}".encode()
        items[add_file(alice, name or "unnamed", data, albums=[album]).pk] = data
    disc = build.build_disc(plan_next_disc(alice, allow_partial=True).pk)
    assert disc.status == DiscStatus.VERIFIED, disc.last_error
    image = build.image_path(disc)
    extract([seven, "x", "-y", f"-o{tmp_path / 'udf'}", str(image)], tmp_path / "udf")
    extract([xorriso, "-osirrox", "on", "-indev", str(image), "-extract", "/", str(tmp_path / "rr")], tmp_path / "rr")

    entries = list(DiscEntry.objects.filter(disc=disc))
    assert len(entries) == len(HOSTILE)
    paths = [e.paths[0] for e in entries]
    assert len(set(paths)) == len(paths)
    manifest = json.loads((tmp_path / "udf" / "manifest.json").read_text("utf-8"))
    by_path = {entry["path"]: entry for entry in manifest["files"]}
    for entry in entries:
        path = entry.paths[0]
        assert path.startswith("data/") and ".." not in path.split("/")
        for view in ("udf", "rr"):
            extracted = tmp_path / view / path
            assert extracted.read_bytes() == items[entry.item_id], (view, path)
        # The manifest maps the disc path back to the original name and item.
        assert by_path[path]["original_name"] == entry.item.original_name
        assert by_path[path]["item"] == str(entry.item.public_id)
    # Nothing was written outside the extraction folders.
    assert not (tmp_path / "etc").exists()
