"""An MD5 implanted in each image, so that ``checkisomd5`` (Debian's isomd5sum,
also in Fedora and most live systems) checks a burned disc or an image file:

    checkisomd5 --verbose /dev/sr0

``implantisomd5`` writes the MD5 of the whole image (but its last 15
sectors, and with the area it writes to read as spaces) into the application
use field of the ISO 9660 primary volume descriptor, bytes 883-1394 of
sector 16.  No file and no other descriptor changes, and the same image
always gets the same bytes.  It is a runtime dependency of the builder.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from exporter import children

APPLICATION_USE = 16 * 2048 + 883
APPLICATION_USE_SIZE = 512
_IMPLANTED = re.compile(rb"ISO MD5SUM = ([0-9a-f]{32});")


class IsoMd5Error(RuntimeError):
    pass


def implanted(image: Path) -> str | None:
    """The MD5 implanted in ``image``, if any."""
    with open(image, "rb") as fh:
        fh.seek(APPLICATION_USE)
        found = _IMPLANTED.match(fh.read(APPLICATION_USE_SIZE))
    return found.group(1).decode() if found else None


def implant(image: Path) -> str:
    """Implant the MD5 in ``image`` (in place) and return it."""
    tool = shutil.which("implantisomd5")
    if tool is None:
        raise IsoMd5Error(
            "implantisomd5 is not installed (Debian package isomd5sum): it is needed to build disc images"
        )
    # --force: replace an MD5 that is already there (a retried build).
    run = children.run([tool, "--force", str(image)])
    md5 = implanted(image) if run.returncode == 0 else None
    if md5 is None:
        detail = " ".join((run.stderr or run.stdout).split())[-300:]
        raise IsoMd5Error(f"implantisomd5 failed (exit {run.returncode}): {detail}")
    return md5
