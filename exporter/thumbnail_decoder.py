"""Decoding subscribers' images for thumbnails, with bounded memory and time.

Subscriber bytes are hostile: a 230 KB PNG can claim 7700×7700 RGBA pixels
(237 MB decoded, and each full-size copy the old pipeline made cost as much
again), and a fuzzed file can make Pillow raise anything at all.  So:

- :func:`render_thumbnail` decodes as little as it can.  A JPEG is decoded at
  1/2, 1/4 or 1/8 scale (``draft``); the decoded size, counted in the bytes
  per pixel Pillow holds for the image's mode, must fit a budget before a
  single pixel is decoded; the image is shrunk (``reduce`` then LANCZOS)
  before anything else touches it, so rotation and colour conversion work on
  a thumbnail, never on a full-size copy.  Peak memory is then about the
  budget plus a constant (``benchmarks/thumbnail_memory.py`` measures it).
- Every exception Pillow raises is "no thumbnail", with its reason.  EXIF is
  only read for the orientation, and a broken EXIF block just means "upright
  as stored".
- :class:`Decoder` runs that in a child process, under an address-space
  ceiling (``RLIMIT_AS``) and a time limit: a decoder bug that escapes the
  budget, loops or crashes never costs the worker.  A child that times out
  or dies is replaced and the image tried once more; a second failure is
  :class:`DecoderFailed`, which decides nothing about the image (the caller
  tries again later).  Only Pillow's own verdict on the bytes is
  :class:`Unthumbnailable`.  An error reading the file is re-raised as the
  ``OSError`` it was, and a child that cannot start is
  :class:`DecoderUnavailable`: both are the machine's, not the image's.

This module imports no Django: the child process runs it as
``python -m exporter.thumbnail_decoder``.
"""

from __future__ import annotations

import io
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageCms

BOX = 400
QUALITY = 80

# Bytes Pillow holds per pixel for a mode (every mode not listed takes 4,
# RGB included).  Palette and bilevel images are expanded to RGBA or L
# before shrinking (a palette cannot be averaged), so they count both.
_BYTES_PER_PIXEL = {"L": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2, "P": 1 + 4, "PA": 4 + 4, "1": 1 + 1}

_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_SRGB = None


class Unthumbnailable(Exception):
    """The bytes are not an image Pillow can safely make a thumbnail of."""


class DecoderFailed(Exception):
    """The decoder child timed out or died on an image twice running: no
    verdict on the bytes, tried again later (and counted against the item)."""


class DecoderUnavailable(Exception):
    """The decoder child could not be started (no memory, no processes left):
    the machine's trouble, not the image's."""


def decoded_bytes(mode: str, width: int, height: int) -> int:
    """The memory the pixels of a ``mode`` image of ``width``×``height`` take
    while a thumbnail is made of it."""
    return width * height * _BYTES_PER_PIXEL.get(mode, 4)


def _srgb():
    global _SRGB
    if _SRGB is None:
        _SRGB = ImageCms.createProfile("sRGB")
    return _SRGB


def _to_rgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """An RGB image, colour-managed to sRGB when the file carries a profile."""
    if icc and img.mode in ("RGB", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(img, source, _srgb(), outputMode="RGB")
        except Exception:  # an unusable profile: the pixels as they are
            pass
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        img = img.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if img.mode == "RGB":
        return img
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation, or 1 when the EXIF block is absent or broken
    (fuzzed tags give wrong types, unhashable values, struct errors)."""
    try:
        value = img.getexif().get(0x0112, 1)
        return value if isinstance(value, int) and value in _ORIENTATION else 1
    except Exception:
        return 1


def render_thumbnail(source: BinaryIO | str, max_decode_bytes: int, box: int = BOX, quality: int = QUALITY) -> bytes:
    """The thumbnail JPEG of the image in ``source`` (a file or a path); the
    same input always gives the same bytes.  Raises :class:`Unthumbnailable`
    for anything Pillow cannot, or may not, decode."""
    try:
        with warnings.catch_warnings():
            # Past MAX_IMAGE_PIXELS Pillow warns, past twice that it refuses.
            # Between the two, the budget below decides, after draft().
            warnings.simplefilter("ignore")
            img = Image.open(source)
            with img:
                return _render(img, max_decode_bytes, box, quality)
    except Unthumbnailable:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Unthumbnailable(f"refused as a decompression bomb: {exc}") from exc
    except MemoryError as exc:
        raise Unthumbnailable("decoding it ran out of the memory a thumbnail may use") from exc
    except Exception as exc:  # noqa: BLE001 - hostile bytes can make Pillow raise anything
        raise Unthumbnailable(f"Pillow could not read it ({exc.__class__.__name__}: {exc})"[:500]) from exc


def _render(img: Image.Image, max_decode_bytes: int, box: int, quality: int) -> bytes:
    if img.format == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale, still at least ``box`` wide:
        # a 50 MP photo costs a 3 MP decode.
        img.draft("RGB", (box, box))
    need = decoded_bytes(img.mode, img.width, img.height)
    if need > max_decode_bytes:
        raise Unthumbnailable(
            f"{img.width}×{img.height} pixels in {img.mode} take {need / 2**20:,.0f} MB to decode,"
            f" more than the {max_decode_bytes / 2**20:,.0f} MB a thumbnail may use"
        )
    icc = img.info.get("icc_profile")
    # After the budget check: a PNG's getexif() decodes all its pixels to find an eXIf chunk.
    orientation = _orientation(img)
    img.load()
    small = img
    if small.mode in ("P", "PA"):
        small = small.convert("RGBA" if small.mode == "PA" or "transparency" in small.info else "RGB")
    elif small.mode == "1":
        small = small.convert("L")
    small = _reduced(small, box)
    if small is not img:
        img.close()  # frees the full-size pixels now
    small.thumbnail((box, box), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if orientation != 1:
        small = small.transpose(_ORIENTATION[orientation])
    rgb = _to_rgb(small, icc if isinstance(icc, bytes) else None)
    # A fresh image: nothing of the original's metadata (EXIF, comments,
    # profiles, XMP) can reach the disc.
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    out = io.BytesIO()
    clean.save(out, "JPEG", quality=quality, optimize=True, progressive=False, subsampling="4:2:0")
    return out.getvalue()


def _reduced(img: Image.Image, box: int) -> Image.Image:
    """``img`` shrunk by an integer factor (a box average) to no less than
    three times ``box``, the way ``thumbnail(reducing_gap=3)`` would, but
    without the full-size premultiplied copy Pillow makes of an image with
    alpha: that one is reduced in bands of a few MB."""
    width, height = img.size
    factor = int(max(width, height) / box / 3)
    if factor < 2:
        return img
    if img.mode not in ("LA", "RGBA"):
        return img.reduce(factor)
    out = Image.new(img.mode, (-(-width // factor), -(-height // factor)))
    rows = factor * max(1, (8 << 20) // (width * 4 * factor))
    for top in range(0, height, rows):
        out.paste(img.crop((0, top, width, min(height, top + rows))).reduce(factor), (0, top // factor))
    return out


# --- the child process -------------------------------------------------------------

_HEADER = struct.Struct(">BI")  # status, length
_THUMBNAIL, _UNTHUMBNAILABLE, _READ_ERROR = 0, 1, 2
_READY = b"R"  # the child's first byte: started, imports and profile done
START_SECONDS = 60.0  # for the child's start-up, never counted against an image


class _Guarded:
    """A file whose read errors are remembered: Pillow wraps whatever it
    meets in its own words, and a storage error must not pass for a verdict
    on the bytes."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self.error: OSError | None = None

    def _call(self, name: str, *args):
        try:
            return getattr(self._fh, name)(*args)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def read(self, *args):
        return self._call("read", *args)

    def readinto(self, *args):
        return self._call("readinto", *args)

    def readline(self, *args):
        return self._call("readline", *args)

    def seek(self, *args):
        return self._call("seek", *args)

    def tell(self):
        return self._call("tell")

    def __getattr__(self, name: str):
        return getattr(self._fh, name)


def _read_error(exc: OSError) -> tuple[int, bytes]:
    return _READ_ERROR, json.dumps([exc.errno, exc.strerror or str(exc)]).encode()


def _answer(request: dict) -> tuple[int, bytes]:
    try:
        fh = open(request["path"], "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        return _read_error(exc)
    with fh:
        source = _Guarded(fh)
        try:
            return _THUMBNAIL, render_thumbnail(source, request["max_decode_bytes"], request["box"])
        except Unthumbnailable as exc:
            if source.error is not None:
                return _read_error(source.error)
            return _UNTHUMBNAILABLE, str(exc).encode("utf-8", "replace")


def _serve(memory_mb: int) -> None:
    """Answer requests (one JSON line each) on stdin until it closes."""
    try:  # die with the parent, even mid-decode
        import ctypes

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:
        pass
    Image.init()
    _srgb()
    if memory_mb > 0:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_address_space() + memory_mb * 2**20,) * 2)
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    sys.stdout = sys.stderr  # nothing but answers on the answer pipe
    out.write(_READY)
    for line in sys.stdin.buffer:
        status, body = _answer(json.loads(line))
        out.write(_HEADER.pack(status, len(body)) + body)


def _address_space() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class Decoder:
    """One child process that makes thumbnails, one at a time, started when
    first needed and again after it dies or is killed for taking too long.
    ``timeout`` is for one image; the child's start-up has its own."""

    def __init__(self, memory_mb: int, timeout: float):
        self.memory_mb = memory_mb
        self.timeout = timeout
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def render(self, path: str, max_decode_bytes: int, box: int = BOX) -> bytes:
        """The thumbnail of the image file ``path``.  Raises
        :class:`Unthumbnailable` (Pillow's verdict on the bytes), ``OSError``
        (reading the file failed), :class:`DecoderFailed` (the child timed out
        or died twice running) or :class:`DecoderUnavailable`."""
        request = json.dumps({"path": path, "max_decode_bytes": max_decode_bytes, "box": box}).encode() + b"\n"
        with self._lock:
            for _attempt in range(2):
                proc = self._started()
                deadline = time.monotonic() + self.timeout
                try:
                    proc.stdin.write(request)
                    proc.stdin.flush()
                    status, length = _HEADER.unpack(self._read(proc, _HEADER.size, deadline))
                    body = self._read(proc, length, deadline)
                    break
                except TimeoutError:
                    self.stop()
                    failure = f"decoding it took longer than {self.timeout:g} s, twice"
                except (EOFError, BrokenPipeError):
                    self.stop()
                    failure = "the image decoder stopped on it twice (it passed its memory ceiling or crashed)"
            else:
                raise DecoderFailed(failure)
        if status == _READ_ERROR:
            number, text = json.loads(body)
            raise OSError(number, text)
        if status:
            raise Unthumbnailable(body.decode("utf-8", "replace"))
        return body

    def _started(self) -> subprocess.Popen:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self.stop()
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "exporter.thumbnail_decoder", str(self.memory_mb)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                cwd=Path(__file__).resolve().parent.parent,
                bufsize=0,
            )
        except OSError as exc:  # EAGAIN, ENOMEM: the machine, not the image
            raise DecoderUnavailable(f"the image decoder could not be started: {exc.strerror or exc}") from exc
        try:
            if self._read(self._proc, len(_READY), time.monotonic() + START_SECONDS) != _READY:
                raise EOFError
        except (TimeoutError, EOFError):
            self.stop()
            raise DecoderUnavailable("the image decoder did not start") from None
        return self._proc

    @staticmethod
    def _read(proc: subprocess.Popen, n: int, deadline: float) -> bytes:
        fd = proc.stdout.fileno()
        parts, have = [], 0
        while have < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(n - have, 1 << 20))
            if not chunk:
                raise EOFError
            parts.append(chunk)
            have += len(chunk)
        return b"".join(parts)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
