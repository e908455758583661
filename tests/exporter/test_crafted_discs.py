"""Crafted discs (tests/exporter/crafted_discs.py) against the restore tool,
run as it runs on a subscriber's computer (``python3 -I`` on a copy outside
the project), and against ``manage.py verify_disc``: each is refused with a
message naming what is wrong, in bounded time and memory, and nothing says OK
without having checked the payload against manifest.json."""

import os
import resource
import shutil
import subprocess
import time
import unicodedata
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from exporter import names
from exporter.disc_tools import restore
from tests.exporter import crafted_discs

pytestmark = pytest.mark.adversarial

TOOL = Path(restore.__file__)
PLAIN_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")

# What the restore tool says about each refused disc (a part of one "problem:" line).
SAYS = {
    "huge-disc-number": 'does not match its schema: catalog["item-far"].disc: expected an integer from 1 to 1000000',
    "deep-nesting": "does not match its schema: expected at most 64 levels of nesting, found more",
    "files-not-a-list": "does not match its schema: files: expected a list of at most 10000000, found 'notalist'",
    "payload-not-described": "data/Album/photo.jpg: in manifest-sha256.txt, not in manifest.json: skipped",
    "manifest-disagrees": "data/Album/photo.jpg: manifest.json and manifest-sha256.txt disagree: skipped",
    "long-number": "does not match its schema: expected numbers of at most 19 digits, found 100000",
    "open-string": "manifest.json is not readable JSON (Unterminated string",
}
# What verify_disc finds: (path, a part of what it found).
FINDS = {
    "huge-disc-number": ("manifest.json", 'catalog["item-far"].disc: expected an integer from 1 to 1000000'),
    "deep-nesting": ("manifest.json", "expected at most 64 levels of nesting"),
    "files-not-a-list": ("manifest.json", "files: expected a list"),
    "payload-not-described": ("data/Album/photo.jpg", "only in manifest-sha256.txt"),
    "manifest-disagrees": ("data/Album/photo.jpg", f"sha256 {crafted_discs.sha(crafted_discs.PHOTO)}"),
    "long-number": ("manifest.json", "expected numbers of at most 19 digits"),
    "open-string": ("manifest.json", "manifest.json is not readable JSON"),
}


@pytest.fixture(scope="module")
def lonely_tool(tmp_path_factory) -> Path:
    """restore.py alone in a folder outside the project, as it is on a disc."""
    folder = tmp_path_factory.mktemp("lonely")
    shutil.copy(TOOL, folder / "restore.py")
    return folder / "restore.py"


def disc(case: str, form: str, tmp_path: Path) -> Path:
    folder = crafted_discs.craft(case, tmp_path / case)
    return crafted_discs.as_iso(folder, tmp_path / f"{case}.iso") if form == "iso" else folder


def run_tool(tool: Path, *discs: Path, into: Path, limit_bytes: int | None = None, timeout: float = 60):
    def limit() -> None:  # in the child only
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return subprocess.run(
        [PLAIN_PYTHON, "-I", tool.name, "--into", str(into), *map(str, discs)],
        cwd=tool.parent,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"]},
        timeout=timeout,
        preexec_fn=limit if limit_bytes else None,
    )


def timed_run(case: str, tool: Path, tmp_path: Path, **limits):
    """(the run of the tool on the folder of ``case`` into tmp_path/restored, its seconds)."""
    target = disc(case, "folder", tmp_path)
    started = time.monotonic()
    result = run_tool(tool, target, into=tmp_path / "restored", **limits)
    return result, time.monotonic() - started


def problem_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("problem: ")]


@pytest.mark.parametrize("form", ["folder", "iso"])
@pytest.mark.parametrize("case", list(crafted_discs.REFUSED))
def test_the_restore_tool_refuses_a_crafted_disc_naming_what_is_wrong(case, form, lonely_tool, tmp_path):
    target = disc(case, form, tmp_path)
    result = run_tool(lonely_tool, target, into=tmp_path / "restored")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "OK" not in result.stdout, result.stdout + result.stderr
    assert any(SAYS[case] in line for line in problem_lines(result.stdout)), result.stdout
    restored = tmp_path / "restored"
    assert not any(p.is_file() and ".discsub-restore" not in p.parts for p in restored.rglob("*"))


@pytest.mark.parametrize("form", ["folder", "iso"])
@pytest.mark.parametrize("case", list(crafted_discs.REFUSED))
def test_verify_disc_refuses_a_crafted_disc_naming_what_is_wrong(case, form, tmp_path, capsys):
    target = disc(case, form, tmp_path)
    with pytest.raises(CommandError, match="problem"):
        call_command("verify_disc", str(target))
    out = capsys.readouterr().out
    path, found = FINDS[case]
    assert any(line.startswith(f"{path}: ") and found in line for line in out.splitlines()), out
    assert "OK" not in out


def test_a_disc_number_of_ten_to_the_twelve_is_refused_within_300_mb(lonely_tool, tmp_path):
    # The tool once took 10.5 GB here: now the schema refuses the number before anything is allocated.
    target = disc("huge-disc-number", "iso", tmp_path)
    result = run_tool(lonely_tool, target, into=tmp_path / "restored", limit_bytes=300 * 1024 * 1024)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "MemoryError" not in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert any(SAYS["huge-disc-number"] in line for line in problem_lines(result.stdout)), result.stdout


def test_folders_that_claim_the_whole_image_are_refused_within_the_images_size(lonely_tool, tmp_path):
    # 7 nested folders each claiming the 42 MB image: 309 MB before (each held while the next was read).
    image = crafted_discs.swollen_folders(tmp_path / "swollen.iso")
    result = run_tool(lonely_tool, image, into=tmp_path / "restored", limit_bytes=200 * 1024 * 1024)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    said = "a damaged directory tree (its folders are larger than the image)"
    assert problem_lines(result.stdout) == [f"problem: {image}: {said}"], result.stdout
    with pytest.raises(CommandError):
        call_command("verify_disc", str(image))


def test_a_million_missing_discs_are_one_line_said_at_once(lonely_tool, tmp_path):
    result, elapsed = timed_run("a-million-discs", lonely_tool, tmp_path, limit_bytes=300 * 1024 * 1024, timeout=30)
    assert result.returncode == 1, result.stdout + result.stderr
    assert problem_lines(result.stdout) == ["problem: discs 2 to 1000000 are missing"], result.stdout
    assert (tmp_path / "restored" / "Album" / "photo.jpg").read_bytes() == crafted_discs.PHOTO
    assert elapsed < 10, f"{elapsed:.1f} s"


def test_sixty_thousand_problems_are_reported_in_linear_time(lonely_tool, tmp_path):
    result, elapsed = timed_run("many-problems", lonely_tool, tmp_path, timeout=60)
    assert result.returncode == 1, result.stderr
    unsafe = [line for line in problem_lines(result.stdout) if ": unsafe path '../evil-" in line]
    assert len(unsafe) == 60_000
    assert (tmp_path / "restored" / "Album" / "photo.jpg").read_bytes() == crafted_discs.PHOTO
    # Quadratic de-duplication took 29 s here; the whole run takes about 3 s.
    assert elapsed < 12, f"{elapsed:.1f} s"


def test_five_thousand_items_of_one_name_are_named_in_linear_time(lonely_tool, tmp_path):
    result, elapsed = timed_run("one-name-many-times", lonely_tool, tmp_path, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    album = tmp_path / "restored" / "Album"
    assert len([p for p in album.iterdir() if not p.name.endswith(".xmp")]) == 5000
    assert (album / "photo (5000).jpg").read_bytes() == crafted_discs.PHOTO
    # Each name was looked for from "(2)" again, and every item's names among all: 100 s; now under 2 s.
    assert elapsed < 15, f"{elapsed:.1f} s"


def test_a_disc_that_says_ok_has_checked_its_payload(lonely_tool, tmp_path, capsys):
    # The well-formed twin of the refused discs: the same tools say OK.
    good = crafted_discs.craft("well-formed", tmp_path / "good")
    result = run_tool(lonely_tool, good, into=tmp_path / "restored")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "OK: every file verified"
    call_command("verify_disc", str(good))
    assert capsys.readouterr().out.splitlines()[-1] == "OK: 4 files match the manifest"


# --- bidirectional controls: file names and album names alike ----------------------------


RLO = "\u202e"


def test_the_restore_tool_knows_the_same_bidi_controls_as_the_disc_writer():
    assert restore._BIDI_CONTROLS == names._BIDI_CONTROLS


def test_album_and_file_names_on_the_disc_carry_no_bidi_control(tmp_path):
    folder = crafted_discs.craft("bidi-names", tmp_path / "disc")
    paths = [p.relative_to(folder).as_posix() for p in folder.rglob("*")]
    assert "data/Holiday \ufffdgpj.exe/photo\ufffdgpj.exe" in paths
    assert not any(ord(c) in names._BIDI_CONTROLS for p in paths for c in p)


@pytest.mark.parametrize("form", ["folder", "iso"])
def test_the_restore_tool_recreates_no_bidi_control_in_album_or_file_names(form, lonely_tool, tmp_path):
    target = disc("bidi-names", form, tmp_path)
    result = run_tool(lonely_tool, target, into=tmp_path / "restored")
    assert result.returncode == 0, result.stdout + result.stderr
    restored = sorted(
        unicodedata.normalize("NFC", p.relative_to(tmp_path / "restored").as_posix())
        for p in (tmp_path / "restored").rglob("*")
        if ".discsub-restore" not in p.parts
    )
    # The disc's own names: U+FFFD where the override was, as in a file name.
    assert restored == [
        "Holiday \ufffdgpj.exe",
        "Holiday \ufffdgpj.exe/photo\ufffdgpj.exe",
        "Holiday \ufffdgpj.exe/photo\ufffdgpj.exe.xmp",
    ]
    assert (tmp_path / "restored" / "Holiday \ufffdgpj.exe" / "photo\ufffdgpj.exe").read_bytes() == crafted_discs.PHOTO
