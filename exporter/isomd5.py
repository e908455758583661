"""An MD5 implanted in each image, so that ``checkisomd5`` (Debian's isomd5sum,
also in Fedora and most live systems) checks a burned disc or an image file:

    checkisomd5 --verbose /dev/sr0

The implant is the one ``implantisomd5 --force`` (isomd5sum 1.2) writes,
byte for byte, computed here so that the writer can take the sums on its way
through the image instead of reading it once more (a test holds the two to
the same bytes).  Into the application use field of the ISO 9660 primary
volume descriptor, bytes 883-1394 of sector 16, go the MD5 of the image but
its last 15 sectors (with that field read as spaces), and 20 "fragment sums"
(the first hex digit of the first 3 bytes of the MD5 so far, taken where
implantisomd5's reads of 16 sectors first cross each 21st of that length),
as text padded with spaces.  No file and no other descriptor changes, and
the same image always gets the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

SECTOR = 2048
APPLICATION_USE = 16 * SECTOR + 883
APPLICATION_USE_SIZE = 512
SKIP_SECTORS = 15
FRAGMENT_COUNT = 20
FRAGMENT_DIGITS = 3  # 60 characters of fragment sums in all
READ_SIZE = 16 * SECTOR  # implantisomd5 reads this much at a time: its fragment sums follow the reads
_IMPLANTED = re.compile(rb"ISO MD5SUM = ([0-9a-f]{32});")
_SPACES = b" " * APPLICATION_USE_SIZE


class IsoMd5Error(RuntimeError):
    pass


def implanted(image: Path) -> str | None:
    """The MD5 implanted in ``image``, if any."""
    with open(image, "rb") as fh:
        fh.seek(APPLICATION_USE)
        found = _IMPLANTED.match(fh.read(APPLICATION_USE_SIZE))
    return found.group(1).decode() if found else None


def _fragment_ends(length: int) -> list[int]:
    """Where implantisomd5 takes its fragment sums: after the read that
    starts at the first offset (a multiple of READ_SIZE) in each new
    21st of ``length``; several 21sts in one read give one sum."""
    ends = []
    for fragment in range(1, FRAGMENT_COUNT + 1):
        start = -(-fragment * length // ((FRAGMENT_COUNT + 1) * READ_SIZE)) * READ_SIZE
        end = min(start + READ_SIZE, length)
        if start < length and (not ends or ends[-1] != end):
            ends.append(end)
    return ends


class Digest:
    """implantisomd5's sums of a volume of ``volume_bytes``, fed its bytes in order."""

    def __init__(self, volume_bytes: int):
        self.volume_bytes = volume_bytes
        self.length = max(0, volume_bytes - SKIP_SECTORS * SECTOR)
        self._md5 = hashlib.md5()
        self._at = 0
        self._cuts = sorted(
            {APPLICATION_USE, APPLICATION_USE + APPLICATION_USE_SIZE, *_fragment_ends(self.length)} - {0, self.length}
        )
        self._sums = set(_fragment_ends(self.length))
        self._fragments: list[str] = []

    def update(self, data) -> None:
        view = memoryview(data).cast("B")
        start, end = self._at, min(self._at + len(view), self.length)
        self._at += len(view)
        position = start
        while position < end:
            while self._cuts and self._cuts[0] <= position:
                self._cuts.pop(0)
            stop = min(end, self._cuts[0]) if self._cuts else end
            if APPLICATION_USE <= position < APPLICATION_USE + APPLICATION_USE_SIZE:
                self._md5.update(_SPACES[: stop - position])
            else:
                self._md5.update(view[position - start : stop - start])
            position = stop
            if position in self._sums:
                first = self._md5.copy().digest()[:FRAGMENT_DIGITS]
                self._fragments.append("".join(f"{b:x}"[0] for b in first))

    def application_use(self) -> bytes:
        """The field as implantisomd5 fills it, once every byte went through."""
        if self._at < self.length:
            raise IsoMd5Error(f"the MD5 saw {self._at} of the volume's first {self.length} bytes")
        text = (
            f"ISO MD5SUM = {self._md5.hexdigest()};SKIPSECTORS = {SKIP_SECTORS};RHLISOSTATUS=0;"
            f"FRAGMENT SUMS = {''.join(self._fragments)};FRAGMENT COUNT = {FRAGMENT_COUNT};"
            "THIS IS NOT THE SAME AS RUNNING MD5SUM ON THIS ISO!!"
        ).encode("ascii")
        return text.ljust(APPLICATION_USE_SIZE)

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()


def volume_bytes(fd: int) -> int:
    """The volume size its primary volume descriptor (sector 16) states."""
    pvd = os.pread(fd, 88, 16 * SECTOR)
    if len(pvd) < 88 or pvd[:6] != b"\x01CD001":
        raise IsoMd5Error("no ISO 9660 primary volume descriptor at sector 16")
    return int.from_bytes(pvd[84:88], "big") * SECTOR


def write(fd: int, digest: Digest) -> str:
    """Write ``digest``'s field into the image open at ``fd``; its MD5."""
    os.pwrite(fd, digest.application_use(), APPLICATION_USE)
    return digest.md5


def implant_fd(fd: int) -> str:
    """Implant the MD5 into the image open (read-write) at ``fd``, reading it
    once; the MD5."""
    size = volume_bytes(fd)
    digest = Digest(size)
    at = 0
    while at < digest.length:
        chunk = os.pread(fd, min(4 << 20, digest.length - at), at)
        if not chunk:
            raise IsoMd5Error(f"the image ends at byte {at}, inside its volume of {size} bytes")
        digest.update(chunk)
        at += len(chunk)
    return write(fd, digest)


def implant(image: Path) -> str:
    """Implant the MD5 in ``image`` (in place) and return it."""
    fd = os.open(image, os.O_RDWR)
    try:
        return implant_fd(fd)
    finally:
        os.close(fd)
