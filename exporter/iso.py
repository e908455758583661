"""The image writer: ISO 9660 level 3 + Joliet + Rock Ridge 1.09 + UDF in one image.

:func:`measure_sectors` lays the files out without reading them and gives
the exact size; :func:`write_image` writes the image atomically and
reproducibly, checking every source against its sha256 while pycdlib copies
it.  Canonical paths (UDF and Rock Ridge names) come from the caller; the
ISO 9660 and Joliet names come from :func:`exporter.names.short_names`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import io
import os
import queue
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pycdlib
from pycdlib.udf import _ostaunicode_zero_pad

from exporter import collector, isomd5
from exporter.errors import MISSING, UNREADABLE, SourceMismatch
from exporter.layout import DiscFile
from exporter.media import SECTOR_SIZE
from exporter.names import short_names

BLOCKSIZE = 4 * 1024 * 1024
WRITE_SLICE = 128 * 1024
PROGRESS_STEP = 16 * 1024 * 1024
VOLUME_ID = re.compile(r"[A-Z0-9_]{1,32}")
JOLIET_VOLUME_ID = 16
UDF_SHORT_ID = 30  # a 32-byte UDF dstring: compression id, 30 bytes, length
FILE_MODE = 0o100444
DIR_MODE = 0o040555
APP_ID = "DISCSUB"
# The most one ISO 9660 directory record can describe (pycdlib and xorriso
# agree); bigger files are split into several records that share one inode.
_ISO_CHUNK = 0xFFFFF800


@dataclass(frozen=True)
class ImageResult:
    size: int
    sha256: str
    sectors: int
    implanted_md5: str = ""


# --- a frozen clock for pycdlib ----------------------------------------------
#
# pycdlib stamps records with time.time() through time.localtime() and puts
# random bits in the UDF volume set id.  For reproducible images those module
# references are swapped, while any build runs, for proxies that answer from
# a per-thread epoch (in UTC) and seeded generator; threads that are not
# building see the real clock.

_PYCDLIB_MODULES = "pycdlib dates dr headervd inplaceeditor isohybrid rockridge udf utils".split()
_clock = threading.local()
_clock_lock = threading.Lock()
_clock_users = 0
_swapped: list[tuple[Any, str, Any]] = []


class _TimeProxy:
    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    def time(self) -> float:
        epoch = getattr(_clock, "epoch", None)
        return time.time() if epoch is None else float(epoch)

    def localtime(self, secs: float | None = None) -> time.struct_time:
        epoch = getattr(_clock, "epoch", None)
        if epoch is None:
            return time.localtime(secs)
        return _utc(epoch if secs is None else secs)

    def gmtime(self, secs: float | None = None) -> time.struct_time:
        epoch = getattr(_clock, "epoch", None)
        if epoch is None:
            return time.gmtime(secs)
        return _utc(epoch if secs is None else secs)


@functools.lru_cache(maxsize=64)
def _utc(secs: float) -> time.struct_time:
    # pycdlib asks for the same instant for every record it dates
    return time.gmtime(secs)


class _RandomProxy:
    def __getattr__(self, name: str) -> Any:
        rng = getattr(_clock, "rng", None)
        return getattr(rng if rng is not None else random, name)


@contextlib.contextmanager
def frozen_clock(epoch: int, seed: str) -> Iterator[None]:
    """Within this block (in this thread) pycdlib sees ``epoch`` as now, in UTC,
    and a random generator seeded by ``seed``."""
    global _clock_users
    with _clock_lock:
        if _clock_users == 0:
            for module_name in _PYCDLIB_MODULES:
                module = importlib.import_module(f"pycdlib.{module_name}")
                for attr, real, proxy in (("time", time, _TimeProxy()), ("random", random, _RandomProxy())):
                    if getattr(module, attr, None) is real:
                        _swapped.append((module, attr, real))
                        setattr(module, attr, proxy)
        _clock_users += 1
    outer = getattr(_clock, "epoch", None), getattr(_clock, "rng", None)
    _clock.epoch = epoch
    _clock.rng = random.Random(hashlib.sha256(f"{seed}\0{epoch}".encode()).digest())
    try:
        yield
    finally:
        _clock.epoch, _clock.rng = outer
        with _clock_lock:
            _clock_users -= 1
            if _clock_users == 0:
                while _swapped:
                    module, attr, real = _swapped.pop()
                    setattr(module, attr, real)


# --- layout -------------------------------------------------------------------


def _check(files: Sequence[DiscFile], volume_id: str) -> None:
    if not VOLUME_ID.fullmatch(volume_id):
        raise ValueError(f"volume id {volume_id!r} must be 1-32 characters of A-Z, 0-9 and _")
    seen: set[str] = set()
    for f in files:
        if f.size < 0:
            raise ValueError(f"{f.path}: negative size")
        for path in f.all_paths:
            if path in seen:
                raise ValueError(f"{path}: on the disc twice")
            seen.add(path)


def _add_link(iso: pycdlib.PyCdlib, f: DiscFile, link: str, names: dict[str, tuple[str, str]]) -> None:
    iso_old, joliet_old = names[f.path]
    iso_new, joliet_new = names[link]
    rr_name = link.rsplit("/", 1)[-1]
    iso.add_hard_link(udf_old_path="/" + f.path, udf_new_path="/" + link)
    if f.size <= _ISO_CHUNK:
        iso.add_hard_link(iso_old_path=iso_old, iso_new_path=iso_new, rr_name=rr_name)
        iso.add_hard_link(joliet_old_path=joliet_old, joliet_new_path=joliet_new)
        return
    # pycdlib's add_hard_link links only the first directory record of a
    # multi-extent (> 4 GiB) file, so the new name would show 4 GiB of it.
    # Link every chunk the way pycdlib's own _add_fp does.
    inode = iso.get_record(udf_path="/" + f.path).inode
    added = 0
    for kwargs in ({"iso_new_path": iso_new, "rr_name": rr_name}, {"joliet_new_path": joliet_new}):
        left, offset = f.size, 0
        while left:
            length = min(left, _ISO_CHUNK)
            added += iso._add_hard_link_to_inode(
                inode, length, FILE_MODE, False, None, data_extent_offset_blocks=offset, **kwargs
            )
            left -= length
            offset += length // SECTOR_SIZE
    iso._finish_add(0, added)


def _label(iso: pycdlib.PyCdlib, volume_id: str) -> None:
    """Joliet keeps the volume id as 16 UCS-2 characters (pycdlib refuses a
    longer one, genisoimage cuts it), so new() got that much; the ISO 9660
    and UDF descriptors get the whole id, as far as their fields allow."""
    iso.pvd.volume_identifier = volume_id.encode("ascii").ljust(32)
    short = volume_id[:UDF_SHORT_ID]
    for descs in (iso.udf_main_descs, iso.udf_reserve_descs):
        descs.pvds[0].vol_ident = _ostaunicode_zero_pad(short, 32)
        descs.impl_use[0].impl_use.log_vol_ident = _ostaunicode_zero_pad(volume_id, 128)
        descs.logical_volumes[0].logical_vol_ident = _ostaunicode_zero_pad(volume_id, 128)
    iso.udf_file_set.log_vol_ident = _ostaunicode_zero_pad(volume_id, 128)
    iso.udf_file_set.file_set_ident = _ostaunicode_zero_pad(short, 32)


@collector.paused()  # tens of thousands of linked records
def _layout(files: Sequence[DiscFile], volume_id: str, source: Callable[[DiscFile], Any]) -> pycdlib.PyCdlib:
    """A pycdlib image holding ``files``; ``source(f)`` is what pycdlib will read."""
    _check(files, volume_id)
    names = short_names(p for f in files for p in f.all_paths)
    file_paths = {p for f in files for p in f.all_paths}
    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=3,
        vol_ident=volume_id[:JOLIET_VOLUME_ID],
        app_ident_str=APP_ID,
        joliet=3,
        rock_ridge="1.09",
        udf="2.60",
    )
    _label(iso, volume_id)
    # Like genisoimage -hide-rr-moved: deep albums are relocated there in the
    # ISO 9660 tree, and Rock Ridge readers need not see it.
    iso.set_relocated_name("RR_MOVED", ".rr_moved")
    directories = sorted((p for p in names if p not in file_paths), key=lambda p: (p.count("/"), p))
    for path in directories:
        iso_path, joliet_path = names[path]
        iso.add_directory(
            iso_path=iso_path,
            rr_name=path.rsplit("/", 1)[-1],
            joliet_path=joliet_path,
            udf_path="/" + path,
            file_mode=DIR_MODE,
        )
    for f in sorted(files, key=lambda f: f.path):
        iso_path, joliet_path = names[f.path]
        iso.add_fp(
            source(f),
            f.size,
            iso_path=iso_path,
            rr_name=f.path.rsplit("/", 1)[-1],
            joliet_path=joliet_path,
            udf_path="/" + f.path,
            file_mode=FILE_MODE,
        )
        for link in f.links:
            _add_link(iso, f, link, names)
    iso.force_consistency()
    # pycdlib writes file data in the order files were added; in extent order
    # the image file grows sequentially and its sha256 can follow the writes.
    iso.inodes.sort(key=lambda inode: inode.extent_location() if inode.get_data_length() else 0)
    return iso


def measure_sectors(files: Sequence[DiscFile], volume_id: str) -> int:
    """The exact size, in 2048-byte sectors, of the image of ``files``."""
    # pycdlib only reads file data when it writes; an empty stream stands in.
    # Dates do not change sizes: a frozen clock saves asking for the time.
    with frozen_clock(0, volume_id):
        iso = _layout(files, volume_id, lambda f: io.BytesIO())
    try:
        return iso.pvd.space_size
    finally:
        iso.close()


# --- hashing on the side ----------------------------------------------------------


class HashWorker:
    """A thread that runs hashing calls in order, fed through a bounded queue.

    hashlib releases the GIL on big buffers, so a worker hashes on the
    second core while the main thread reads and writes."""

    def __init__(self, name: str, depth: int = 16):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            fn, arg, then = item
            if self._error is None:
                try:
                    fn(arg)
                except BaseException as exc:
                    self._error = exc
            if then is not None:
                then()

    def submit(self, fn: Callable[[Any], Any], arg: Any, then: Callable[[], None] | None = None) -> None:
        """Queue ``fn(arg)``, then ``then()`` (which runs even after a failure)."""
        if self._error is not None:
            if then is not None:
                then()
            raise self._error
        self._queue.put((fn, arg, then))

    def close(self) -> None:
        """Wait for every submitted call; re-raise the first failure."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._error = self._error or RuntimeError("aborted")
        with contextlib.suppress(BaseException):
            self.close()


class _Lease:
    """A pooled copy buffer lent to pycdlib for one block, back in the pool
    once both hash workers are done with it.  Reusing a few buffers spares
    the kernel a page fault for every 4 KiB of every file."""

    __slots__ = ("buffer", "view", "_pool", "_users", "_lock")

    def __init__(self, pool: queue.Queue, n: int):
        self.buffer: bytearray = pool.get()
        self.view = memoryview(self.buffer)[:n]
        self._pool = pool
        self._users = 2
        self._lock = threading.Lock()

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._pool.put(self.buffer)


def _buffer_pool(count: int = 8) -> queue.Queue:
    pool: queue.Queue = queue.Queue()
    for _ in range(count):
        pool.put(bytearray(BLOCKSIZE))
    return pool


class ImageSink:
    """The file object pycdlib writes the image to.

    It computes the image sha256 as the image is written.  pycdlib writes the
    metadata first, scattered, then the file data in extent order (see
    _layout).  The metadata ranges are remembered; from the first file read
    on, each write must come after everything hashed so far: the gap before
    it is filled from the remembered metadata (read back, it is small) or
    with zeros (unwritten space in a new file).  Any other write order makes
    the sink fall back to reading the finished image back."""

    _ZEROS = bytes(1024 * 1024)

    def __init__(
        self, out: BinaryIO, hasher: HashWorker, *, hash_image: bool = True, implant: isomd5.Digest | None = None
    ):
        self._out = out
        # Without hash_image (a finalize hook rewrites the image and it is
        # hashed afterwards) the sha256 is not taken; with ``implant`` the
        # implanted MD5's sums are, on the same way through the image.
        self._hash_image = hash_image
        self._fd = out.fileno()
        self._hasher = hasher
        self._sha = hashlib.sha256()
        self.implant = implant
        feeds = ([self._sha.update] if hash_image else []) + ([implant.update] if implant is not None else [])
        self._feed = feeds[0] if len(feeds) == 1 else lambda data: [feed(data) for feed in feeds]
        self._pos = 0
        self._out_pos = 0
        self._end = 0
        self._meta: list[tuple[int, int]] = []
        self._meta_index = 0
        self._streaming = False
        self._broken = not feeds
        self._hashed = 0
        self._lease: _Lease | None = None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_SET:
            self._pos = offset
        elif whence == os.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._end + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def lend(self, lease: _Lease) -> None:
        """The next write is ``lease.view``; release the lease when hashed."""
        self._lease = lease

    def write(self, data: bytes) -> int:
        lease, self._lease = self._lease, None
        if lease is not None and data is not lease.view:
            lease.release()
            lease = None
        n = len(data)
        if self._out_pos != self._pos:
            self._out.seek(self._pos)
        # Large writes cost the kernel 2-3x the CPU of 128 KiB ones here
        # (docs/benchmarks.md); reads and hashing keep their big blocks.
        view = memoryview(data)
        for offset in range(0, n, WRITE_SLICE):
            self._out.write(view[offset : offset + WRITE_SLICE])
        start, self._pos = self._pos, self._pos + n
        self._out_pos = self._pos
        self._end = max(self._end, self._pos)
        if not self._streaming:
            self._meta.append((start, self._pos))
        elif not self._broken:
            if start < self._hashed or not self._fill_to(start):
                self._broken = True
            else:
                self._hasher.submit(self._feed, data, lease.release if lease else None)
                lease = None
                self._hashed = self._pos
                if self._meta_index < len(self._meta) and self._meta[self._meta_index][0] < self._pos:
                    self._broken = True
        if lease is not None:
            lease.release()
        return n

    def begin_data(self) -> None:
        """Called before the first byte of file data is read."""
        if self._streaming:
            return
        self._out.flush()
        merged: list[tuple[int, int]] = []
        for start, end in sorted(self._meta):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        self._meta = merged
        self._streaming = True

    def _fill_to(self, target: int) -> bool:
        """Hash [hashed, target) from remembered metadata and zeros."""
        while self._hashed < target:
            if self._meta_index < len(self._meta) and self._meta[self._meta_index][0] <= self._hashed:
                end = self._meta[self._meta_index][1]
                if end > target:
                    return False
                n = min(end - self._hashed, BLOCKSIZE)
                self._hasher.submit(self._feed, os.pread(self._fd, n, self._hashed))
                self._hashed += n
                if self._hashed == end:
                    self._meta_index += 1
                continue
            stop = target
            if self._meta_index < len(self._meta):
                stop = min(stop, self._meta[self._meta_index][0])
            while self._hashed < stop:
                n = min(stop - self._hashed, len(self._ZEROS))
                self._hasher.submit(self._feed, memoryview(self._ZEROS)[:n])
                self._hashed += n
        return True

    def finish(self, total: int) -> str:
        """The sha256 of the finished image of ``total`` bytes (when it is
        hashed); the implant's sums are then complete too."""
        self._out.flush()
        if self._end != total:
            raise OSError(f"image is {self._end} bytes, expected {total}")
        streamed = self._streaming and not self._broken and self._fill_to(total)
        self._hasher.close()
        if not streamed and self.implant is not None:
            # Written out of order: the sums come from reading the image back.
            self.implant = isomd5.Digest(total)
            _read_back(self._fd, total, self.implant.update)
        if not self._hash_image:
            return ""
        return self._sha.hexdigest() if streamed else _sha256_of(self._fd, total)


def _sha256_of(fd: int, total: int) -> str:
    """Read a finished image back (when it could not be hashed on the way,
    or after a finalize hook rewrote part of it)."""
    if os.fstat(fd).st_size != total:
        raise OSError(f"image is {os.fstat(fd).st_size} bytes, expected {total}")
    sha = hashlib.sha256()
    _read_back(fd, total, sha.update)
    return sha.hexdigest()


def _read_back(fd: int, total: int, update: Callable[[bytes], Any]) -> None:
    offset = 0
    while offset < total:
        chunk = os.pread(fd, min(BLOCKSIZE, total - offset), offset)
        if not chunk:
            raise OSError("image shorter than written")
        update(chunk)
        offset += len(chunk)


# --- sources --------------------------------------------------------------------


class _Build:
    """What the sources of one build share."""

    def __init__(self) -> None:
        self.hasher = HashWorker("discsub-source-sha256")
        self.image_hasher = HashWorker("discsub-image-sha256")
        self.pool = _buffer_pool()
        self.problems: dict = {}
        self.kinds: dict = {}  # the problems' keys -> errors.MISSING or UNREADABLE (else a mismatch)
        self.sink: ImageSink | None = None


class _Source:
    """What pycdlib reads one file from: opens the DiscFile lazily, hashes
    the bytes on the hash worker as they pass, and always delivers exactly
    ``size`` bytes so that the layout holds even when the source lies (the
    image is then thrown away)."""

    mode = "rb"  # pycdlib checks that sources are binary

    def __init__(self, f: DiscFile, build: _Build):
        self.file = f
        self._build = build
        self._stream: BinaryIO | None = None
        self._sha = hashlib.sha256()
        self._started = False
        self._delivered = 0
        self._got = 0
        self._error: str | None = None
        self._kind = UNREADABLE
        self.finished = False

    def seek(self, offset: int, whence: int = 0) -> int:
        if offset != 0 or whence != 0 or self._delivered:
            raise OSError(f"{self.file.path}: unexpected seek while writing the image")
        return 0

    def _open(self) -> None:
        try:
            self._stream = self.file.open()
        except FileNotFoundError as exc:
            self._error, self._kind = f"missing source ({exc})", MISSING
        except Exception as exc:  # storage is a black box: any failure is this file's problem
            self._error = f"unreadable source ({exc.__class__.__name__}: {exc})"

    def _fill(self, view: memoryview) -> int:
        assert self._stream is not None
        readinto = getattr(self._stream, "readinto", None)
        got = 0
        try:
            while got < len(view):
                if readinto is not None:
                    n = readinto(view[got:]) or 0
                else:
                    chunk = self._stream.read(len(view) - got)
                    n = len(chunk)
                    view[got : got + n] = chunk
                if not n:
                    break
                got += n
        except Exception as exc:
            self._error = f"unreadable source ({exc.__class__.__name__}: {exc})"
        return got

    def read(self, n: int = -1) -> memoryview:
        build = self._build
        assert build.sink is not None
        if not self._started:
            self._started = True
            build.sink.begin_data()
            self._open()
        n = min(n if n >= 0 else self.file.size, self.file.size - self._delivered)
        lease = _Lease(build.pool, n)
        got = self._fill(lease.view) if self._error is None else 0
        if got < n:
            lease.view[got:] = bytes(n - got)
        self._got += got
        build.hasher.submit(self._sha.update, lease.view[:got], lease.release)
        build.sink.lend(lease)
        self._delivered += n
        if self._delivered >= self.file.size:
            self._finish()
        return lease.view

    def _finish(self) -> None:
        extra = b""
        if self._stream is not None and self._error is None:
            try:
                extra = self._stream.read(1)
            except Exception as exc:
                self._error = f"unreadable source ({exc.__class__.__name__}: {exc})"
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()
            self._stream = None
        self.finished = True
        self._build.hasher.submit(self._judge, bool(extra))

    def _judge(self, longer: bool) -> None:
        """On the hash worker, after every byte of this file went through."""
        f = self.file
        expected = f"sha256 {f.sha256} ({f.size} bytes)"
        key = f.item_id if f.item_id is not None else f.path
        if self._error is not None:
            found = self._error
            self._build.kinds[key] = self._kind
        elif self._got < f.size:
            found = f"only {self._got} bytes"
        elif longer:
            found = f"more than {f.size} bytes"
        elif self._sha.hexdigest() != f.sha256.lower():
            found = f"sha256 {self._sha.hexdigest()}"
        else:
            return
        self._build.problems[key] = f"expected {expected}, found {found}"

    def check_unread(self) -> None:
        """pycdlib never reads an empty file; check that it is one."""
        if self.finished:
            return
        self._open()
        self._finish()


# --- writing ----------------------------------------------------------------------


@contextlib.contextmanager
def _syncing(fd: int) -> Iterator[None]:
    """An fsync of ``fd`` on a thread of its own while the block runs."""
    failed: list[OSError] = []

    def sync() -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            failed.append(exc)

    thread = threading.Thread(target=sync, name="discsub-image-fsync")
    thread.start()
    try:
        yield
    finally:
        thread.join()
    if failed:
        raise failed[0]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_image(
    files: Sequence[DiscFile],
    dest: Path,
    volume_id: str,
    epoch: int,
    progress: Callable[[int, int], None] | None = None,
    finalize: Callable[[Path], str | None] | None = None,
    hash_image: bool = True,
    implant_md5: bool = False,
) -> ImageResult:
    """Write the image of ``files`` to ``dest``, atomically and reproducibly.

    Every timestamp is ``epoch``.  Source bytes are checked against each
    file's sha256 while they are copied; if any differ (or cannot be read,
    or are shorter or longer than the recorded size) :class:`SourceMismatch`
    names all of them and no image is left.  On any failure ``dest`` is
    untouched and no temporary file remains.

    With ``implant_md5`` the image gets the MD5 of :mod:`exporter.isomd5`,
    its sums taken on the way (``implanted_md5`` of the result).

    ``finalize(path)``, if given, may append to the written image (the
    recovery data of :mod:`exporter.ecc`) before it is renamed to ``dest``;
    the size and sha256 are then those of the final file: the sha256 that
    ``finalize`` returns, when it read the whole file, else read here.  It
    must be deterministic.

    With ``hash_image=False`` the image is not hashed here (``sha256`` is
    empty): for a caller whose read-back (:func:`exporter.verify.verify_image`)
    computes it anyway.
    """
    dest = Path(dest)
    tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}-{threading.get_ident()}"
    build = _Build()
    try:
        with frozen_clock(epoch, volume_id):
            sources: list[_Source] = []

            def source(f: DiscFile) -> _Source:
                sources.append(_Source(f, build))
                return sources[-1]

            iso = _layout(files, volume_id, source)
            total = iso.pvd.space_size * SECTOR_SIZE
            # A leftover of this name can only be from a dead process whose pid was reused.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            with open(tmp, "xb+", buffering=1024 * 1024) as out:
                implant = isomd5.Digest(total) if implant_md5 else None
                streamed = hash_image and finalize is None and implant is None
                build.sink = ImageSink(out, build.image_hasher, hash_image=streamed, implant=implant)
                last = [-PROGRESS_STEP]

                def report(done: int, total: int) -> None:
                    # pycdlib reports every record it writes; pass on every 16 MiB.
                    if progress is not None and (done - last[0] >= PROGRESS_STEP or done == total):
                        last[0] = done
                        progress(done, total)

                iso.write_fp(build.sink, blocksize=BLOCKSIZE, progress_cb=report)
                iso.close()
                for s in sources:
                    s.check_unread()
                build.hasher.close()
                if build.problems:
                    raise SourceMismatch(dict(build.problems), build.kinds)
                digest = build.sink.finish(total)
                out.flush()
                md5 = isomd5.write(out.fileno(), build.sink.implant) if build.sink.implant else ""
                if finalize is not None:
                    # The image goes to the disk while finalize computes: then
                    # only what finalize adds is left for the fsync below.
                    with _syncing(out.fileno()):
                        digest = finalize(tmp) or ""
                    total = os.fstat(out.fileno()).st_size
                if hash_image and not digest:
                    digest = _sha256_of(out.fileno(), total)
                os.fsync(out.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        build.hasher.abort()
        build.image_hasher.abort()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return ImageResult(size=total, sha256=digest, sectors=total // SECTOR_SIZE, implanted_md5=md5)
