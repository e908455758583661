"""Who is working: worker identity, heartbeat rows and build leases.

A worker is one process (``host:pid``).  It reports what it is doing in its
:class:`WorkerHeartbeat` row, and while it builds or verifies a disc it holds
the disc's lease (``Disc.leased_by``, ``Disc.lease_expires_at``) and renews
it from a background thread.  A worker that dies stops renewing; once the
lease has run out another worker takes the disc over (exporter.build).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import uuid

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from exporter.models import Disc, DiscStatus, WorkerHeartbeat

log = logging.getLogger(__name__)


def worker_id() -> str:
    """This process, as leases and heartbeats name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def new_lease_token() -> str:
    """A lease holder: ``host:pid:random``, unique per claim (the pid tells
    the build area's clean-up whose leftovers are whose)."""
    return f"{worker_id()}:{uuid.uuid4().hex[:8]}"


def holder_pid(token: str) -> int | None:
    try:
        return int(token.split(":")[1])
    except (IndexError, ValueError):
        return None


def lease_duration() -> dt.timedelta:
    return dt.timedelta(seconds=settings.DISCSUB_LEASE_SECONDS)


def _cluster() -> str:
    return os.environ.get("Q_CLUSTER_NAME") or settings.Q_CLUSTER.get("name", "")


def beat(task: str = "", disc_id: int | None = None) -> None:
    """Record that this worker is alive and what it is doing ("" when idle).

    A heartbeat must never break the work it reports on: database errors
    are logged and swallowed."""
    worker = worker_id()
    try:
        WorkerHeartbeat.objects.update_or_create(
            worker=worker,
            defaults={
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "cluster": _cluster(),
                "seen_at": timezone.now(),
                "task": task[:200],
                "disc_id": disc_id,
            },
        )
    except DatabaseError as exc:
        log.warning("heartbeat of %s not recorded: %s", worker, exc)


def touch() -> None:
    """Record that this worker is alive, leaving what it does as it was."""
    try:
        WorkerHeartbeat.objects.filter(worker=worker_id()).update(seen_at=timezone.now())
    except DatabaseError as exc:
        log.warning("heartbeat of %s not recorded: %s", worker_id(), exc)


def renew(disc_id: int, token: str) -> bool:
    """Push the lease ``token`` holds on the disc forward; False when it no
    longer holds it (it ran out and another worker took the disc)."""
    return bool(
        Disc.objects.filter(pk=disc_id, leased_by=token, status__in=[DiscStatus.BUILDING, DiscStatus.BUILT]).update(
            lease_expires_at=timezone.now() + lease_duration()
        )
    )


class LeaseKeeper:
    """Renews a disc's lease (and this worker's heartbeat) every third of the
    lease, from a thread with its own database connection, until stopped.

    ``lost`` is set when a renewal finds the lease gone; the build's final
    conditional update (which names the holder) refuses the result then
    anyway, so this is for the log and for stopping early."""

    def __init__(self, disc_id: int, token: str):
        self.disc_id, self.token = disc_id, token
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{disc_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        interval = max(settings.DISCSUB_LEASE_SECONDS / 3, 0.2)
        try:
            while not self._stop.wait(interval):
                try:
                    if not renew(self.disc_id, self.token):
                        log.warning("lost the lease on disc %s (%s)", self.disc_id, self.token)
                        self.lost.set()
                        return
                    touch()
                except DatabaseError as exc:
                    # The next renewal may succeed; the lease is long enough to miss one.
                    log.warning("lease renewal of disc %s failed: %s", self.disc_id, exc)
        finally:
            connection.close()
