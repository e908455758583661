"""Sector-level recovery data appended to a disc image (the format and the
repair are in ``exporter/disc_tools/repair.py``, which travels on the disc).

``protect(image)`` appends, after the image's last sector, m parity layers
of a Reed-Solomon code over interleaved sectors, a CRC-32 of every sector and
the headers that find them again.  The parity is computed by Intel ISA-L
(Debian package libisal2) through ctypes: its SIMD Galois-field kernels make
223 + 32 about 1 s per GB on this machine, where the pure-Python reference
below takes about a minute per GB.  Both write the same bytes: ISA-L's
``gf_gen_cauchy1_matrix`` is the code's definition.

Memory stays bounded for any image: the work goes in column slices of
``SLICE`` groups (a slice reads ``SLICE`` sectors of every layer), two
slices at a time, one per core (ctypes releases the GIL while ISA-L runs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import threading
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from exporter.disc_tools import repair as fmt

log = logging.getLogger(__name__)

SECTOR = fmt.SECTOR
CACHE_CHUNK = 4096
SLICE = 64  # groups per column slice: (k + m) * 64 * 2 KB = 33 MB per worker


class EccError(RuntimeError):
    pass


@dataclass(frozen=True)
class Protection:
    image_sectors: int
    total_sectors: int
    k: int
    m: int
    layer: int
    engine: str
    sha256: str = ""  # of the whole protected file, when protect() hashed the image itself

    @property
    def recovery_sectors(self) -> int:
        return self.total_sectors - self.image_sectors


# --- parity engines: (k, m, rows) -> encode(data_rows, parity_rows, length) ---------------------


class _Isal:
    name = "isal"

    def __init__(self, k: int, m: int, rows: list):
        lib = _isal()
        self.k, self.m, self.lib = k, m, lib
        self.tables = ctypes.create_string_buffer(32 * k * m)
        matrix = bytes(v for row in rows for v in row)
        lib.ec_init_tables(k, m, matrix, self.tables)

    def encode(self, data: bytearray, parity: bytearray, stride: int, length: int) -> None:
        """Rows of ``stride`` bytes, ``length`` of each used."""
        data_base = ctypes.addressof((ctypes.c_char * len(data)).from_buffer(data))
        parity_base = ctypes.addressof((ctypes.c_char * len(parity)).from_buffer(parity))
        # A few KB of every row at a time: ISA-L makes up to 6 parity rows per
        # pass over the sources, and k rows of 4 KB stay in the L2 cache for
        # all the passes (2.5x faster than whole rows on this machine).
        for at in range(0, length, CACHE_CHUNK):
            sources = (ctypes.c_void_p * self.k)(*(data_base + i * stride + at for i in range(self.k)))
            targets = (ctypes.c_void_p * self.m)(*(parity_base + j * stride + at for j in range(self.m)))
            self.lib.ec_encode_data(min(CACHE_CHUNK, length - at), self.k, self.m, self.tables, sources, targets)


class _Python:
    """The reference: one bytes.translate per (parity, data) pair over a whole row."""

    name = "python"

    def __init__(self, k: int, m: int, rows: list):
        self.k, self.m, self.rows = k, m, rows

    def encode(self, data: bytearray, parity: bytearray, stride: int, length: int) -> None:
        view = memoryview(data)
        sources = [bytes(view[i * stride : i * stride + length]) for i in range(self.k)]
        for j, row in enumerate(self.rows):
            acc = 0
            for source, c in zip(sources, row, strict=True):
                acc = fmt.mul_into(acc, source, c)
            parity[j * stride : j * stride + length] = acc.to_bytes(length, "little")


ENGINES = {"isal": _Isal, "python": _Python}
_LIB = None


def _isal():
    global _LIB
    if _LIB is None:
        name = ctypes.util.find_library("isal") or "libisal.so.2"
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise EccError(
                "Intel ISA-L is not installed (Debian package libisal2): it is needed to build disc images"
            ) from exc
        lib.ec_init_tables.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
        lib.ec_init_tables.restype = None
        lib.ec_encode_data.argtypes = [ctypes.c_int] * 3 + [ctypes.c_void_p] * 3
        lib.ec_encode_data.restype = None
        lib.gf_gen_cauchy1_matrix.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
        lib.gf_gen_cauchy1_matrix.restype = None
        _LIB = lib
    return _LIB


def isal_cauchy_rows(k: int, m: int) -> list:
    """The parity rows as ISA-L itself makes them (a test holds them to repair.cauchy_rows)."""
    a = ctypes.create_string_buffer((k + m) * k)
    _isal().gf_gen_cauchy1_matrix(a, k + m, k)
    raw = a.raw
    return [list(raw[r * k : (r + 1) * k]) for r in range(k, k + m)]


def image_capacity(capacity_sectors: int, parity: int) -> int:
    """The largest image, in sectors, that fits ``capacity_sectors`` with its
    recovery data at ``parity`` layers (all of ``capacity_sectors`` at 0)."""
    if not parity:
        return capacity_sectors
    low, high = 0, capacity_sectors
    while low < high:
        mid = (low + high + 1) // 2
        if fmt.Layout.for_image(mid, parity).total_sectors <= capacity_sectors:
            low = mid
        else:
            high = mid - 1
    return low


def total_sectors(image_sectors: int, parity: int) -> int:
    """What an image of ``image_sectors`` takes on the disc with its recovery data."""
    return fmt.Layout.for_image(image_sectors, parity).total_sectors if parity else image_sectors


def available_engine() -> str:
    """ISA-L where it is installed; else the pure-Python reference, which
    writes the same bytes about 50 times slower (fine for the demo's small
    discs; production installs libisal2, see docs/deploy.md)."""
    try:
        _isal()
    except EccError:
        return "python"
    return "isal"


# --- protect ----------------------------------------------------------------------------------


def protect(
    image: Path,
    parity: int = fmt.DEFAULT_PARITY,
    sha256: str | None = None,
    engine: str = "auto",
    workers: int = 2,
    layout_format: ModuleType = fmt,
) -> Protection:
    """Append recovery data to ``image`` (in place).  ``sha256`` is the image's,
    when the caller already has it; otherwise it is computed alongside, and
    then carried on over the recovery data once written (read back): the
    result's ``sha256`` is the whole file's.
    ``engine`` "auto" is :func:`available_engine`.  ``layout_format`` is the
    repair.py whose format to write: a disc's own, frozen with its layout
    (:func:`exporter.contents.repair_format`), so a rebuild years later
    writes the same bytes.  The caller fsyncs."""
    fmt = layout_format
    size = os.path.getsize(image)
    if size % SECTOR or not size:
        raise EccError(f"{image} is not a whole number of {SECTOR}-byte sectors")
    layout = fmt.Layout.for_image(size // SECTOR, parity)
    rows = fmt.cauchy_rows(layout.k, layout.m)
    if engine == "auto":
        engine = available_engine()
        if engine != "isal":
            log.warning("Intel ISA-L (libisal2) is not installed: recovery data is made in pure Python, slowly")
    coder = ENGINES[engine](layout.k, layout.m, rows)
    crcs = array("I", bytes(4 * layout.crc_entries))
    volume = hashlib.sha256()
    whole = ""
    fd = os.open(image, os.O_RDWR)
    try:
        hasher = None
        if sha256 is None:
            hasher = threading.Thread(target=_sha256_range, args=(fd, 0, size, volume))
            hasher.start()
        os.ftruncate(fd, layout.total_sectors * SECTOR)
        _encode(fd, layout, coder, crcs, max(1, workers), fmt.ZERO_CRC)
        if hasher is not None:
            hasher.join()
            sha = volume.digest()
        else:
            sha = bytes.fromhex(sha256)
        table = b"".join(fmt.pack_crc_table(layout, crcs))
        for start in layout.crc_copies:
            os.pwrite(fd, table, start * SECTOR)
        for copy, at in enumerate(layout.headers):
            os.pwrite(fd, fmt.pack_header(layout, sha, copy), at * SECTOR)
        if hasher is not None:
            whole = _sha256_range(fd, size, layout.total_sectors * SECTOR, volume).hexdigest()
    finally:
        os.close(fd)
    return Protection(layout.image_sectors, layout.total_sectors, layout.k, layout.m, layout.layer, coder.name, whole)


def _sha256_range(fd: int, start: int, end: int, digest):
    """``digest`` updated with the file's bytes from ``start`` to ``end``."""
    at = start
    while at < end:
        chunk = os.pread(fd, min(4 << 20, end - at), at)
        if not chunk:
            raise EccError(f"short read at byte {at}")
        digest.update(chunk)
        at += len(chunk)
    return digest


def _encode(fd: int, layout, coder, crcs: array, workers: int, zero_crc: int) -> None:
    k, m, big_l, n_img = layout.k, layout.m, layout.layer, layout.image_sectors
    slices = iter(range(0, big_l, SLICE))
    lock = threading.Lock()
    errors: list[BaseException] = []
    stride = SLICE * SECTOR

    def work() -> None:
        data, parity = bytearray(k * stride), bytearray(m * stride)
        view, pview = memoryview(data), memoryview(parity)
        try:
            while True:
                with lock:
                    g0 = next(slices, None)
                if g0 is None or errors:
                    return
                width = min(SLICE, big_l - g0)
                length = width * SECTOR
                for i in range(k):
                    first = i * big_l + g0
                    stored = max(0, min(width, n_img - first))
                    row = view[i * stride : i * stride + length]
                    if stored:
                        got = os.preadv(fd, [row[: stored * SECTOR]], first * SECTOR)
                        if got != stored * SECTOR:
                            raise EccError(f"short read at sector {first}")
                    row[stored * SECTOR :] = bytes(length - stored * SECTOR)
                    base = i * big_l + g0
                    for d in range(width):
                        if d < stored:
                            crcs[base + d] = zlib.crc32(row[d * SECTOR : (d + 1) * SECTOR])
                        else:
                            crcs[base + d] = zero_crc
                coder.encode(data, parity, stride, length)
                for j in range(m):
                    row = pview[j * stride : j * stride + length]
                    base = (k + j) * big_l + g0
                    for d in range(width):
                        crcs[base + d] = zlib.crc32(row[d * SECTOR : (d + 1) * SECTOR])
                    os.pwrite(fd, row, layout.parity_sector(j, g0) * SECTOR)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
