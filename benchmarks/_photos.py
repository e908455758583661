"""What the image benchmarks share: a seeded library of photo-sized files.

Photos of 0.2-15 MB (log-uniform sizes, as in a phone library: many small, a
few big) in nested albums, one with a non-ASCII name, plus a few videos of
1-4 % of the set each.  Every file starts with its format's signature (the
import refuses anything else) and goes on with seeded random bytes, which
neither compress nor repeat.  A set is generated once under a work folder,
with the sha256 of each file as an upload computes it, and reused while its
plan stays the same.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

MB = 1_000_000
CHUNK = 8 * 1024 * 1024
DATA_VERSION = 2
SEED = "discsub-bench-1"

# Where photos go: a few albums, some nested, one with a non-ASCII name.
ALBUMS = [
    ("2019", "Summer in Brittany"),
    ("2019", "Summer in Brittany", "Beach"),
    ("2020", "Grandma's 80th"),
    ("2021", "Été à Québec"),
    ("2021", "Été à Québec", "Day 2", "Old town"),
    ("Phone uploads",),
]
PHOTO_MIN, PHOTO_MAX = 0.2 * MB, 15 * MB
VIDEO_SHARE = (0.01, 0.04)  # of the whole set, per video
HEADERS = {
    ".JPG": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    ".MP4": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00",
}


@dataclass
class DataSet:
    name: str
    root: Path
    files: list[dict]  # rel (below root), disc (canonical disc path), size, sha256

    @property
    def payload(self) -> int:
        return sum(f["size"] for f in self.files)

    @property
    def index(self) -> Path:
        return self.root.parent / f"{self.name}.json"


def photo_plan(target: int, seed: str = SEED, videos: int = 3) -> list[tuple[str, int]]:
    """(relative path, size) of photos and ``videos`` videos adding up to about ``target`` bytes."""
    rng = random.Random(f"{seed}:photos")
    plan, total = [], 0
    for n in range(1, videos + 1):
        size = int(target * rng.uniform(*VIDEO_SHARE))
        plan.append((f"Videos/VID_{n:04d}.MP4", size))
        total += size
    n = 0
    while total < target:
        n += 1
        size = int(math.exp(rng.uniform(math.log(PHOTO_MIN), math.log(PHOTO_MAX))))
        size = min(size, max(target - total, int(PHOTO_MIN)))
        album = "/".join(rng.choice(ALBUMS))
        plan.append((f"{album}/IMG_{n:05d}.JPG", size))
        total += size
    return plan


def _write_random(path: Path, size: int, seed: str, bar) -> str:
    """Write the signature of ``path``'s kind, then seeded random bytes, ``size`` in all; their sha256."""
    rng = random.Random(seed)
    sha = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    head = HEADERS.get(path.suffix.upper(), b"")[:size]
    with open(tmp, "wb") as out:
        out.write(head)
        sha.update(head)
        left = size - len(head)
        bar.update(len(head))
        while left:
            data = rng.randbytes(min(CHUNK, left))
            sha.update(data)
            out.write(data)
            left -= len(data)
            bar.update(len(data))
    os.replace(tmp, path)
    return sha.hexdigest()


def _reusable(index: Path, params: dict, root: Path) -> list[dict] | None:
    try:
        saved = json.loads(index.read_text())
    except (OSError, ValueError):
        return None
    if saved.get("params") != json.loads(json.dumps(params)):
        return None
    for f in saved["files"]:
        try:
            if (root / f["rel"]).stat().st_size != f["size"]:
                return None
        except OSError:
            return None
    return saved["files"]


def prepare(workdir: Path, name: str, plan: list[tuple[str, int]], log=print) -> DataSet:
    """The data set ``name``, generated under ``workdir/data`` unless it is there already."""
    from tqdm import tqdm

    from exporter.names import NameRequest, assign_disc_paths

    root = workdir / "data" / name
    index = workdir / "data" / f"{name}.json"
    params = {"version": DATA_VERSION, "seed": SEED, "plan": plan}
    files = _reusable(index, params, root)
    if files is not None:
        log(f"{name}: reusing {len(files)} files under {root}")
        return DataSet(name, root, files)
    if root.exists():
        shutil.rmtree(root)
    disc = assign_disc_paths([NameRequest(rel, tuple(rel.split("/")[:-1]), rel.rsplit("/", 1)[-1]) for rel, _ in plan])
    files = []
    total = sum(size for _, size in plan)
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"generating {name}", file=sys.stderr) as bar:
        for rel, size in plan:
            sha = _write_random(root / rel, size, f"{SEED}:{name}:{rel}", bar)
            files.append({"rel": rel, "disc": disc[rel], "size": size, "sha256": sha})
    os.sync()
    index.write_text(json.dumps({"params": params, "files": files}))
    return DataSet(name, root, files)


def disc_files(data: DataSet) -> list:
    """The set as :class:`exporter.layout.DiscFile` objects read from their local copies."""
    from exporter.layout import DiscFile

    return [
        DiscFile(
            path=f["disc"],
            size=f["size"],
            sha256=f["sha256"],
            open=lambda p=data.root / f["rel"]: open(p, "rb"),
            local_path=str(data.root / f["rel"]),
        )
        for f in data.files
    ]
