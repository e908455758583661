"""Building real discs and extracting them with real readers, for the tests
of what a disc holds (bag, manifest, sidecars, README)."""

import json
import subprocess
from pathlib import Path

from exporter import build
from exporter.models import Disc, DiscStatus
from exporter.planning import plan_next_disc
from tests.tools import require_tool


def next_disc(owner, **kwargs) -> Disc:
    """Plan the owner's next disc and build it; it must verify and measure exactly."""
    planned = plan_next_disc(owner, allow_partial=True, **kwargs)
    assert planned is not None, "nothing to plan"
    disc = build.build_disc(planned.pk)
    assert disc.status == DiscStatus.VERIFIED, disc.last_error
    assert disc.image_size == disc.planned_sectors * 2048, "planning did not measure the image exactly"
    return disc


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def extract_7z(image: Path, out: Path) -> Path:
    """The UDF view, as 7-Zip extracts it."""
    seven = require_tool("7z", "p7zip-full")
    _run([seven, "x", "-y", f"-o{out}", str(image)])
    return out


def extract_xorriso(image: Path, out: Path) -> Path:
    """The Rock Ridge view, as xorriso extracts it."""
    xorriso = require_tool("xorriso")
    _run([xorriso, "-osirrox", "on", "-indev", str(image), "-extract", "/", str(out)])
    # xorriso keeps the disc's read-only modes; let pytest clean up.
    subprocess.run(["chmod", "-R", "u+w", str(out)], check=True)
    return out


def extract_both(disc: Disc, tmp_path: Path) -> dict[str, Path]:
    image = build.image_path(disc)
    stem = f"disc{disc.number}"
    return {
        "7z": extract_7z(image, tmp_path / f"{stem}-7z"),
        "xorriso": extract_xorriso(image, tmp_path / f"{stem}-xorriso"),
    }


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text("utf-8"))


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
