"""Discs already shipped rebuild byte-identical, whatever the code becomes.

A disc keeps the layout version it was planned with (docs/disc-layout.md,
"Layout versions").  For each released layout the same golden disc, made
from fixed inputs through the real pipeline (library, planner, builder,
``rebuild_disc``), must give the very image recorded here: every generator
that shapes an image (names, sidecars, thumbnails, manifest.json, index.html,
README.txt, restore.py, the bag, the PAR2 data, the ISO writer) is held to
the bytes it gave when the layout was released.  The pins were computed by
the code of that release; a change that moves one is a change to discs
already shipped: put it behind a new layout version instead.

An upgrade of a dependency that moves a pin (pycdlib writes the image,
Pillow the thumbnails, par2 the recovery blocks) changes shipped discs just
the same.  A new layout adds its line to FROZEN, computed once by the code
that releases it.
"""

import datetime as dt
import hashlib
import io
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import time_machine
from django.core.management import call_command

from exporter import build, contents, deletion, library, planning
from exporter.disc_tools import restore
from exporter.media import Medium
from exporter.models import DiscStatus, Subscription
from exporter.planning import plan_next_disc
from exporter.verify import verify_image
from tests.conftest import address
from tests.exporter.test_restore import PLAIN_PYTHON, library_tree, originals
from tests.factories import add_file, jpeg_bytes
from tests.tools import require_tool

pytestmark = pytest.mark.django_db

# layout version -> (the PAR2 redundancy and sector parity its discs were
# planned with, the sha256 of the golden series' disc 2)
FROZEN = {
    1: (10, 0, "7e74785c372f46ac9802ec534a807490fa869966624952a6f5d9ac68ae15b69b"),
    2: (10, 0, "92ac47f2b89ca672f89dc9dccc0434da9d944266f740ec0b0af3ba247e15b648"),
}

OWNER_PK = 7301  # in the volume id and the series id
T1 = dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC)  # the library as disc 1 found it
T2 = dt.datetime(2024, 6, 15, 17, 45, tzinfo=dt.UTC)  # what changed before disc 2


def _public_id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://discsub.example/golden/{name}")


def _add(owner, name: str, data: bytes, albums=(), **metadata):
    item = add_file(owner, name, data, albums=albums, **metadata)
    type(item).objects.filter(pk=item.pk).update(public_id=_public_id(name))
    item.refresh_from_db()
    return item


def golden_series(django_user_model, settings, monkeypatch, layout: int):
    """Two planned discs of a fixed library, as discs of ``layout``: disc 1
    adds what disc 2 then edits, moves, deletes and replaces; disc 2 also
    adds photos with titles, captions and capture dates in nested albums
    with non-ASCII names, one of them in two albums (a hard link)."""
    percent, parity, _ = FROZEN[layout]
    if percent:
        require_tool("par2")
    monkeypatch.setattr(planning, "LAYOUT_VERSION", layout)
    settings.DISCSUB_PAR2_REDUNDANCY = {Medium.CD: percent}
    settings.DISCSUB_SECTOR_PARITY = {Medium.CD: parity}
    settings.DISCSUB_ORGANIZATION = "Discsub"
    owner = django_user_model.objects.create_user(
        "zoe", "zoe@example.com", "zoe-password-1", pk=OWNER_PK, first_name="Zoë", last_name="Ørsted-Nakamura"
    )
    Subscription.objects.create(user=owner, medium=Medium.CD, **address("Zoë Ørsted", "1 Quay", "Bristol", "GB"))
    with time_machine.travel(T1, tick=False):
        family = library.ensure_album_path(owner, ["Famille", "Noël 2023"])
        cat = _add(owner, "cat.jpg", jpeg_bytes(color=(90, 90, 90)), albums=[family], caption="Minou")
        gone = _add(owner, "gone.jpg", jpeg_bytes(color=(5, 5, 5)), albums=[family])
        retouched = _add(owner, "IMG_0002.JPG", jpeg_bytes(exif_date="2023:12:24 20:15:00", offset="+01:00"))
    first = plan_next_disc(owner, medium=Medium.CD, allow_partial=True, now=T1 + dt.timedelta(hours=1))
    with time_machine.travel(T2, tick=False):
        kyoto = library.ensure_album_path(owner, ["Reisen", "Kyōto 京都"])
        best = library.ensure_album_path(owner, ["Best of"])
        pets = library.ensure_album_path(owner, ["Tiere"])
        temple = jpeg_bytes(width=96, height=64, color=(180, 40, 40), exif_date="2024:05:04 18:30:00", offset="+09:00")
        _add(owner, "IMG_0100.JPG", temple, albums=[kyoto, best], title="Kiyomizu-dera", caption="清水寺, at dusk")
        _add(owner, "Café de Flore.jpg", jpeg_bytes(width=48, height=64, color=(20, 120, 200)), albums=[best])
        _add(owner, "notes 📝.txt", "Reiseplan: Kyōto → Nara\n".encode(), caption="no thumbnail: a placeholder")
        library.edit_metadata(cat, caption="Minou 🐈", title="Le chat")
        library.move_item(cat, [pets, family])
        deletion.delete_now(gone)
        library.replace_bytes(retouched, io.BytesIO(jpeg_bytes(color=(10, 200, 10), exif_date="2023:12:24 20:15:00")))
    second = plan_next_disc(owner, medium=Medium.CD, allow_partial=True, now=T2 + dt.timedelta(hours=1))
    assert (first.layout_version, second.layout_version) == (layout, layout)
    return owner, first, second


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("layout", sorted(FROZEN))
def test_a_disc_of_each_released_layout_builds_and_rebuilds_to_its_recorded_bytes(
    django_user_model, settings, monkeypatch, tmp_path, layout
):
    _, _, disc = golden_series(django_user_model, settings, monkeypatch, layout)
    built = build.build_disc(disc.pk)
    assert built.status == DiscStatus.VERIFIED, built.last_error
    assert sha256_of(build.image_path(built)) == built.image_sha256 == FROZEN[layout][2]
    # Years later, elsewhere: the same bytes.
    monkeypatch.setenv("TZ", "Pacific/Chatham")
    time.tzset()
    try:
        with time_machine.travel("2041-02-03 04:05:06+00:00", tick=False):
            call_command("rebuild_disc", built.pk, to=str(tmp_path / "again.iso"), stdout=io.StringIO())
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert sha256_of(tmp_path / "again.iso") == FROZEN[layout][2]


@pytest.mark.parametrize("layout", sorted(FROZEN))
def test_discs_of_each_released_layout_verify_and_restore_with_their_own_tool(
    django_user_model, settings, monkeypatch, tmp_path, layout
):
    """What a subscriber does with discs shipped long ago, on discs the code of
    today builds as that layout: check them, restore with the tool on the disc.
    (Their PAR2 repair: tests/exporter/test_burn_checks.py.)"""
    owner, *discs = golden_series(django_user_model, settings, monkeypatch, layout)
    images = []
    for disc in discs:
        built = build.build_disc(disc.pk)  # verified against the database
        assert built.status == DiscStatus.VERIFIED, built.last_error
        images.append(build.image_path(built))
        found = verify_image(images[-1])  # against its own manifests alone
        assert found.ok, found.problems
    tool = tmp_path / "from-disc" / "restore.py"
    tool.parent.mkdir()
    tool.write_bytes(restore.IsoImage(str(images[-1])).read_small("restore.py"))
    assert tool.read_bytes() == contents.restore_tool(layout).read_bytes()
    out = tmp_path / "restored"
    command = [PLAIN_PYTHON, "-I", str(tool), "--into", str(out), *map(str, reversed(images))]
    result = subprocess.run(command, capture_output=True, text=True, env={})
    assert result.returncode == 0, result.stdout + result.stderr
    assert originals(out) == library_tree(owner)
    assert "Minou 🐈" in (out / "Tiere" / "cat.jpg.xmp").read_text(encoding="utf-8")
    linked = [out / "Best of" / "IMG_0100.JPG", out / "Reisen" / "Kyōto 京都" / "IMG_0100.JPG"]
    assert linked[0].stat().st_ino == linked[1].stat().st_ino
    assert "note: deleted on disc 2: Famille/Noël 2023/gone.jpg (kept;" in result.stdout
