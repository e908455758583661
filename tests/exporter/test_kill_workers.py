"""Workers killed with SIGKILL at random points lose nothing (issue #4, DESIGN §2).

Real worker processes (``manage.py build_discs``: a scheduler pass, then
every due build) run against the test's PostgreSQL database and data folder
while uploads go on.  The harness watches each worker's heartbeat row and
kills it with SIGKILL while it is planning, building or verifying, at least
30 times; then a survivor runs until everything is shipped.  Afterwards every
change is on exactly one verified disc, disc numbers are gapless, every image
is whole, nothing is left in the build area, and a disc another worker took
over rebuilds to the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from exporter.models import Change, Disc, DiscEvent, DiscStatus, Resolution, Subscription, WorkerHeartbeat
from tests.exporter.test_exactly_once_postgres import assert_exactly_once
from tests.factories import add_file
from tests.tools import IN_CI, require_postgres, require_tool

pytestmark = pytest.mark.django_db(transaction=True)

KILLS = int(os.environ.get("DISCSUB_KILLS", "30"))
PHASES = ("planning", "building", "verifying")
LEASE_SECONDS = 2
DEADLINE = 240  # seconds for the whole run before the test fails instead of hanging


def worker_env(data_dir: Path) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PYTEST_CURRENT_TEST")}
    env.update(
        DATABASE_URL=url,
        DISCSUB_DATA_DIR=str(data_dir),
        DISCSUB_LEASE_SECONDS=str(LEASE_SECONDS),
        # Killed attempts count as attempts; none of them is the disc's fault.
        DISCSUB_MAX_BUILD_ATTEMPTS="1000",
        # Every round asks for a disc now; the per-period cap is not what is tested.
        DISCSUB_MAX_DISCS_PER_PERIOD="1000",
        DISCSUB_PAR2_PERCENT="5",
        DISCSUB_LOG_LEVEL="WARNING",
        SECRET_KEY="kill-test-" + "k" * 50,
        PYTHONUNBUFFERED="1",
    )
    return env


def start_worker(env) -> subprocess.Popen:
    manage = Path(settings.BASE_DIR) / "manage.py"
    # Its log goes to a file: a pipe nobody reads would fill up and stop it.
    log = Path(env["DISCSUB_DATA_DIR"]).parent / "workers.log"
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(manage), "build_discs", "--json", "--skip-checks"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )


def phase_of(pid: int) -> str | None:
    beat = WorkerHeartbeat.objects.filter(pid=pid).order_by("-seen_at").first()
    return beat.task if beat else None


def upload_some(rng: random.Random, subscribers, n: int) -> None:
    """New files for two subscribers, who then ask for a disc now (set
    directly: the portal's once-a-period limit is not what is tested)."""
    chosen = rng.sample(subscribers, 2)
    for user in chosen:
        for k in range(rng.randint(1, 3)):
            add_file(user, f"u{n}-{k}-{rng.randint(0, 9999)}.bin", rng.randbytes(rng.randint(100, 4000)))
    Subscription.objects.filter(user__in=[u.pk for u in chosen]).update(ship_now_requested_at=timezone.now())


@dataclass
class Slot:
    """A running worker and the phase to kill it in."""

    proc: subprocess.Popen
    target: str
    started: float
    kill_at: float | None = None


def debug(line: str) -> None:
    if os.environ.get("DISCSUB_KILL_DEBUG"):
        print(line, file=sys.stderr, flush=True)


def everything_shipped(subscribers) -> bool:
    return (
        not Change.objects.filter(owner__in=subscribers, resolution=Resolution.PENDING).exists()
        and not Disc.objects.exclude(status=DiscStatus.VERIFIED).exists()
    )


def test_workers_killed_at_random_points_lose_nothing(django_user_model, data_dir, tmp_path):
    require_postgres()
    require_tool("par2")
    require_tool("implantisomd5", "isomd5sum")
    rng = random.Random(int(os.environ.get("DISCSUB_KILL_SEED", "4")))
    started = time.monotonic()
    until = started + DEADLINE
    subscribers = []
    for n in range(4):
        user = django_user_model.objects.create_user(f"kill{n}")
        Subscription.objects.create(user=user, medium="cd", next_run_at=timezone.now())
        subscribers.append(user)
    env = worker_env(data_dir)

    kills: Counter[str] = Counter()
    slots: list[Slot | None] = [None, None]  # two workers at a time
    started_workers = 0
    # Until enough kills in all and at least three in every phase; the next
    # worker aims at the phase with fewest kills so far (verifying a small CD
    # is short, and a worker killed late counts where it was).
    while sum(kills.values()) < KILLS or any(kills[p] < 3 for p in PHASES):
        now = time.monotonic()
        assert now < until, f"only {dict(kills)} kills before the deadline"
        for n, slot in enumerate(slots):
            if slot is None or slot.proc.poll() is not None:
                upload_some(rng, subscribers, started_workers)
                target = min(PHASES, key=lambda p: (kills[p], PHASES.index(p)))
                slots[n] = Slot(start_worker(env), target, time.monotonic())
                debug(f"{now - started:6.1f} started {slots[n].proc.pid} to kill in {target}")
                started_workers += 1
                continue
            seen = phase_of(slot.proc.pid)
            if slot.kill_at is None and seen == slot.target:
                slot.kill_at = now + rng.uniform(0, 0.05)  # somewhere inside the phase
            if slot.kill_at is not None and now >= slot.kill_at:
                slot.proc.send_signal(signal.SIGKILL)
                slot.proc.wait()
                if seen in PHASES:
                    kills[seen] += 1
                debug(f"{now - started:6.1f} killed {slot.proc.pid} in {seen} (target {slot.target})")
            elif now - slot.started > 6:  # its phase is slow to come: kill it where it is
                slot.proc.send_signal(signal.SIGKILL)
                slot.proc.wait()
                if seen in PHASES:
                    kills[seen] += 1
                debug(f"{now - started:6.1f} killed {slot.proc.pid} late in {seen} (target {slot.target})")
                if os.environ.get("DISCSUB_KILL_DEBUG"):
                    with connection.cursor() as cur:
                        cur.execute(
                            "SELECT pid, state, wait_event_type, wait_event, left(query, 100) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                        )
                        for row in cur.fetchall():
                            debug(f"    {row}")
        time.sleep(0.01)
    for slot in slots:
        if slot and slot.proc.poll() is None:
            slot.proc.send_signal(signal.SIGKILL)
            slot.proc.wait()
    assert all(kills[p] >= 3 for p in PHASES), f"kills per phase: {dict(kills)}"

    # A survivor finishes the work once the dead workers' leases run out.
    while not everything_shipped(subscribers):
        assert time.monotonic() < until, (
            "the survivor did not finish in time: "
            f"{Change.objects.filter(owner__in=subscribers, resolution=Resolution.PENDING).count()} changes pending, "
            f"discs not verified: {list(Disc.objects.exclude(status='verified').values_list('status', 'last_error'))}"
        )
        Subscription.objects.filter(user__in=subscribers).update(ship_now_requested_at=timezone.now())
        survivor = start_worker(env)
        survivor.wait(timeout=max(1, until - time.monotonic()))
        debug(f"{time.monotonic() - started:6.1f} survivor exited {survivor.returncode}")
        if not everything_shipped(subscribers):
            time.sleep(0.5)  # a lease of a killed worker has not run out yet

    discs = list(Disc.objects.filter(owner__in=subscribers).order_by("owner", "number"))
    for user in subscribers:
        assert_exactly_once(user)
    assert all(d.status == DiscStatus.VERIFIED for d in discs)
    for disc in discs:
        image = Path(settings.IMAGES_DIR) / disc.image_name
        data = image.read_bytes()
        assert len(data) == disc.image_size and hashlib.sha256(data).hexdigest() == disc.image_sha256, disc
    assert not [p for p in Path(settings.IMAGES_DIR).rglob("*") if ".partial-" in p.name], "half-written images"
    build_dir = Path(settings.BUILD_DIR)
    left = sorted(str(p.relative_to(build_dir)) for p in build_dir.rglob("*")) if build_dir.exists() else []
    assert not left, f"leftovers in the build area: {left[:20]}"

    # A disc another worker took over mid-build is the same image a fresh build makes.
    taken_over = list(
        DiscEvent.objects.filter(disc__in=discs, from_status="building", note__contains="ran out")
        .values_list("disc_id", flat=True)
        .distinct()[:2]
    )
    assert taken_over, "no build was taken over"
    for disc_id in taken_over:
        call_command("rebuild_disc", disc_id, to=str(tmp_path / f"again-{disc_id}.iso"))

    if not IN_CI:
        print(
            f"\n{sum(kills.values())} kills {dict(kills)} in {started_workers} workers, {len(discs)} discs, "
            f"{time.monotonic() - started:.0f} s"
        )
