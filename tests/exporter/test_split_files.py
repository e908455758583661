"""Files larger than the medium: split into parts across consecutive discs,
joined and verified by the on-disc restore tool (and by hand, as README.txt says)."""

import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys

import pytest
from django.core.management import call_command

from exporter import build, contents, deletion, jobs, library, readme, splitting
from exporter.media import CAPACITY_SECTORS, sectors_for
from exporter.models import Change, DiscEntry, DiscStatus, ItemIssue, Resolution
from exporter.planning import plan_next_disc
from tests.factories import add_file, jpeg_bytes
from tests.tools import require_tool

pytestmark = pytest.mark.django_db

CD_BYTES = CAPACITY_SECTORS["cd"] * 2048
BIG = CD_BYTES * 3 // 2  # 1.5 CDs: two parts


class PseudoRandom:
    """A deterministic stream of ``size`` bytes (never all in memory)."""

    def __init__(self, size: int, seed: int = 7):
        self.left, self.random, self.digest = size, random.Random(seed), hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.random.randbytes(n)
        self.left -= n
        self.digest.update(data)
        return data


@pytest.fixture(scope="session")
def big_sources(tmp_path_factory):
    """Each size's pseudo-random bytes, made once a session: generating a
    gigabyte costs seconds, and every test would otherwise make the same one."""
    made = {}

    def source(size: int) -> tuple[str, str]:
        if size not in made:
            path = tmp_path_factory.mktemp("big") / f"{size}.bin"
            stream = PseudoRandom(size)
            with open(path, "wb") as fh:
                while block := stream.read(8 << 20):
                    fh.write(block)
            made[size] = str(path), stream.digest.hexdigest()
        return made[size]

    return source


@pytest.fixture
def add_big(big_sources):
    """Adds a file of ``size`` pseudo-random bytes; returns it and its sha256."""

    def add(owner, size=BIG, name="Holiday film.MOV", albums=()):
        path, sha256 = big_sources(size)
        with open(path, "rb") as fh:
            item = library.add_item(owner, fh, name, albums=albums)
        return item, sha256

    return add


def test_a_part_and_its_recovery_data_fill_an_empty_cd():
    reserve = 2400
    size = splitting.part_bytes(CAPACITY_SECTORS["cd"], 10, reserve)
    assert size % 2048 == 0
    # About 10 % less than the disc, for the recovery data; one sector more no longer fits.
    assert 0.88 * CD_BYTES < size < 0.92 * CD_BYTES
    assert splitting.part_bytes(CAPACITY_SECTORS["cd"], 0, reserve) == (CAPACITY_SECTORS["cd"] - reserve) * 2048
    assert splitting.layout(16384 + 2053, 4 * 2048) == [[0, 8192, None], [8192, 8192, None], [16384, 2053, None]]


def split_document(name: str, completes: bool) -> dict:
    """A manifest of a disc holding one part of a split file (as manifest.describe makes it)."""
    number = 2 if completes else 1
    layout = [[0, 6, "a" * 64], [6, 4, "b" * 64]]
    where = [[1, f"data/V/{name}.001"], [2, f"data/V/{name}.002"] if completes else [None, None]]
    return {
        "disc": {
            "number": number,
            "series": "discsub-1",
            "subscriber": "Alice",
            "medium": "cd",
            "volume_id": "V",
            "planned_at": "2026-11-26T10:00:00+00:00",
            "first_change": 1,
            "last_change": 1,
            "captured": {"first": None, "last": None},
        },  # fmt: skip
        "files": [],
        "changes": {"added": ["i"] if completes else [], "new_version": [], "edited": [], "deleted": []},
        "held_back": [],
        "parts": [
            {
                "original_name": name,
                "path": f"data/V/{name}",
                "size": 10,
                "sha256": "c" * 64,
                "completes": completes,
                "part": {"number": number, "count": 2, "path": where[number - 1][1]},
                "parts": [
                    {"number": n + 1, "offset": o, "size": z, "sha256": h, "disc": d, "path": p}
                    for n, ((o, z, h), (d, p)) in enumerate(zip(layout, where, strict=True))
                ],
            },
        ],  # fmt: skip
    }


def test_the_readme_of_the_completing_disc_says_how_to_join_even_hostile_names():
    name = "it's $HOME film.MOV"
    text = readme.readme_txt(split_document(name, True), ["manifest.json"]).decode("utf-8-sig")
    assert "1 file: 1 new" in text  # the split file counts on the disc that completes it
    assert "1 part of a file too large for one disc" in text
    assert "part 1: disc 1, data/V/it's $HOME film.MOV.001" in text
    assert f'copy /b "{name}.001" + "{name}.002" "{name}"' in text
    unix = next(line.strip() for line in text.splitlines() if line.strip().startswith("cat "))
    assert unix == """cat 'it'"'"'s $HOME film.MOV.001' 'it'"'"'s $HOME film.MOV.002' > 'it'"'"'s $HOME film.MOV'"""
    assert "c" * 64 in text

    earlier = readme.readme_txt(split_document(name, False), ["manifest.json"]).decode("utf-8-sig")
    assert "0 files: 0 new" in earlier
    assert "Part 1 of 2 is on this disc: data/V/it's $HOME film.MOV.001" in earlier
    assert "the disc\r\n  with the last part tells how to join them" in earlier
    assert "copy /b" not in earlier


@pytest.mark.slow
def test_an_oversize_file_is_planned_in_parts_that_each_fit_a_cd(alice, settings, add_big):
    # With the default 10 % of recovery data: the planner measures every image.
    album = library.ensure_album_path(alice, ["Videos"])
    before = add_file(alice, "before.jpg", jpeg_bytes(), albums=[album])
    big, _ = add_big(alice, albums=[album])
    after = add_file(alice, "after.jpg", jpeg_bytes(color=(1, 2, 3)), albums=[album])

    first = plan_next_disc(alice, medium="cd")  # a disc holding a part is full
    second = plan_next_disc(alice, medium="cd", allow_partial=True)

    assert first is not None and second is not None
    for disc in (first, second):
        assert disc.planned_sectors <= CAPACITY_SECTORS["cd"]
    # The first part nearly fills disc 1 (its recovery data takes the rest):
    assert first.planned_sectors > 0.99 * CAPACITY_SECTORS["cd"]
    one = {e.item_id: e for e in DiscEntry.objects.filter(disc=first)}
    two = {e.item_id: e for e in DiscEntry.objects.filter(disc=second)}
    # Nothing else waited for the big file: the small ones share disc 1 with its first part.
    assert set(one) == {before.pk, big.pk, after.pk}
    assert set(two) == {big.pk}
    assert (one[big.pk].metadata["part"]["number"], two[big.pk].metadata["part"]["number"]) == (1, 2)
    assert one[big.pk].size + two[big.pk].size == BIG
    assert sectors_for(one[big.pk].size) <= CAPACITY_SECTORS["cd"]
    # Exactly once: the big file's change is carried by the disc that completes it.
    assert list(Change.objects.filter(item=big).values_list("resolution", "disc")) == [(Resolution.CARRIED, second.pk)]
    assert one[big.pk].change_kinds == [] and two[big.pk].change_kinds == ["added"]
    assert not ItemIssue.objects.exists()
    # Nothing more to plan.
    assert plan_next_disc(alice, medium="cd", allow_partial=True) is None


def test_a_file_deleted_before_its_last_part_ships_as_a_deletion_of_that_version(alice, add_big):
    big, _ = add_big(alice)
    first = plan_next_disc(alice, medium="cd")
    assert DiscEntry.objects.get(disc=first).metadata["part"]["number"] == 1
    deletion.delete_now(big)

    second = plan_next_disc(alice, medium="cd", allow_partial=True)

    # Not a part 2 that nobody wants, nor silence: a deletion, so a restore
    # knows part 1 on disc 1 will never be joined; it carries every change.
    entry = DiscEntry.objects.get(disc=second)
    assert (entry.kind, entry.metadata["version"], entry.size) == ("deletion", 1, 0)
    assert sorted(entry.change_kinds) == ["added", "deleted"]
    assert set(Change.objects.filter(item=big).values_list("resolution", "disc")) == {(Resolution.CARRIED, second.pk)}
    document = json.loads(
        next(f for f in contents.disc_files(second, list(second.entries.all())) if f.path == "manifest.json")
        .open()
        .read()
    )
    assert [(d["item"], d["version"]) for d in document["changes"]["deleted"]] == [(str(big.public_id), 1)]
    assert plan_next_disc(alice, medium="cd", allow_partial=True) is None
    # The split is over: the kind of disc may change again.
    assert splitting.in_progress(alice.pk) is None


def test_a_file_that_fits_a_disc_only_without_its_recovery_data_is_split(alice, add_big):
    # 667 MB: under a CD by the share of recovery data each file is charged,
    # over it with the recovery data par2 really makes for it alone.
    big, _ = add_big(alice, size=326_100 * 2048, name="almost.mov")
    first = plan_next_disc(alice, medium="cd")
    assert first is not None, "the file held up every disc"
    assert DiscEntry.objects.get(disc=first).metadata["part"]["number"] == 1
    second = plan_next_disc(alice, medium="cd", allow_partial=True)
    assert DiscEntry.objects.get(disc=second).metadata["part"]["completes"]
    assert list(Change.objects.filter(item=big).values_list("disc", flat=True)) == [second.pk]


def test_a_file_too_large_for_a_disc_in_two_albums_is_split_like_any_other(alice, add_big):
    albums = [library.ensure_album_path(alice, [name]) for name in ("Videos", "Holidays")]
    big, _ = add_big(alice, albums=albums)
    first = plan_next_disc(alice, medium="cd")
    assert first is not None, "the part was charged once per album and never fitted"
    entry = DiscEntry.objects.get(disc=first)
    assert entry.metadata["part"]["path"] == "data/Holidays/Holiday film.MOV.001"
    assert first.planned_sectors <= CAPACITY_SECTORS["cd"]
    second = plan_next_disc(alice, medium="cd", allow_partial=True)
    assert DiscEntry.objects.get(disc=second).paths == [
        "data/Holidays/Holiday film.MOV",
        "data/Videos/Holiday film.MOV",
    ]


def test_a_smaller_kind_of_disc_is_refused_while_a_file_is_going_out_in_parts(alice, monkeypatch, add_big):
    from exporter import subscriptions
    from exporter.errors import IllegalTransition
    from exporter.models import Subscription

    # A file split across DVDs, at the scale of a test: DVDs the size of a
    # CD, and CDs half that (the rest of the split would never fit one).
    monkeypatch.setitem(CAPACITY_SECTORS, "dvd", CAPACITY_SECTORS["cd"])
    monkeypatch.setitem(CAPACITY_SECTORS, "cd", CAPACITY_SECTORS["cd"] // 2)
    sub = Subscription.objects.get(user=alice)
    subscriptions.change_plan(sub, alice, medium="dvd", cadence=sub.cadence)
    add_big(alice)
    assert plan_next_disc(alice).entries.get().metadata["part"]["number"] == 1
    with pytest.raises(IllegalTransition, match="Holiday film.MOV"):
        subscriptions.change_plan(sub, alice, medium="cd", cadence=sub.cadence)
    sub.refresh_from_db()
    assert sub.medium == "dvd"
    subscriptions.change_plan(sub, alice, medium="dvd", cadence="weekly")  # the cadence may change
    assert plan_next_disc(alice, allow_partial=True).entries.get().metadata["part"]["completes"]
    subscriptions.change_plan(sub, alice, medium="cd", cadence="weekly")  # and the disc type, once it is out
    sub.refresh_from_db()
    assert sub.medium == "cd"


def test_a_larger_kind_of_disc_takes_the_rest_of_a_split(alice, add_big):
    from exporter import subscriptions
    from exporter.models import Subscription

    sub = Subscription.objects.get(user=alice)
    subscriptions.change_plan(sub, alice, medium="cd", cadence=sub.cadence)
    big, _ = add_big(alice)
    plan_next_disc(alice)
    subscriptions.change_plan(sub, alice, medium="dvd", cadence=sub.cadence)
    rest = plan_next_disc(alice, allow_partial=True)
    assert rest.medium == "dvd" and rest.entries.get().metadata["part"]["completes"]
    assert list(Change.objects.filter(item=big).values_list("disc", flat=True)) == [rest.pk]


@pytest.mark.slow
def test_an_oversize_file_is_built_to_cd_images_and_restored_by_the_tool_on_the_disc(
    alice, settings, tmp_path, add_big
):
    seven = require_tool("7z", "p7zip-full")
    settings.DISCSUB_PAR2_REDUNDANCY = {"cd": 0}  # par2 over 1 GB is tested elsewhere; time matters here
    album = library.ensure_album_path(alice, ["Videos", "2024"])
    photo = add_file(alice, "IMG_0001.JPG", jpeg_bytes(), albums=[album])
    big, sha256 = add_big(alice, albums=[album])

    discs = jobs.plan_discs_for(alice.pk, allow_partial=True, medium="cd")
    assert [d.number for d in discs] == [1, 2]
    built = [build.build_disc(d.pk) for d in discs]
    assert [d.status for d in built] == [DiscStatus.VERIFIED] * 2, [d.last_error for d in built]
    for disc in built:
        assert disc.image_size == disc.planned_sectors * 2048 <= CD_BYTES
    images = [build.image_path(d) for d in built]

    # The manifests: disc 1 holds part 1 (no change), disc 2 completes the file.
    folders = []
    for n, image in enumerate(images, start=1):
        out = subprocess.run([seven, "x", "-y", f"-o{tmp_path / f'disc{n}'}", str(image)], capture_output=True)
        assert out.returncode == 0, out.stderr
        folders.append(tmp_path / f"disc{n}")
    first, second = (json.loads((f / "manifest.json").read_text()) for f in folders)
    item = str(big.public_id)
    assert [p["part"]["number"] for p in first["parts"]] == [1]
    assert first["parts"][0]["completes"] is False and item not in first["changes"]["added"]
    assert item not in first["catalog"]
    assert second["parts"][0]["completes"] is True and item in second["changes"]["added"]
    assert second["parts"][0]["sha256"] == sha256
    part_paths = ["data/Videos/2024/Holiday film.MOV.001", "data/Videos/2024/Holiday film.MOV.002"]
    assert second["catalog"][item]["parts"] == [[1, part_paths[0]], [2, part_paths[1]]]
    assert second["catalog"][item]["path"] == "data/Videos/2024/Holiday film.MOV"
    assert (folders[1] / "data/Videos/2024/Holiday film.MOV.xmp").exists()  # the sidecar, for the joined name

    # By hand, as disc 2's README says: copy the parts into one folder and join them.
    readme = (folders[1] / "README.txt").read_text(encoding="utf-8-sig")
    assert 'copy /b "Holiday film.MOV.001" + "Holiday film.MOV.002" "Holiday film.MOV"' in readme
    command = next(line.strip() for line in readme.splitlines() if line.strip().startswith("cat "))
    joined = tmp_path / "by-hand"
    joined.mkdir()
    for folder, path in zip(folders, part_paths, strict=True):
        os.link(folder / path, joined / path.rsplit("/", 1)[-1])
    subprocess.run(command, shell=True, cwd=joined, check=True)
    assert _sha256(joined / "Holiday film.MOV") == sha256
    assert sha256 in readme
    shutil.rmtree(joined)

    # With the restore tool of the newest disc, from the two images, in any order.
    tool = folders[1] / "restore.py"
    into = tmp_path / "restored"
    done = subprocess.run(
        [sys.executable, str(tool), "--into", str(into), str(images[1]), str(images[0])],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: every file verified" in done.stdout
    assert _sha256(into / "Videos" / "2024" / "Holiday film.MOV") == sha256
    assert (into / "Videos" / "2024" / "Holiday film.MOV.xmp").exists()
    assert (into / "Videos" / "2024" / "IMG_0001.JPG").read_bytes() == _stored(photo)
    assert not list(into.rglob("*.001"))  # the parts themselves are not restored

    # Without disc 1, the tool says which part is missing and restores the rest.
    partial = subprocess.run(
        [sys.executable, str(tool), "--into", str(tmp_path / "partial"), str(images[1])],
        capture_output=True,
        text=True,
    )
    assert partial.returncode == 1
    assert "is split across discs and part 1 on disc 1 of 2 not given" in partial.stdout
    assert not (tmp_path / "partial" / "Videos" / "2024" / "Holiday film.MOV").exists()

    # manage.py restore_discs is the same tool: a dry run reads and checks every part.
    report = io.StringIO()
    call_command("restore_discs", "--into", str(tmp_path / "dry"), "--dry-run", *map(str, images), stdout=report)
    assert "would be restored: Videos/2024/Holiday film.MOV" in report.getvalue()

    # A damaged part is named, and nothing half-joined is left.
    with open(folders[0] / part_paths[0], "r+b") as fh:
        fh.seek(300_000_000)
        byte = fh.read(1)
        fh.seek(300_000_000)
        fh.write(bytes([byte[0] ^ 1]))
    damaged = subprocess.run(
        [sys.executable, str(tool), "--into", str(tmp_path / "damaged"), *map(str, folders)],
        capture_output=True,
        text=True,
    )
    assert damaged.returncode == 1
    assert "part 1 (disc 1: data/Videos/2024/Holiday film.MOV.001) is damaged" in damaged.stdout
    assert not (tmp_path / "damaged" / "Videos" / "2024" / "Holiday film.MOV").exists()


def _sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _stored(item) -> bytes:
    from django.core.files.storage import default_storage

    with default_storage.open(item.current_version.storage_name, "rb") as fh:
        return fh.read()


def test_a_split_begun_by_an_older_layout_goes_on_with_what_protection_fits(alice, settings, monkeypatch, add_big):
    """Parts sized for a layout-2 volume (the whole disc but its PAR2) are larger than a
    layout-3 volume (the disc less its recovery data): the next part still goes on the next
    disc, with fewer parity layers, and the parts after the split get the full protection."""
    from exporter import ecc, planning

    monkeypatch.setitem(CAPACITY_SECTORS, "cd", 20_000)
    monkeypatch.setattr(planning, "LAYOUT_VERSION", 2)
    settings.DISCSUB_PAR2_REDUNDANCY = {"cd": 10}
    add_big(alice, size=20_000 * 2048 * 21 // 10)
    first = plan_next_disc(alice)
    assert first.layout_version == 2 and first.sector_parity == 0
    part_sectors = sectors_for(first.entries.get().size)
    monkeypatch.setattr(planning, "LAYOUT_VERSION", 3)
    settings.DISCSUB_PAR2_REDUNDANCY = {"cd": 0}
    need = part_sectors + planning._split_reserve(alice.pk, CAPACITY_SECTORS["cd"])
    assert need > planning.image_capacity("cd"), "the test needs a part that a layout-3 volume has no room for"
    second = plan_next_disc(alice, allow_partial=True)
    assert second is not None and second.entries.get().metadata["part"]["number"] == 2
    assert 0 < second.sector_parity < settings.DISCSUB_SECTOR_PARITY["cd"]
    assert second.planned_sectors <= CAPACITY_SECTORS["cd"]
    assert ecc.image_capacity(CAPACITY_SECTORS["cd"], second.sector_parity + 1) < need  # one layer more: no room
    built = build.build_disc(second.pk)
    assert built.status == DiscStatus.VERIFIED, built.last_error
    third = plan_next_disc(alice, allow_partial=True)
    assert third.entries.get().metadata["part"]["number"] == 3
    assert third.sector_parity == settings.DISCSUB_SECTOR_PARITY["cd"]
