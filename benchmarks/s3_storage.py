"""Object storage: staging a disc's sources and uploading its image, against
moto in server mode on loopback.

    .venv/bin/python benchmarks/s3_storage.py [--objects 48] [--object-mb 8] [--image-mb 512] [--workdir DIR]

Prints, in one process, against the same objects:

- staging: boto3's own ``download_file`` one object at a time, unchecked
  (the baseline), then ``exporter.storage.stage_sources`` (size and sha256
  of every object checked on the way) one at a time and 2, 4 and 8 at once;
- the image: boto3's ``upload_file`` (multipart, 64 MB parts) alone, then
  ``exporter.storage.upload_image`` (the same upload, then a read-back of
  the whole object and its sha256).

moto is a Python server on the same two cores, so the absolute rates are
moto's, not S3's; the ratios show what our checks and concurrency cost or
gain.  Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUCKET = "discsub-bench"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=48)
    parser.add_argument("--object-mb", type=int, default=8)
    parser.add_argument("--image-mb", type=int, default=512)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-s3-"))
    work.mkdir(parents=True, exist_ok=True)

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="discsub.settings",
        DISCSUB_DATA_DIR=str(work / "data"),
        DISCSUB_S3_BUCKET=BUCKET,
        DISCSUB_S3_ENDPOINT_URL=endpoint,
        DISCSUB_S3_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
    )
    sys.path.insert(0, str(REPO))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("moto_server did not start") from None
                time.sleep(0.05)
        run(args, work)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


def _rate(megabytes: float, seconds: float) -> str:
    return f"{seconds:7.2f} s  {megabytes / seconds:7.1f} MB/s"


def run(args, work: Path) -> None:
    import django

    django.setup()
    from boto3.s3.transfer import TransferConfig
    from django.conf import settings
    from django.core.files.storage import default_storage

    from exporter import storage
    from exporter.models import Disc

    client = default_storage.connection.meta.client
    client.create_bucket(Bucket=BUCKET)
    size = args.object_mb * 1024 * 1024
    sources = []
    for n in range(args.objects):
        data = os.urandom(size)
        client.put_object(Bucket=BUCKET, Key=f"originals/bench/{n:04d}", Body=data)
        sources.append(storage.Source(f"originals/bench/{n:04d}", 0, size, hashlib.sha256(data).hexdigest(), n))
    total = args.objects * args.object_mb
    print(f"staging {args.objects} objects of {args.object_mb} MB ({total} MB) from moto on loopback")

    folder = work / "baseline"
    folder.mkdir()
    start = time.perf_counter()
    for source in sources:
        client.download_file(BUCKET, source.storage_name, str(folder / source.storage_name.rsplit("/", 1)[-1]))
    baseline = time.perf_counter() - start
    shutil.rmtree(folder)
    print(f"  {'boto3 download_file, one at a time, unchecked (baseline)':<58}{_rate(total, baseline)}")
    for workers in (1, 2, 4, 8):
        settings.DISCSUB_S3_DOWNLOADS = workers
        folder = work / f"staged-{workers}"
        start = time.perf_counter()
        storage.stage_sources(sources, folder)
        took = time.perf_counter() - start
        shutil.rmtree(folder)
        label = f"stage_sources, {workers} at once, checked"
        print(f"  {label:<58}{_rate(total, took)}  {baseline / took:.2f}x")

    image = work / "disc.iso"
    digest = hashlib.sha256()
    with open(image, "wb") as out:
        for _ in range(args.image_mb):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    settings.DISCSUB_S3_DOWNLOADS = 4
    part = settings.DISCSUB_S3_PART_MB * 1024 * 1024
    print(f"uploading a {args.image_mb} MB image in {settings.DISCSUB_S3_PART_MB} MB parts, 4 at once")
    config = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=4)
    start = time.perf_counter()
    client.upload_file(str(image), BUCKET, "images/bench/plain.iso", Config=config)
    plain = time.perf_counter() - start
    print(f"  {'boto3 upload_file alone (baseline)':<58}{_rate(args.image_mb, plain)}")
    disc = Disc(image_name="bench/disc-0001.iso", image_size=image.stat().st_size, image_sha256=digest.hexdigest())
    start = time.perf_counter()
    storage.upload_image(disc, image)
    took = time.perf_counter() - start
    label = "upload_image: upload + read-back sha256"
    print(f"  {label:<58}{_rate(args.image_mb, took)}  {plain / took:.2f}x")


if __name__ == "__main__":
    main()
