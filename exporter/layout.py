"""What goes into a disc image, as the image writer sees it.

The planner and the builder describe a disc as a list of :class:`DiscFile`;
:mod:`exporter.iso` lays them out and writes the image, and
:mod:`exporter.verify` reads an image back.  Nothing here touches the
database.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO

UNKNOWN_SHA256 = "0" * 64


def _not_yet_made() -> BinaryIO:
    raise RuntimeError("a stand-in for a file made at build time has no bytes")


@dataclass(frozen=True)
class DiscFile:
    """One file of a disc.

    ``path`` is the canonical disc path: POSIX, relative to the disc root,
    NFC, already safe (see :mod:`exporter.names`).  It is the name in the UDF
    and Rock Ridge views; the Joliet and ISO 9660 names are derived from it.
    ``links`` are further canonical paths for the same bytes, stored once
    (hard links).  ``open`` returns a fresh binary stream at offset 0 whose
    bytes must hash to ``sha256``.

    ``local_path``, when set, is a local file with the same bytes (filesystem
    storage): tools that need a path (par2) link to it instead of copying.

    Files generated at build time (the PAR2 recovery files) are not known
    when the planner measures the image: there they are size-only stand-ins
    whose ``sha256`` is :data:`UNKNOWN_SHA256` (as long as a real one, so
    every file that lists it keeps its size) and whose ``open`` raises.
    :func:`exporter.iso.measure_sectors` never reads a file, so the measure is
    exact; the builder passes the real files.
    """

    path: str
    size: int
    sha256: str
    open: Callable[[], BinaryIO] = field(compare=False, repr=False)
    links: tuple[str, ...] = ()
    item_id: int | None = None
    local_path: str | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_bytes(cls, path: str, data: bytes) -> DiscFile:
        return cls(
            path=path,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            open=lambda: io.BytesIO(data),
        )

    @classmethod
    def stand_in(cls, path: str, size: int) -> DiscFile:
        """A file of known size whose bytes are made later (see above)."""
        return cls(path=path, size=size, sha256=UNKNOWN_SHA256, open=_not_yet_made)

    @property
    def all_paths(self) -> tuple[str, ...]:
        return (self.path, *self.links)
