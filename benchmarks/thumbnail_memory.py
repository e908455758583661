"""Peak memory of making a thumbnail of hostile and normal images.

    .venv/bin/python benchmarks/thumbnail_memory.py [--workdir /tmp/bench-thumbs] [--clean]

The images are generated once under ``--workdir`` (and reused):

- ``rgba-7700.png``: 7700×7700 RGBA, 230 KB of PNG (225 KiB), 237 MB of pixels (issue 12);
- ``bomb-12000.png``: 12000×12000 RGBA of zeros, 546 KB of PNG, 576 MB of
  pixels: past Pillow's warning (89 MP), under its refusal (179 MP);
- ``header-bomb.png``: a tiny PNG whose header claims 100,000×100,000;
- ``huge-12000x9000.jpg``: a 108 MP JPEG (what draft() is for);
- ``photo-4000x3000.jpg``, ``screenshot-1920x1080.png``: normal photos.

For each image, each contender runs in a fresh process of its own, which
reports its peak RSS (VmHWM) and its RSS before it started (Python, Django
and Pillow loaded):

- ``baseline``: plain Pillow, ``Image.open(path).thumbnail((400, 400))``,
  with Pillow's own limits only;
- ``before: request``: what an upload request did before issue 12: read the
  EXIF date (``getexif()``, which decodes a whole PNG), then make the
  thumbnail in the request (the code as it was, copied below);
- ``after: request``: what an upload request does now: read the EXIF date
  without decoding pixels (the thumbnail is a worker's task);
- ``after: decoder``: the worker's decoder child making the thumbnail
  (``exporter.thumbnails.render_original``), its peak read from /proc.

Figures and findings: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTENDERS = ["baseline", "before: request", "after: request", "after: decoder"]


def _status(pid: int | str = "self") -> dict[str, int]:
    with open(f"/proc/{pid}/status") as fh:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in fh) if k in ("VmRSS", "VmHWM")}


# --- the images ----------------------------------------------------------------------


def make_images(workdir: Path) -> list[Path]:
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from tests.hostile_images import png_header

    Image.MAX_IMAGE_PIXELS = None
    made = []

    def once(name: str, make) -> None:
        path = workdir / name
        if not path.exists():
            partial = path.with_suffix(".part")
            make(partial)
            partial.rename(path)
        made.append(path)

    once("rgba-7700.png", lambda p: Image.new("RGBA", (7700, 7700)).save(p, "PNG"))
    once("bomb-12000.png", lambda p: Image.new("RGBA", (12000, 12000)).save(p, "PNG"))
    once("header-bomb.png", lambda p: p.write_bytes(png_header(100_000, 100_000)))
    once("huge-12000x9000.jpg", lambda p: _noise(Image, 12000, 9000).save(p, "JPEG", quality=85))
    once("photo-4000x3000.jpg", lambda p: _noise(Image, 4000, 3000).save(p, "JPEG", quality=90))
    once("screenshot-1920x1080.png", lambda p: _noise(Image, 1920, 1080).save(p, "PNG"))
    return made


def _noise(Image, width: int, height: int):
    """A photo-like image (smooth gradients with grain): JPEG sizes like a camera's."""
    small = Image.effect_noise((width // 16, height // 16), 60).convert("RGB")
    return small.resize((width, height), Image.Resampling.BICUBIC)


# --- one contender, in its own process ------------------------------------------------


def _setup_django(data_dir: str) -> None:
    os.environ["DISCSUB_DATA_DIR"] = data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "discsub.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _before_request(path: str) -> None:
    """The upload request as it was (exporter/library.py and thumbnails.py at bb807a4)."""
    from PIL import Image, ImageOps

    with open(path, "rb") as fh, Image.open(fh) as img:  # read_capture_date
        exif = img.getexif()
        exif.get_ifd(0x8769)
    with warnings.catch_warnings():  # render_thumbnail
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(path)
    with img:
        if img.format == "JPEG":
            img.draft("RGB", (400, 400))
        if img.width * img.height > 60_000_000:
            raise ValueError("too large to decode safely")
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
        if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(background, rgba).convert("RGB")
        else:
            rgb = img.convert("RGB")
        rgb.thumbnail((400, 400), Image.Resampling.LANCZOS, reducing_gap=3.0)


def measure(contender: str, path: str, data_dir: str) -> dict:
    _setup_django(data_dir)
    from django.core.files.storage import default_storage
    from PIL import Image

    from exporter import library, thumbnails

    name = f"bench/{Path(path).name}"
    if not default_storage.exists(name):
        with open(path, "rb") as fh:
            default_storage.save(name, fh)
    idle = _status()["VmRSS"]
    started = time.perf_counter()
    outcome = "thumbnail"
    try:
        if contender == "baseline":
            Image.open(path).thumbnail((400, 400))
        elif contender == "before: request":
            _before_request(path)
        elif contender == "after: request":
            library.read_capture_date(name)
            outcome = "date read"
        else:
            thumbnails.render_original(name)
    except Exception as exc:
        outcome = f"refused: {exc.__class__.__name__}: {exc}"[:110]
    elapsed = time.perf_counter() - started
    result = {"idle_kb": idle, "peak_kb": _status()["VmHWM"], "seconds": elapsed, "outcome": outcome}
    if contender == "after: decoder":
        child = thumbnails.decoder()._proc
        result["peak_kb"] = _status(child.pid)["VmHWM"] if child and child.poll() is None else None
        result["idle_kb"] = None
    return result


# --- the table -----------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/bench-thumbs")
    parser.add_argument("--clean", action="store_true", help="remove the work folder at the end")
    parser.add_argument("--measure", nargs=3, metavar=("CONTENDER", "PATH", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    workdir = Path(args.workdir)
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    images = make_images(workdir)
    # The decoder child's own size before any image: a 1x1 PNG.
    tiny = workdir / "tiny.png"
    if not tiny.exists():
        from PIL import Image

        Image.new("RGB", (1, 1)).save(tiny)
    rows = []
    for image in [tiny, *images]:
        for contender in CONTENDERS:
            command = [sys.executable, __file__, "--measure", contender, str(image), str(workdir / "data")]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:
                result = {"peak_kb": None, "idle_kb": None, "seconds": 0, "outcome": f"crashed ({done.returncode})"}
            else:
                result = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((image.name, image.stat().st_size, contender, result))
            mb = lambda kb: f"{kb / 1024:,.0f}" if kb else "–"  # noqa: E731
            print(
                f"| {image.name} ({image.stat().st_size / 1024:,.0f} KB) | {contender} | {mb(result['peak_kb'])} "
                f"| {mb(result['idle_kb'])} | {result['seconds']:.2f} | {result['outcome']} |",
                flush=True,
            )
    if args.clean:
        shutil.rmtree(workdir)


if __name__ == "__main__":
    main()
