"""Sector-level recovery data: encoding speed per candidate, and repair of a DVD.

    .venv/bin/python benchmarks/sector_ecc.py [--workdir /tmp/bench-ecc] [--encode-gb 1]
        [--dvd-sectors 2295104] [--skip-dvd] [--skip-baselines] [--numpy-python PATH] [--clean]

1. Encoding, on one image of ``--encode-gb`` random sectors, at m = 32 of 255
   (dvdisaster RS03 "normal", 14.3 %):
   - ``exporter.ecc.protect`` with ISA-L (two workers and one; the image
     sha256 given, as the build has it, and computed alongside);
   - the pure-Python reference encoder on the first 64 MB (extrapolated);
   - a numpy lookup-table encoder on the first 128 MB, in ``--numpy-python``
     (a Python that has numpy; numpy is not a dependency of the project);
   - ``par2 create`` at 14 % over the same image (one file, as the build's
     PAR2 step does over payload files), and ``dvdisaster -mRS03 -n normal``
     (an ecc file) when they are installed.
2. Repair, on an image of ``--dvd-sectors`` (a full DVD, 4.7 GB): protect it,
   then for each damage pattern of issue 13 (random sectors are drawn from
   all the file's sectors, image and recovery data) damage a copy, run the
   disc's repair.py as ``python3 -I`` (one process: one core) and check the
   sha256; then zero growing nested sets of random sectors and ask
   ``repair.py --check`` which percentages the default still repairs.

Figures and findings: docs/benchmarks.md.  Scratch files go to ``--workdir``;
``--clean`` deletes them at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exporter import ecc  # noqa: E402
from exporter.disc_tools import repair as fmt  # noqa: E402

SECTOR = 2048
NUMPY_ENCODER = r"""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[3])
from exporter.disc_tools import repair as fmt
k, m = 223, 32
rows = fmt.cauchy_rows(k, m)
lut = np.array([list(fmt.mul_table(c)) for c in range(256)], dtype=np.uint8)
size, path = int(sys.argv[2]), sys.argv[1]
layer = size // 2048 // k
data = np.fromfile(path, dtype=np.uint8, count=k * layer * 2048).reshape(k, layer * 2048)
start = time.perf_counter()
width = 1 << 16
for at in range(0, layer * 2048, width):
    block = data[:, at : at + width]
    for j in range(m):
        acc = np.zeros(block.shape[1], dtype=np.uint8)
        for i in range(k):
            acc ^= lut[rows[j][i]][block[i]]
print(time.perf_counter() - start, k * layer * 2048)
"""


def make_image(path: Path, sectors: int, seed: int) -> None:
    rnd = random.Random(seed)
    with open(path, "wb") as fh:
        left = sectors * SECTOR
        while left:
            chunk = min(left, 64 << 20)
            fh.write(rnd.randbytes(chunk))
            left -= chunk


def sha256_file(path: Path) -> str:
    return fmt._sha256_file(str(path))


def timed(label: str, gb: float, fn) -> float | None:
    start = time.perf_counter()
    try:
        fn()
    except (subprocess.CalledProcessError, OSError, ecc.EccError) as exc:
        print(f"  {label:<44} failed: {exc}")
        return None
    took = time.perf_counter() - start
    print(f"  {label:<44} {took:7.1f} s  {took / gb:6.2f} s/GB")
    return took


def encode_candidates(work: Path, gb: float, baselines: bool, numpy_python: str | None) -> None:
    sectors = int(gb * 1e9) // SECTOR
    image = work / "encode.iso"
    make_image(image, sectors, 1)
    size = sectors * SECTOR
    gb = size / 1e9
    sha = sha256_file(image)
    print(f"encoding {size / 1e9:.2f} GB ({sectors} sectors), m = 32 of 255 (14.3 %)")

    def protect(**kw):
        os.truncate(image, size)
        ecc.protect(image, **kw)

    timed("ISA-L, 2 workers, sha256 given", gb, lambda: protect(sha256=sha))
    timed("ISA-L, 1 worker, sha256 given", gb, lambda: protect(sha256=sha, workers=1))
    timed("ISA-L, 2 workers, sha256 computed alongside", gb, lambda: protect())
    small = work / "small.iso"
    with open(image, "rb") as src, open(small, "wb") as dst:
        dst.write(src.read(64 << 20))
    took = timed("pure-Python reference (64 MB)", (64 << 20) / 1e9, lambda: ecc.protect(small, engine="python"))
    if took:
        print(f"  {'':<44} -> {took * gb / ((64 << 20) / 1e9):7.0f} s for this image")
    if numpy_python:
        script = work / "numpy_encode.py"
        script.write_text(NUMPY_ENCODER)
        root = str(Path(__file__).resolve().parent.parent)
        run = subprocess.run(
            [numpy_python, str(script), str(image), str(128 << 20), root], capture_output=True, text=True
        )
        if run.returncode == 0:
            took, done = (float(v) for v in run.stdout.split())
            print(f"  {'numpy LUT, parity only (128 MB)':<44} {took:7.1f} s  {took / (done / 1e9):6.2f} s/GB")
        else:
            print(f"  numpy LUT failed: {run.stderr.strip()[-200:]}")
    if not baselines:
        return
    os.truncate(image, size)
    par2 = shutil.which("par2")
    if par2:
        out = work / "par2"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        timed(
            "par2 create -r14 (Debian par2cmdline)",
            gb,
            lambda: subprocess.run(
                [par2, "create", "-q", "-q", "-r14", "-n1", f"-B{work}", str(out / "image.par2"), str(image)],
                check=True,
                capture_output=True,
            ),
        )
        shutil.rmtree(out, ignore_errors=True)
    dvdisaster = shutil.which("dvdisaster")
    if dvdisaster:
        eccfile = work / "image.ecc"
        timed(
            "dvdisaster -mRS03 -o file -n normal -x 2 (ecc file)",
            gb,
            lambda: subprocess.run(
                [
                    dvdisaster,
                    "-i",
                    str(image),
                    "-e",
                    str(eccfile),
                    "-mRS03",
                    "-o",
                    "file",
                    "-n",
                    "normal",
                    "-x",
                    "2",
                    "-c",
                ],
                check=True,
                capture_output=True,
            ),
        )
        eccfile.unlink(missing_ok=True)
    image.unlink()
    small.unlink(missing_ok=True)


def zero(path: Path, sectors) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        for s in sectors:
            os.pwrite(fd, bytes(SECTOR), s * SECTOR)
    finally:
        os.close(fd)


def dvd_repair(work: Path, sectors: int) -> None:
    free = shutil.disk_usage(work).free
    if free < sectors * SECTOR * 2.5:
        print(f"repair: needs {sectors * SECTOR * 2.5 / 1e9:.1f} GB free in {work}, has {free / 1e9:.1f}")
        return
    image, out = work / "dvd.iso", work / "dvd-repaired.iso"
    tool = work / "disc" / "repair.py"
    tool.parent.mkdir(exist_ok=True)
    shutil.copyfile(fmt.__file__, tool)
    print(f"\nrepair of a {sectors * SECTOR / 1e9:.2f} GB image ({sectors} sectors)")
    make_image(image, sectors, 2)
    sha = sha256_file(image)
    gb = sectors * SECTOR / 1e9
    timed("protect (ISA-L, sha256 given)", gb, lambda: ecc.protect(image, sha256=sha))
    total = os.path.getsize(image) // SECTOR
    rnd = random.Random(3)
    patterns = {
        "2 % of all sectors zeroed": ("zero", rnd.sample(range(total), total // 50)),
        "5 % run in the middle of the image": ("zero", range(sectors // 2, sectors // 2 + sectors // 20)),
        "5 % run at the end of the image": ("zero", range(sectors - sectors // 20, sectors)),
        "first 64 sectors and 1 % zeroed": ("zero", list(range(64)) + rnd.sample(range(total), total // 100)),
        "last 3 % of the file missing": ("truncate", total - total * 3 // 100),
        "one byte flipped in 100 sectors": ("flip", rnd.sample(range(total), 100)),
    }
    damaged = work / "damaged.iso"
    for name, (kind, where) in patterns.items():
        shutil.copyfile(image, damaged)
        if kind == "zero":
            zero(damaged, where)
        elif kind == "truncate":
            os.truncate(damaged, where * SECTOR)
        else:
            fd = os.open(damaged, os.O_RDWR)
            for s in where:
                byte = os.pread(fd, 1, s * SECTOR + 777)[0]
                os.pwrite(fd, bytes([byte ^ 0x5A]), s * SECTOR + 777)
            os.close(fd)
        start = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-I", str(tool), str(damaged), "--to", str(out)], capture_output=True, text=True
        )
        took = time.perf_counter() - start
        ok = run.returncode == 0 and sha256_file(out) == sha
        print(f"  {name}: repair.py {took:.0f} s ({took / 60:.1f} min), exit {run.returncode}, byte-exact: {ok}")
        for line in run.stdout.splitlines()[1:3]:
            print(f"    {line}")
        out.unlink(missing_ok=True)
    damaged.unlink()
    order = list(range(total))
    random.Random(4).shuffle(order)
    done = 0

    def damage(percent: float) -> None:
        nonlocal done
        upto = int(total * percent / 100)
        zero(image, order[done:upto])
        done = upto

    for percent in (4, 5, 5.5, 6, 6.5, 7, 7.5, 8):
        damage(percent)
        start = time.perf_counter()
        check = subprocess.run([sys.executable, "-I", str(tool), str(image), "--check"], capture_output=True, text=True)
        failed = next((ln for ln in check.stdout.splitlines() if ln.startswith("COULD NOT")), "")
        print(f"  {percent} % zeroed: --check exit {check.returncode} in {time.perf_counter() - start:.0f} s {failed}")
    image.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default="/tmp/bench-ecc")
    parser.add_argument("--encode-gb", type=float, default=1.0)
    parser.add_argument("--dvd-sectors", type=int, default=2_295_104)
    parser.add_argument("--skip-dvd", action="store_true")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--numpy-python", help="a python3 with numpy, for the numpy candidate")
    parser.add_argument("--clean", action="store_true")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    try:
        encode_candidates(work, args.encode_gb, not args.skip_baselines, args.numpy_python)
        if not args.skip_dvd:
            dvd_repair(work, args.dvd_sectors)
    finally:
        if args.clean:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
