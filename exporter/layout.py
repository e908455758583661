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


@dataclass(frozen=True)
class DiscFile:
    """One file of a disc.

    ``path`` is the canonical disc path: POSIX, relative to the disc root,
    NFC, already safe (see :mod:`exporter.names`).  It is the name in the UDF
    and Rock Ridge views; the Joliet and ISO 9660 names are derived from it.
    ``links`` are further canonical paths for the same bytes, stored once
    (hard links).  ``open`` returns a fresh binary stream at offset 0 whose
    bytes must hash to ``sha256``.
    """

    path: str
    size: int
    sha256: str
    open: Callable[[], BinaryIO] = field(compare=False, repr=False)
    links: tuple[str, ...] = ()
    item_id: int | None = None

    @classmethod
    def from_bytes(cls, path: str, data: bytes) -> DiscFile:
        return cls(
            path=path,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            open=lambda: io.BytesIO(data),
        )

    @property
    def all_paths(self) -> tuple[str, ...]:
        return (self.path, *self.links)
