import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from exporter import iso
from exporter.layout import DiscFile

# The S3 fixtures (moto in server mode, the fault proxy) for the engine's tests.
from tests.s3 import fault_proxy, moto_endpoint, s3  # noqa: F401

OVER_4_GIB = 4 * 1024**3 + 512 * 1024**2 + 12345


@dataclass(frozen=True)
class BigImage:
    image: Path
    volume: str
    written: iso.ImageResult
    big: DiscFile  # its source is gone: the image alone holds its bytes
    files: list[DiscFile]
    marks: dict[int, bytes]  # offset in the big file: the bytes written there (zeros elsewhere)


@pytest.fixture(scope="session")
def image_over_4_gib(tmp_path_factory) -> Iterator[BigImage]:
    """One image by our writer of a file over 4 GiB (two extents), linked into
    a second album, and a small file; built once, since writing it takes most
    of a minute. Tests only read it."""
    folder = tmp_path_factory.mktemp("over-4-gib")
    source = folder / "big.mov"
    marks = {
        0: b"head",
        2**32 - 2049: b"across the first record's end",
        2**32 - 2: b"4GiB edge",
        OVER_4_GIB - 4: b"tail",
    }
    with open(source, "wb") as fh:
        fh.truncate(OVER_4_GIB)
        for offset, mark in marks.items():
            fh.seek(offset)
            fh.write(mark)
    sha = hashlib.sha256()
    with open(source, "rb") as fh:
        while chunk := fh.read(8 << 20):
            sha.update(chunk)
    big = DiscFile(
        "data/v/big.mov", OVER_4_GIB, sha.hexdigest(), lambda: open(source, "rb"), links=("data/w/same.mov",)
    )
    files = [big, DiscFile.from_bytes("data/v/small.txt", b"small")]
    image = folder / "big.iso"
    volume = "DISCSUB_000007_0003"
    written = iso.write_image(files, image, volume, 1_700_000_000)
    source.unlink()
    yield BigImage(image, volume, written, big, files, marks)
    image.unlink()
