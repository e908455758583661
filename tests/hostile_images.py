"""Hostile image bytes, made here with Pillow, shared by the tests of the
image paths (thumbnails, uploads, the fuzz test)."""

import functools
import io
import struct
import zlib

from PIL import Image


def exif_with_mistyped_tag(orientation: int = 6) -> bytes:
    """An EXIF block (big-endian TIFF) whose orientation is valid but whose
    camera-make text sits under tag 0x0140 (ColorMap, which Pillow knows as
    SHORT): re-serialising it, as ``ImageOps.exif_transpose`` does, raises
    ``struct.error`` (the ~800-byte fuzzed photo of issue 12)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "Cam"
    raw = exif.tobytes()
    assert raw.count(b"\x01\x0f\x00\x02") == 1
    return raw.replace(b"\x01\x0f\x00\x02", b"\x01\x40\x00\x02")


def photo_with_mistyped_exif(fmt: str, width: int = 48, height: int = 32) -> bytes:
    img = Image.new("RGB", (width, height), (30, 120, 200))
    img.paste((250, 250, 250), (0, 0, width // 4, height // 4))
    out = io.BytesIO()
    img.save(out, fmt, exif=exif_with_mistyped_tag())
    return out.getvalue()


def png_header(width: int, height: int, colour_type: int = 2) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (its data
    is far too short: Pillow's checks must refuse it before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    data = chunk(b"IDAT", zlib.compress(b"\0" * 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + data + chunk(b"IEND", b"")


@functools.cache
def blank_png(width: int, height: int, mode: str = "RGBA") -> bytes:
    """A real, complete PNG that compresses to almost nothing (7700×7700
    RGBA is about 230 KB) but decodes to width×height×4 bytes."""
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, "PNG")
    return out.getvalue()
