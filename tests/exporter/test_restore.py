"""The restore tool (exporter/disc_tools/restore.py): discs in, a library out.

Hand-made discs (folders and ISO images written by our image writer) pin the
tool to docs/disc-layout.md; the end-to-end tests at the bottom restore real
discs built by the engine.
"""

import ast
import hashlib
import io
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from exporter import iso, names
from exporter.disc_tools import restore
from exporter.layout import DiscFile
from tests.exporter.crafted_discs import as_iso as folder_to_iso
from tests.tools import require_tool

TOOL = Path(restore.__file__)
STATE = ".discsub-restore"
# A Python outside the project's virtualenv: no Django, nothing but the standard library.
PLAIN_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- hand-made discs -------------------------------------------------------------------


def item(item_id, version, name, albums, data, sidecar=b"", paths=None, sidecar_path=None):
    """A ``files`` entry and its bytes; paths default to data/<album>/<name>."""
    paths = paths or ["data/" + "/".join([*a, name]) for a in (albums or [[]])]
    return {
        "sidecar_path": sidecar_path or paths[0] + ".xmp",
        "item": item_id,
        "version": version,
        "original_name": name,
        "albums": albums,
        "data": data,
        "sidecar": sidecar or f"<xmp {item_id} v{version}/>".encode(),
        "paths": paths,
    }


def edit(item_id, version, bytes_disc, name, albums, caption, paths=None):
    return {
        "item": item_id,
        "version": version,
        "disc": bytes_disc,
        "original_name": name,
        "albums": albums,
        "caption": caption,
        "sidecar_data": f"<xmp {item_id} caption={caption}/>".encode(),
        "paths": paths or ["data/" + "/".join([*a, name]) for a in (albums or [[]])],
    }


def make_disc(
    root: Path, number: int, files=(), edited=(), deleted=(), series="discsub-9", extra=None, parts=()
) -> Path:
    """A disc folder laid out as docs/disc-layout.md says (BagIt files included);
    ``parts``: (a ``parts`` record, the part's bytes) pairs."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    payload, entries, edits = {}, [], []
    for record, data in parts:
        payload[record["part"]["path"]] = data
    for f in files:
        paths = f["paths"]
        for p in paths:
            payload[p] = f["data"]
        payload[f["sidecar_path"]] = f["sidecar"]
        entry = {k: v for k, v in f.items() if k not in ("data", "sidecar", "paths", "sidecar_path")}
        entry.update(
            change="added" if f["version"] == 1 else "new_version",
            path=paths[0],
            links=paths[1:],
            sidecar=f["sidecar_path"],
            size=len(f["data"]),
            sha256=sha(f["data"]),
            title="",
            future_key={"ignored": True},
        )
        entries.append(entry)
    for e in edited:
        payload[e["paths"][0] + ".xmp"] = e["sidecar_data"]
        entry = {k: v for k, v in e.items() if k not in ("sidecar_data", "paths")}
        entry.update(path=e["paths"][0], links=e["paths"][1:], sidecar=e["paths"][0] + ".xmp")
        edits.append(entry)
    document = {
        "schema": "discsub-manifest",
        "schema_version": 1,
        "disc": {"number": number, "series": series, "volume_id": f"DISCSUB_000009_{number:04d}", "layout_version": 1},
        "files": entries,
        "changes": {
            "added": [f["item"] for f in files if f["version"] == 1],
            "new_version": [],
            "edited": edits,
            "deleted": list(deleted),
        },
        "held_back": [],
        "catalog": {},
        "a_key_from_the_future": [1, 2, 3],
    }
    if parts:
        document["parts"] = [record for record, _ in parts]
    document.update(extra or {})
    for path, data in payload.items():
        if not restore.disc_path_ok(path):  # a crafted entry: its bytes are nowhere
            continue
        full = root.joinpath(*path.split("/"))
        full.parent.mkdir(parents=True, exist_ok=True)
        full.write_bytes(data)
    manifest = json.dumps(document, sort_keys=True, indent=1).encode()
    bag = "".join(f"{sha(d)}  {p}\n" for p, d in sorted(payload.items())).encode()
    (root / "manifest.json").write_bytes(manifest)
    (root / "manifest-sha256.txt").write_bytes(bag)
    (root / "tagmanifest-sha256.txt").write_text(f"{sha(manifest)}  manifest.json\n{sha(bag)}  manifest-sha256.txt\n")
    return root


def tree(root: Path) -> dict:
    """relative path -> bytes, of every file but the restore's own state."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith(STATE + "/")
    }


def run(*args) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    paths = [str(a) for a in args if not str(a).startswith("--")]
    flags = {a.lstrip("-").replace("-", "_"): True for a in map(str, args) if a.startswith("--") and a != "--into"}
    into = paths.pop(0)
    code = restore.restore(paths, into, out=out, err=err, **flags)
    return code, out.getvalue()


def problems(output: str) -> list[str]:
    return [line[len("problem: ") :] for line in output.splitlines() if line.startswith("problem: ")]


A, B, C, D, E = (f"{n}0000000-0000-4000-8000-00000000000{n}" for n in range(1, 6))
A1, A2, BB, CC, DD, EE = (random.Random(n).randbytes(1000 + n) for n in range(6))


@pytest.fixture
def series(tmp_path):
    """Three discs: adds; a new version, a move and an add; a deletion and a caption edit."""
    d1 = make_disc(
        tmp_path / "disc1",
        1,
        files=[
            item(A, 1, "IMG_1.jpg", [["Travel", "Roma"], ["Best of"]], A1),
            item(B, 1, "cat.jpg", [["Pets"]], BB),
            item(C, 1, "gone.jpg", [], CC),
            item(D, 1, "Café.jpg", [["Été"]], DD),
        ],
    )
    d2 = make_disc(
        tmp_path / "disc2",
        2,
        files=[item(A, 2, "IMG_1.jpg", [["Travel", "Roma"], ["Best of"]], A2), item(E, 1, "new.png", [["Pets"]], EE)],
        edited=[edit(B, 1, 1, "cat.jpg", [["Animals"]], "moved")],
    )
    d3 = make_disc(
        tmp_path / "disc3",
        3,
        edited=[edit(A, 2, 2, "IMG_1.jpg", [["Travel", "Roma"], ["Best of"]], "Colosseum")],
        deleted=[{"item": C, "original_name": "gone.jpg", "last_disc": 1, "version": 1}],
    )
    return [d1, d2, d3]


A_SIDE = f"<xmp {A} caption=Colosseum/>".encode()
EXPECTED = {
    "Animals/cat.jpg": BB,
    "Animals/cat.jpg.xmp": f"<xmp {B} caption=moved/>".encode(),
    "Best of/IMG_1.jpg": A2,
    "Best of/IMG_1.jpg.xmp": A_SIDE,
    "Older versions/Travel/Roma/IMG_1 (version 1 from disc 1).jpg": A1,
    "Pets/new.png": EE,
    "Pets/new.png.xmp": f"<xmp {E} v1/>".encode(),
    "Travel/Roma/IMG_1.jpg": A2,
    "Travel/Roma/IMG_1.jpg.xmp": A_SIDE,
    "gone.jpg": CC,
    "gone.jpg.xmp": f"<xmp {C} v1/>".encode(),
    "Été/Café.jpg": DD,
    "Été/Café.jpg.xmp": f"<xmp {D} v1/>".encode(),
}


# --- merging a series --------------------------------------------------------------------


def test_it_merges_a_series_given_in_any_order(series, tmp_path):
    out = tmp_path / "restored"
    code, output = run("--into", out, series[2], series[0], series[1])
    assert code == 0, output
    assert tree(out) == EXPECTED
    assert "deleted on disc 3: gone.jpg (kept; --apply-deletions moves it to 'Deleted items')" in output
    # An item in two albums is stored once: hard links.
    assert (out / "Best of/IMG_1.jpg").stat().st_ino == (out / "Travel/Roma/IMG_1.jpg").stat().st_ino
    assert not (out / "Pets/cat.jpg").exists() and (out / "Pets").is_dir()


def test_it_reads_iso_images_directly(series, tmp_path):
    images = [folder_to_iso(d, tmp_path / f"{d.name}.iso") for d in series]
    out = tmp_path / "restored"
    code, output = run("--into", out, *reversed(images))
    assert code == 0, output
    assert tree(out) == EXPECTED


def test_disc_by_disc_gives_the_same_folder_as_all_at_once(series, tmp_path):
    out = tmp_path / "restored"
    outputs = []
    for disc in series:
        code, output = run("--into", out, disc)
        assert code == 0, output
        outputs.append(output)
    assert tree(out) == EXPECTED
    assert "5 restored from the discs, 1 moved" in outputs[1]  # cat.jpg went from Pets to Animals


def test_a_second_run_changes_nothing(series, tmp_path):
    out = tmp_path / "restored"
    assert run("--into", out, *series)[0] == 0

    def stamps():
        return {
            p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file() and STATE not in str(p)
        }

    before = stamps()
    code, output = run("--into", out, *series)
    assert code == 0, output
    assert "0 restored from the discs, 0 moved, 0 linked, 12 already in place; 1 older versions" in output
    assert stamps() == before


def test_a_missing_disc_is_reported_by_number_and_the_rest_restored(series, tmp_path):
    out = tmp_path / "restored"
    code, output = run("--into", out, series[0], series[2])
    assert code == 1
    assert "disc 2 is missing" in problems(output)
    assert "'IMG_1.jpg': version 2 is on disc 2, which was not given; version 1 restored" in problems(output)
    assert (out / "Travel/Roma/IMG_1.jpg").read_bytes() == A1
    assert (out / "Travel/Roma/IMG_1.jpg.xmp").read_bytes() == A_SIDE
    # Disc 2 arrives later: applied in its place in the series, not on top of disc 3.
    code, output = run("--into", out, series[1])
    assert code == 0, output
    assert tree(out) == EXPECTED


def test_a_file_deleted_before_its_last_part_is_not_reported_missing(tmp_path):
    whole = random.Random(9).randbytes(3000)
    first = whole[:2000]
    part = {
        **{"item": A, "version": 1, "original_name": "film.mov", "albums": [], "content_type": "video/quicktime"},
        **{"path": "data/film.mov", "links": [], "sidecar": None, "sidecar_links": []},
        **{"size": 3000, "sha256": sha(whole), "completes": False, "change": None, "previous_disc": None},
        "part": {"number": 1, "count": 2, "path": "data/film.mov.001", "offset": 0, "size": 2000, "sha256": sha(first)},
        "parts": [
            {"number": 1, "offset": 0, "size": 2000, "sha256": sha(first), "disc": 1, "path": "data/film.mov.001"},
            {"number": 2, "offset": 2000, "size": 1000, "sha256": sha(whole[2000:]), "disc": None, "path": None},
        ],
    }
    d1 = make_disc(tmp_path / "disc1", 1, files=[item(B, 1, "cat.jpg", [["Pets"]], BB)], parts=[(part, first)])
    # Disc 1 alone: the last part may yet come.
    code, output = run("--into", tmp_path / "early", d1)
    assert code == 1 and "'film.mov' is split across discs and part 2 of 2 not given" in problems(output)
    # Disc 2 says the file was deleted before its last part: nothing is missing.
    deleted = [{"item": A, "original_name": "film.mov", "last_disc": None, "version": 1}]
    d2 = make_disc(tmp_path / "disc2", 2, deleted=deleted)
    code, output = run("--into", tmp_path / "restored", d1, d2)
    assert (code, problems(output)) == (0, []), output
    assert tree(tmp_path / "restored") == {"Pets/cat.jpg": BB, "Pets/cat.jpg.xmp": f"<xmp {B} v1/>".encode()}


def test_require_all_restores_nothing_while_a_disc_is_missing(series, tmp_path):
    out = tmp_path / "restored"
    code, output = run("--into", out, "--require-all", series[0], series[2])
    assert code == 1
    assert problems(output)[:2] == ["disc 2 is missing", "--require-all: nothing restored while a disc is missing"]
    assert tree(out) == {}


def test_deletions_are_applied_only_when_asked_and_never_erase(series, tmp_path):
    out = tmp_path / "restored"
    assert run("--into", out, *series)[0] == 0
    code, output = run("--into", out, "--apply-deletions", series[2])
    assert code == 0, output
    expected = dict(EXPECTED)
    expected["Deleted items/gone.jpg"] = expected.pop("gone.jpg")
    expected["Deleted items/gone.jpg.xmp"] = expected.pop("gone.jpg.xmp")
    assert tree(out) == expected
    # Applied once, it stays applied.
    assert run("--into", out, *series)[0] == 0
    assert tree(out) == expected


def test_apply_deletions_on_a_fresh_restore(series, tmp_path):
    out = tmp_path / "restored"
    code, output = run("--into", out, "--apply-deletions", *series)
    assert code == 0, output
    assert (out / "Deleted items/gone.jpg").read_bytes() == CC
    assert not (out / "gone.jpg").exists()


def test_a_dry_run_checks_everything_and_writes_nothing(series, tmp_path):
    out = tmp_path / "restored"
    code, output = run("--into", out, "--dry-run", *series)
    assert code == 0, output
    assert "would be restored: Travel/Roma/IMG_1.jpg" in output
    assert not out.exists()


def test_discs_of_two_series_are_refused(series, tmp_path):
    other = make_disc(tmp_path / "other", 1, files=[item(B, 1, "x.jpg", [], b"x")], series="discsub-10")
    out = tmp_path / "restored"
    code, output = run("--into", out, series[0], other)
    assert code == 1
    assert problems(output) == [
        "these discs are of different series (discsub-10, discsub-9): restore one series at a time"
    ]
    assert not out.exists()


def test_a_folder_of_another_series_is_refused(series, tmp_path):
    out = tmp_path / "restored"
    assert run("--into", out, series[0])[0] == 0
    other = make_disc(tmp_path / "other", 2, files=[item(B, 1, "x.jpg", [], b"x")], series="discsub-10")
    code, output = run("--into", out, other)
    assert code == 1 and "holds discs of series discsub-9, not discsub-10" in output


def test_a_file_it_did_not_write_is_never_overwritten(series, tmp_path):
    out = tmp_path / "restored"
    (out / "Pets").mkdir(parents=True)
    (out / "Pets/new.png").write_bytes(b"mine")
    code, output = run("--into", out, *series)
    assert code == 1
    assert problems(output) == [
        "Pets/new.png: a different file is already there: left alone (move it away and run again)"
    ]
    assert (out / "Pets/new.png").read_bytes() == b"mine"


def test_the_management_command_is_the_same_tool(series, tmp_path):
    out = tmp_path / "restored"
    stdout = io.StringIO()
    call_command("restore_discs", *map(str, series), "--into", str(out), stdout=stdout, stderr=io.StringIO())
    assert tree(out) == EXPECTED
    assert "OK: every file verified" in stdout.getvalue()
    with pytest.raises(CommandError):
        call_command("restore_discs", str(series[2]), "--into", str(tmp_path / "x"), stdout=io.StringIO())


# --- names ------------------------------------------------------------------------------------


def test_original_names_are_used_where_this_system_allows_them(tmp_path):
    nfd = unicodedata.normalize("NFD", "Café.jpg")
    hostile = {
        "1": (nfd, [["Albüm"]]),
        "2": ("Case.JPG", [["Albüm"]]),
        "3": ("case.jpg", [["Albüm"]]),
        "4": ("same.jpg", [["albüm"]]),
        "5": ("same.jpg", [["Albüm"]]),
        "6": ('a/b\\c:d*e?f"g.jpg', [[".."]]),
        "7": ("tab\there.jpg", [["/etc"]]),
        "8": ("x" * 300 + ".jpg", [["Older versions"]]),
        "9": ("🎉 party 👨‍👩‍👧.jpg", []),
    }
    requests = [names.NameRequest(key=k, folders=tuple(a[0]) if a else (), name=n) for k, (n, a) in hostile.items()]
    disc_paths = names.assign_disc_paths(requests)
    files = [
        item(k, 1, n, a, k.encode() * 10, paths=[disc_paths[k]], sidecar_path=f"data/sidecars/{k}.xmp")
        for k, (n, a) in hostile.items()
    ]
    disc = make_disc(tmp_path / "disc", 1, files=files)
    out = tmp_path / "restored"
    code, output = run("--into", out, folder_to_iso(disc, tmp_path / "d.iso"))
    assert code == 0, output
    restored = {data[:1].decode(): path for path, data in tree(out).items() if not path.endswith(".xmp")}
    safe = {k: disc_paths[k].rsplit("/", 1)[-1] for k in hostile}
    assert restored == {
        "1": "Albüm/Café.jpg",  # NFC
        "2": "Albüm/Case.JPG",
        "3": "Albüm/case (2).jpg",  # one file on Windows and macOS: kept apart
        "4": "albüm (2)/same.jpg",
        "5": "Albüm/same.jpg",
        "6": f"{disc_paths['6'].split('/')[1]}/{safe['6']}",  # not a legal name here: the disc's safe one
        "7": f"{disc_paths['7'].split('/')[1]}/{safe['7']}",
        "8": f"Older versions (2)/{safe['8']}",  # never mixed with the kept versions
        "9": "🎉 party 👨‍👩‍👧.jpg",
    }
    sidecars = {data: path for path, data in tree(out).items() if path.endswith(".xmp")}
    for key, path in restored.items():
        sidecar = sidecars[f"<xmp {key} v1/>".encode()]
        assert sidecar.rpartition("/")[0] == path.rpartition("/")[0]
        assert sidecar == path + ".xmp" or key == "8"  # too long a name for ".xmp" more


@pytest.mark.parametrize("together", [True, False])
def test_a_new_version_under_a_new_name_replaces_the_old_name(tmp_path, together):
    d1 = make_disc(tmp_path / "d1", 1, files=[item("x", 1, "scan.jpg", [["A"]], b"jpeg", sidecar=b"<1/>")])
    d2 = make_disc(tmp_path / "d2", 2, files=[item("x", 2, "scan.png", [["A"]], b"png", sidecar=b"<2/>")])
    out = tmp_path / "restored"
    for discs in [[d1, d2]] if together else [[d1], [d2]]:
        code, output = run("--into", out, *discs)
        assert code == 0, output
    assert tree(out) == {
        "A/scan.png": b"png",
        "A/scan.png.xmp": b"<2/>",
        "Older versions/A/scan (version 1 from disc 1).jpg": b"jpeg",
    }


def test_a_users_own_xmp_file_keeps_its_name_and_the_sidecar_yields(tmp_path):
    photo = item("photo", 1, "IMG_1.jpg", [["A"]], b"photo", sidecar=b"<xmp photo/>")
    own = item("own", 1, "IMG_1.jpg.xmp", [["A"]], b"<my own xmp/>", sidecar=b"<xmp own/>", sidecar_path="data/A/o.xmp")
    photo["sidecar_path"] = "data/A/IMG_1.jpg (2).xmp"
    out = tmp_path / "restored"
    code, output = run("--into", out, make_disc(tmp_path / "disc", 1, files=[photo, own]))
    assert code == 0, output
    assert tree(out) == {
        "A/IMG_1.jpg": b"photo",
        "A/IMG_1.jpg (2).xmp": b"<xmp photo/>",
        "A/IMG_1.jpg.xmp": b"<my own xmp/>",
        "A/IMG_1.jpg.xmp.xmp": b"<xmp own/>",
    }


# --- damage ---------------------------------------------------------------------------------------


def flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)
        fh.seek(offset)
        fh.write(bytes([byte[0] ^ 0x01]))


def test_a_flipped_byte_in_an_image_is_named_and_not_restored(series, tmp_path):
    image = folder_to_iso(series[0], tmp_path / "disc1.iso")
    (offset, length), *_ = restore.IsoImage(str(image)).entries["data/Pets/cat.jpg"][1]
    flip(image, offset + length // 2)
    out = tmp_path / "restored"
    code, output = run("--into", out, image)
    assert code == 1
    found = problems(output)
    assert len(found) == 1 and found[0].startswith("disc 1: data/Pets/cat.jpg is damaged: sha256 ")
    assert not (out / "Pets/cat.jpg").exists()
    assert (out / "Travel/Roma/IMG_1.jpg").read_bytes() == A1


def test_a_damaged_disc_with_recovery_data_says_how_to_repair_it(series, tmp_path):
    par2 = require_tool("par2")
    disc = series[0]
    payload = sorted(p.relative_to(disc).as_posix() for p in (disc / "data").rglob("*") if p.is_file())
    (disc / "recovery").mkdir()
    subprocess.run(
        [par2, "create", "-q", "-r10", "-B", str(disc), "recovery/payload.par2", *payload], cwd=disc, check=True
    )
    flip(disc / "data/Pets/cat.jpg", 100)
    out = tmp_path / "restored"
    code, output = run("--into", out, disc)
    assert code == 1
    hint = [p for p in problems(output) if "par2 repair" in p]
    assert hint == [
        f"disc 1: to repair it, copy the disc to a folder you can write to if it is read-only, run: "
        f"par2 repair -B {disc} {disc}/recovery/payload.par2; then run this restore again"
    ]
    command = hint[0].split("run: ", 1)[1].split("; then")[0]
    subprocess.run(shlex.split(command), check=True, capture_output=True)
    code, output = run("--into", out, disc)
    assert code == 0, output
    assert (out / "Pets/cat.jpg").read_bytes() == BB


def test_a_damaged_manifest_makes_the_disc_unusable(series, tmp_path):
    manifest = series[0] / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b"cat.jpg", b"dog.jpg"))
    code, output = run("--into", tmp_path / "restored", series[0])
    assert code == 1
    assert problems(output) == [
        f"{series[0]}: manifest.json is damaged (its sha256 differs from tagmanifest-sha256.txt)"
    ]


# --- never outside the folder ------------------------------------------------------------------------


def snapshot(root: Path) -> dict:
    return {
        p.relative_to(root).as_posix(): (os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def test_a_malicious_disc_cannot_write_outside_the_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jpg").write_bytes(b"secret")
    evil = b"evil bytes"
    (outside / "evil.jpg").write_bytes(evil)
    disc = make_disc(
        tmp_path / "evil",
        1,
        files=[
            item("i-dotdot", 1, "escape.jpg", [], evil, paths=["../escape.jpg"]),
            item("i-abs", 1, "passwd", [], evil, paths=["/etc/passwd"]),
            item("i-drive", 1, "x", [], evil, paths=["C:\\x"]),
            item("i-drive2", 1, "x.jpg", [["A"]], evil, paths=["data/C:\\x.jpg"]),
            item("i-back", 1, "y.jpg", [["A"]], evil, paths=["data/..\\..\\y.jpg"]),
            item("i-names", 1, "../../escaped.jpg", [["..", ".."]], b"names", paths=["data/x/y/z.jpg"]),
            item("i-abs-names", 1, "/etc/passwd", [["/tmp"]], b"abs names", paths=["data/tmp/passwd"]),
            item("i-planted", 1, "a.jpg", [["Album"]], b"through a link in the folder"),
            item("i-planted-file", 1, "fine.jpg", [["ok"]], b"onto a link in the folder"),
        ],
    )
    manifest = json.loads((disc / "manifest.json").read_text())
    manifest["files"].append(
        {**manifest["files"][-1], "item": "i-disc-link", "path": "data/link/evil.jpg", "links": [], "sidecar": None}
    )
    manifest["files"][-1].update(sha256=sha(evil), size=len(evil), albums=[["L"]], original_name="evil.jpg")
    manifest["files"].append({**manifest["files"][-1], "item": "i-disc-file-link", "path": "data/ok/link.jpg"})
    manifest["files"].append({**manifest["files"][5], "item": "i-side", "sidecar": "../../side.xmp"})
    (disc / "manifest.json").write_text(json.dumps(manifest))
    (disc / "tagmanifest-sha256.txt").unlink()
    bag = (disc / "manifest-sha256.txt").read_text()
    bag += f"{sha(evil)}  data/link/evil.jpg\n{sha(evil)}  data/ok/link.jpg\n"
    (disc / "manifest-sha256.txt").write_text(bag)
    (disc / "data/link").symlink_to(outside)
    (disc / "data/ok/link.jpg").symlink_to(outside / "evil.jpg")
    out = tmp_path / "work" / "restored"
    out.mkdir(parents=True)
    (out / "Album").symlink_to(outside)
    (out / "ok").mkdir()
    (out / "ok/fine.jpg").symlink_to(outside / "secret.jpg")
    before = snapshot(tmp_path)

    code, output = run("--into", out, disc)

    assert code == 1
    after = snapshot(tmp_path)
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert changed and all(p.startswith("work/restored/") for p in changed), changed
    assert snapshot(outside) == {"evil.jpg": evil, "secret.jpg": b"secret"}
    found = problems(output)
    for item_id, path in [
        ("i-dotdot", "../escape.jpg"),
        ("i-abs", "/etc/passwd"),
        ("i-drive", "C:\\x"),
        ("i-drive2", "data/C:\\x.jpg"),
        ("i-back", "data/..\\..\\y.jpg"),
    ]:
        start = f"disc 1: manifest.json entry for item {item_id} ({path!r}): unsafe path {path!r}"
        assert any(p.startswith(start) and p.endswith(": skipped") for p in found), (start, found)
    for text in [
        "disc 1: manifest.json entry for item i-side ('data/x/y/z.jpg'): unsafe sidecar path '../../side.xmp': skipped",
        "Album/a.jpg: Album is a symbolic link: not followed, nothing written through it",
        "ok/fine.jpg: a symbolic link is there: left alone",
    ]:
        assert text in found, found
    assert any(p.startswith("disc 1: data/link/evil.jpg cannot be read: ") for p in found), found
    assert any(p.startswith("disc 1: data/ok/link.jpg cannot be read: ") for p in found), found
    restored = tree(out)
    assert restored["x/y/z.jpg"] == b"names"  # ".." is no folder name: the disc's safe names
    assert restored["tmp/passwd"] == b"abs names"
    assert not any(data == evil for data in restored.values())


# --- interrupted and resumed --------------------------------------------------------------------


def test_an_interruption_mid_file_is_finished_by_running_again(series, tmp_path, monkeypatch):
    calls = []
    real = restore.FolderDisc.chunks

    def chunks(self, path):
        size, blocks = real(self, path)
        calls.append(path)

        def interrupted():
            yield next(blocks)
            if len(calls) == 3:
                raise KeyboardInterrupt
            yield from blocks

        return size, interrupted()

    monkeypatch.setattr(restore.FolderDisc, "chunks", chunks)
    monkeypatch.setattr(restore, "BLOCK", 100)
    out = tmp_path / "restored"
    code, output = run("--into", out, *series)
    assert code == 1 and "interrupted: run the same command again to finish" in problems(output)
    assert all(EXPECTED.get(path) == data for path, data in tree(out).items())  # nothing half-written in place
    monkeypatch.undo()
    code, output = run("--into", out, *series)
    assert code == 0, output
    assert tree(out) == EXPECTED
    assert os.listdir(out / STATE / "tmp") == []


def test_a_file_set_aside_just_before_a_kill_is_not_lost(tmp_path):
    d1 = make_disc(tmp_path / "d1", 1, files=[item("x", 1, "a.jpg", [["A"]], b"v1", sidecar=b"<1/>")])
    d2 = make_disc(tmp_path / "d2", 2, files=[item("x", 2, "a.jpg", [["A"]], b"v2", sidecar=b"<2/>")])
    out = tmp_path / "restored"
    assert run("--into", out, d1)[0] == 0
    # Killed after moving version 1 aside for version 2, before writing that down:
    os.replace(out / "A/a.jpg", out / STATE / "tmp/4242-1.part")
    (out / STATE / "tmp/4242-2.part").write_bytes(b"half a cop")
    code, output = run("--into", out, d2)  # disc 1 is not at hand this time
    assert code == 0, output
    assert tree(out) == {
        "A/a.jpg": b"v2",
        "A/a.jpg.xmp": b"<2/>",
        "Older versions/A/a (version 1 from disc 1).jpg": b"v1",
    }
    assert os.listdir(out / STATE / "tmp") == []


def test_a_restore_killed_mid_file_completes_when_run_again(tmp_path):
    rng = random.Random(3)
    big = [rng.randbytes(48 * 1024 * 1024 + n) for n in range(4)]
    files = [item(f"big-{n}", 1, f"movie {n}.mov", [["Films"]], data) for n, data in enumerate(big)]
    disc = make_disc(tmp_path / "disc", 1, files=files)
    out = tmp_path / "restored"
    command = [sys.executable, "-I", str(TOOL), "--into", str(out), str(disc)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = out / STATE / "tmp"
    deadline = time.monotonic() + 60
    killed_mid_file = False
    while process.poll() is None and time.monotonic() < deadline:
        done = len(list((out / "Films").glob("*.mov"))) if (out / "Films").is_dir() else 0
        parts = list(staging.glob("*.part")) if staging.is_dir() else []
        if done >= 1 and any(p.stat().st_size > 1 << 20 for p in parts):
            process.send_signal(signal.SIGKILL)
            killed_mid_file = True
            break
    process.wait()
    assert killed_mid_file, "the restore finished before it could be killed"
    partial = tree(out)
    assert 1 <= len([p for p in partial if p.endswith(".mov")]) < 4
    assert all(data in (*big, *(f["sidecar"] for f in files)) for data in partial.values())

    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert tree(out) == {
        **{f"Films/movie {n}.mov": data for n, data in enumerate(big)},
        **{f"Films/movie {n}.mov.xmp": f["sidecar"] for n, f in enumerate(files)},
    }
    assert os.listdir(staging) == []


# --- the tool itself --------------------------------------------------------------------------


def python38() -> str | None:
    for candidate in ("python3.8", os.path.expanduser("~/.pyenv/versions/3.8.18/bin/python3")):
        found = shutil.which(candidate)
        if found and subprocess.run([found, "-c", "import sys; assert sys.version_info[:2] == (3, 8)"]).returncode == 0:
            return found
    return None


@pytest.mark.parametrize("tool", ["restore.py", "repair.py"])
def test_the_tool_is_python_38_and_standard_library_only(tool):
    source = (TOOL.parent / tool).read_text()
    tree_ = ast.parse(source, feature_version=(3, 8))
    imported = {a.name.split(".")[0] for n in ast.walk(tree_) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree_) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    for newer in ("removeprefix", "removesuffix", "zoneinfo", "tomllib", "datetime.UTC"):
        assert newer not in source
    # One readable file: it travels alone (1,250: joining files split across discs came in issue #4;
    # 1,550: the manifest's schema and linear-time naming, issue #12; 1,650: repairing an image or drive first, #13).
    assert len(source.splitlines()) < 1650


@pytest.mark.parametrize("interpreter", ["python3", "python3.8"])
def test_the_tool_runs_alone_under_plain_python(series, tmp_path, interpreter):
    found = python38() if interpreter == "python3.8" else PLAIN_PYTHON
    if found is None:
        pytest.skip(f"no {interpreter} here (Debian has none; the syntax check above still runs)")
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    shutil.copy(TOOL, lonely / "restore.py")
    out = tmp_path / "restored"
    result = subprocess.run(
        [found, "-I", "restore.py", "--into", str(out), *map(str, series)],
        cwd=lonely,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert tree(out) == EXPECTED
    assert "restoring: 100%" in result.stderr


# --- the ISO 9660 reader -----------------------------------------------------------------------


def test_the_image_reader_finds_every_name_of_a_hostile_deep_image(tmp_path):
    hostile = [
        "Café.jpg",
        "🎉 👨‍👩‍👧.jpg",
        "x" * 260 + ".jpg",
        'a/b\\c:d*e?f"g|.jpg',
        "tab\t.jpg",
        "...",
        "CON",
        "ü" * 200,
    ]
    requests = [
        names.NameRequest(key=n, folders=tuple(f"L{d}" for d in range(n * 2)), name=name)
        for n, name in enumerate(hostile)
    ]
    rng = random.Random(2)
    files = [
        DiscFile.from_bytes(p, rng.randbytes(rng.randrange(0, 5000)))
        for p in names.assign_disc_paths(requests).values()
    ]
    shared = DiscFile.from_bytes("data/A/shared.bin", rng.randbytes(300_000))
    files.append(DiscFile(shared.path, shared.size, shared.sha256, shared.open, links=("data/B/shared.bin",)))
    image = tmp_path / "hostile.iso"
    iso.write_image(files, image, "HOSTILE", 0)
    reader = restore.IsoImage(str(image))
    assert {p for p, (kind, _) in reader.entries.items() if kind == "file"} == {p for f in files for p in f.all_paths}
    for f in files:
        for path in f.all_paths:
            size, blocks = reader.chunks(path)
            digest = hashlib.sha256()
            for block in blocks:
                digest.update(block)
            assert (size, digest.hexdigest()) == (f.size, f.sha256), path


def test_garbage_is_not_an_image(tmp_path):
    garbage = tmp_path / "garbage.iso"
    garbage.write_bytes(b"\x00" * 100_000)
    code, output = run("--into", tmp_path / "out", garbage)
    assert code == 1 and problems(output) == [f"{garbage}: not an ISO 9660 image"]


@pytest.mark.slow
def test_the_image_reader_reads_a_file_over_4_gib_whole(image_over_4_gib):
    big, marks, size = image_over_4_gib.big, image_over_4_gib.marks, image_over_4_gib.big.size
    assert 2**32 - 2049 in marks  # a mark across the end of the first of its two records
    reader = restore.IsoImage(str(image_over_4_gib.image))
    for path in big.all_paths:
        kind, extents = reader.entries[path]
        assert kind == "file" and len(extents) == 2 and sum(n for _, n in extents) == size
    got, position, digest = 0, 0, hashlib.sha256()
    size_read, blocks = reader.chunks("data/w/same.mov")
    found = {}
    for block in blocks:
        digest.update(block)
        for offset, mark in marks.items():
            if position <= offset < position + len(block):
                found[offset] = block[offset - position : offset - position + len(mark)]
        position += len(block)
        got += len(block)
    assert size_read == got == size and digest.hexdigest() == big.sha256
    assert all(found[o] == m or m.startswith(found[o]) for o, m in marks.items())


# --- end to end: real discs built by the engine --------------------------------------------------


def build_next(owner):
    from exporter import build
    from exporter.models import DiscStatus
    from exporter.planning import plan_next_disc

    planned = plan_next_disc(owner, allow_partial=True)
    assert planned is not None
    disc = build.build_disc(planned.pk)
    assert disc.status == DiscStatus.VERIFIED, disc.last_error
    return build.image_path(disc)


def library_tree(owner, deletions_applied=False) -> dict:
    """What the restore must give: every item of the library as it is now, under
    its albums (deleted ones where they last were, or in Deleted items), plus
    its older versions."""
    from exporter.models import DiscEntry, ItemStatus, MediaItem

    expected = {}
    for item in MediaItem.objects.filter(owner=owner).prefetch_related("albums", "versions"):
        entries = DiscEntry.objects.filter(item=item, kind="file").select_related("disc", "version")
        shipped = {e.version.number: e for e in entries}
        deleted = item.status == ItemStatus.DELETED
        if deleted:
            last = DiscEntry.objects.filter(item=item).exclude(kind="deletion").order_by("-disc__number").first()
            albums, name = [tuple(a) for a in last.metadata["albums"]], last.metadata["original_name"]
        else:
            albums, name = sorted(_album_names(a) for a in item.albums.all()), item.original_name
        prefix = ["Deleted items"] if deleted and deletions_applied else []
        current = max(shipped)
        for album in albums or [()]:
            expected["/".join([*prefix, *album, name])] = _bytes(shipped[current].version)
        for number, entry in shipped.items():
            if number != current:
                stem, ext = os.path.splitext(entry.version.original_name)
                folder = "/".join([*prefix, "Older versions", *(albums[0] if albums else ())])
                label = f"{stem} (version {number} from disc {entry.disc.number}){ext}"
                expected[f"{folder}/{label}"] = _bytes(entry.version)
    return expected


def _album_names(album) -> tuple:
    names_, seen = [], 0
    while album is not None and seen < 100:
        names_.insert(0, album.name)
        album, seen = album.parent, seen + 1
    return tuple(names_)


def _bytes(version) -> bytes:
    from django.core.files.storage import default_storage

    with default_storage.open(version.storage_name, "rb") as fh:
        return fh.read()


def originals(root: Path) -> dict:
    return {p: data for p, data in tree(root).items() if not p.endswith(".xmp")}


@pytest.fixture
def built_series(alice):
    """Three real discs: adds; a new version, a caption edit, a move and an add; a deletion."""
    from exporter import deletion, library
    from tests.factories import add_file, jpeg_bytes

    roma = library.ensure_album_path(alice, ["Travel", "Roma"])
    best = library.ensure_album_path(alice, ["Best of"])
    pets = library.ensure_album_path(alice, ["Pets"])
    animals = library.ensure_album_path(alice, ["Animals"])
    ete = library.ensure_album_path(alice, ["Été"])
    photo = add_file(alice, "IMG_0001.JPG", jpeg_bytes(color=(1, 2, 3)), albums=[roma, best], caption="Colosseum")
    cat = add_file(alice, "cat.jpg", jpeg_bytes(color=(9, 9, 9)), albums=[pets])
    dog = add_file(alice, "dog.jpg", jpeg_bytes(color=(7, 7, 7)), albums=[pets])
    gone = add_file(alice, "gone.jpg", jpeg_bytes(color=(5, 5, 5)))
    add_file(alice, "Café.jpg", jpeg_bytes(color=(3, 3, 3)), albums=[ete])
    images = [build_next(alice)]
    library.replace_bytes(photo, io.BytesIO(jpeg_bytes(color=(200, 100, 0))))
    library.edit_metadata(cat, caption="Minou")
    library.move_item(dog, [animals])
    add_file(alice, "new.png", os.urandom(3000), albums=[pets])
    images.append(build_next(alice))
    deletion.delete_now(gone)
    library.edit_metadata(photo, caption="Colosseum at dusk")
    images.append(build_next(alice))
    return images


def restored_equals_library(out: Path, alice, deletions_applied=False) -> None:
    assert originals(out) == library_tree(alice, deletions_applied)
    for path in originals(out):
        if not path.startswith("Older versions/"):
            assert (out / (path + ".xmp")).is_file(), path
    assert b"Colosseum at dusk" in (out / "Best of/IMG_0001.JPG.xmp").read_bytes()
    assert b"Minou" in (out / "Pets/cat.jpg.xmp").read_bytes()
    assert not (out / "Pets/dog.jpg").exists() and (out / "Animals/dog.jpg").is_file()


@pytest.mark.django_db
def test_real_discs_restore_from_their_images_in_any_order(built_series, alice, tmp_path):
    out = tmp_path / "restored"
    code, output = run("--into", out, built_series[1], built_series[2], built_series[0])
    assert code == 0, output
    restored_equals_library(out, alice)
    assert (out / "gone.jpg").is_file()
    assert "deleted on disc 3: gone.jpg (kept; --apply-deletions moves it to 'Deleted items')" in output
    assert (out / "Best of/IMG_0001.JPG").stat().st_ino == (out / "Travel/Roma/IMG_0001.JPG").stat().st_ino


@pytest.mark.django_db
def test_real_discs_restore_from_7z_extracted_folders(built_series, alice, tmp_path):
    seven = require_tool("7z", "p7zip-full")
    folders = []
    for image in built_series:
        folder = tmp_path / image.stem
        subprocess.run([seven, "x", "-y", f"-o{folder}", str(image)], check=True, capture_output=True)
        folders.append(folder)
    out = tmp_path / "restored"
    code, output = run("--into", out, "--apply-deletions", *reversed(folders))
    assert code == 0, output
    assert (out / "Deleted items/gone.jpg").is_file() and not (out / "gone.jpg").exists()
    restored_equals_library(out, alice, deletions_applied=True)


@pytest.mark.django_db
def test_the_copy_on_the_disc_restores_with_plain_python(built_series, alice, tmp_path):
    first = restore.IsoImage(str(built_series[0]))
    if first.kind("restore.py") != "file":
        pytest.skip("the discs do not carry restore.py yet")
    tool = tmp_path / "from-disc" / "restore.py"
    tool.parent.mkdir()
    tool.write_bytes(first.read_small("restore.py"))
    assert tool.read_bytes() == TOOL.read_bytes()
    out = tmp_path / "restored"
    command = [PLAIN_PYTHON, "-I", str(tool), "--into", str(out)]
    result = subprocess.run([*command, str(built_series[0]), str(built_series[2])], capture_output=True, text=True)
    assert result.returncode == 1
    assert "problem: disc 2 is missing" in result.stdout.splitlines()
    result = subprocess.run([*command, *map(str, built_series)], capture_output=True, text=True, env={})
    assert result.returncode == 0, result.stdout + result.stderr
    restored_equals_library(out, alice)
