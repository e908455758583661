"""Cleaning up after workers that were killed.

A build leaves two kinds of files while it runs, both named after the disc
and the process (so anything else in these folders must follow the same
pattern to be cleaned):

- its work folder in the build area: ``BUILD_DIR/disc-<disc id>-<pid>-…``
  (PAR2 recovery data, staged payload);
- the image being written, next to the images:
  ``IMAGES_DIR/<owner id>/.disc-<number>.iso.partial-<pid>-…``.

A worker that finishes removes its own; a killed one cannot.  On start a
worker removes every such leftover whose owner is gone: its disc is not
under a live lease held by that pid, and that pid is not running here.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from exporter.models import Disc, DiscStatus
from exporter.workers import holder_pid

log = logging.getLogger(__name__)

_WORK_DIR = re.compile(r"disc-(?P<disc>\d+)-(?P<pid>\d+)-")
_PARTIAL_IMAGE = re.compile(r"\.disc-(?P<number>\d+)\.iso\.partial-(?P<pid>\d+)-")


def _pid_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _live_holders() -> dict[int, int | None]:
    """disc id → pid of the holder, for every disc under a live lease.  One query."""
    rows = Disc.objects.filter(
        status__in=[DiscStatus.BUILDING, DiscStatus.BUILT], lease_expires_at__gt=timezone.now()
    ).values_list("pk", "leased_by")
    return {pk: holder_pid(token) for pk, token in rows}


def leftovers(disc: Disc | None = None) -> list[Path]:
    """The work folders and partial images of workers that are gone (only
    those of ``disc`` when given: the cheap look a worker taking it over takes)."""
    build_dir, images_dir = Path(settings.BUILD_DIR), Path(settings.IMAGES_DIR)
    work = [(p, _WORK_DIR.match(p.name)) for p in (build_dir.iterdir() if build_dir.is_dir() else [])]
    if disc is not None:
        owner_dirs = [images_dir / str(disc.owner_id)]
    else:
        owner_dirs = [d for d in (images_dir.iterdir() if images_dir.is_dir() else []) if d.name.isdigit()]
    partial = []
    for owner_dir in owner_dirs:
        if owner_dir.is_dir():
            partial += [(p, _PARTIAL_IMAGE.match(p.name), int(owner_dir.name)) for p in owner_dir.iterdir()]
    work = [(p, m) for p, m in work if m and (disc is None or int(m["disc"]) == disc.pk)]
    partial = [(p, m, o) for p, m, o in partial if m and (disc is None or int(m["number"]) == disc.number)]
    if not work and not partial:
        return []
    holders = _live_holders()
    disc_ids = {}
    if partial:
        wanted = {(owner, int(m["number"])) for _, m, owner in partial}
        rows = Disc.objects.filter(owner_id__in={o for o, _ in wanted}).values_list("owner_id", "number", "pk")
        disc_ids = {(o, n): pk for o, n, pk in rows if (o, n) in wanted}
    gone = []
    for path, m, disc_id in [(p, m, int(m["disc"])) for p, m in work] + [
        (p, m, disc_ids.get((owner, int(m["number"])))) for p, m, owner in partial
    ]:
        pid = int(m["pid"])
        if disc_id is not None and holders.get(disc_id) == pid:
            continue  # its builder holds a live lease: still at work
        if _pid_running(pid):
            continue  # a live process here (maybe mid-claim); the next start looks again
        gone.append(path)
    return gone


def clean_leftovers(disc: Disc | None = None) -> list[Path]:
    """Remove what killed workers left behind (of ``disc`` only, when given); returns what was removed."""
    removed = []
    for path in leftovers(disc):
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue  # another worker starting at the same time got there first
        removed.append(path)
        log.info("removed the leftover %s of a killed worker", path)
    return removed
