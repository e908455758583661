"""Two django-q2 clusters against one PostgreSQL database (issue #4, DESIGN §2, §6).

Two real ``qcluster`` processes (Redis broker when ``REDIS_URL`` is set, as
in CI; the ORM broker otherwise) serve one queue.  Hundreds of subscribers
are due; scheduler passes are queued again and again while uploads go on,
so both clusters plan and build at the same time.  Afterwards every change
is carried exactly once, disc numbers are gapless, both clusters did
builds, and no disc was built twice.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone
from django_q.tasks import async_task

from exporter.models import Change, Disc, DiscEvent, DiscStatus, JobRun, Resolution, Subscription
from exporter.planning import plan_next_disc
from tests.exporter.test_exactly_once_postgres import assert_exactly_once
from tests.factories import add_file
from tests.tools import require_postgres, require_tool

pytestmark = pytest.mark.django_db(transaction=True)

SUBSCRIBERS = 200
BIG = 16  # subscribers whose backlog passes the partial-disc minimum: their discs are built
WAIT = 180  # seconds before the test fails instead of hanging


def cluster_env(data_dir: Path, queue: str) -> dict[str, str]:
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env.update(
        DATABASE_URL=url,
        DISCSUB_DATA_DIR=str(data_dir),
        SECRET_KEY=settings.SECRET_KEY,  # tasks are signed with it
        # One queue for the pass and the builds, served by both clusters.
        Q_CLUSTER_NAME=queue,
        DISCSUB_BUILD_QUEUE=queue,
        DISCSUB_BUILD_WORKERS="2",
        DISCSUB_PAR2_PERCENT="0",
        DISCSUB_MIN_PARTIAL_MB="1",
        DISCSUB_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    return env


def parent_of(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def cluster_of(pid: int, clusters: list[subprocess.Popen]) -> int | None:
    """Which of our qcluster processes ``pid`` (a worker) belongs to."""
    roots = {proc.pid: n for n, proc in enumerate(clusters)}
    for _ in range(4):  # worker → sentinel → qcluster
        if pid in roots:
            return roots[pid]
        pid = parent_of(pid)
        if pid is None:
            return None
    return None


def settled() -> bool:
    return not Disc.objects.exclude(status__in=[DiscStatus.VERIFIED, DiscStatus.FAILED]).exists()


def test_two_clusters_plan_and_build_each_change_once(data_dir):
    require_postgres()
    require_tool("implantisomd5", "isomd5sum")
    rng = random.Random(7)
    queue = f"race-{uuid.uuid4().hex[:8]}"
    user_model = get_user_model()
    users = user_model.objects.bulk_create([user_model(username=f"race{n:03d}") for n in range(SUBSCRIBERS)])
    due = timezone.now() - timezone.timedelta(seconds=1)
    Subscription.objects.bulk_create([Subscription(user=u, medium="cd", next_run_at=due) for u in users])
    for n, user in enumerate(users):
        add_file(user, f"first-{n}.bin", rng.randbytes(1_100_000 if n < BIG else 300))

    env = cluster_env(data_dir, queue)
    manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "qcluster"]
    # Their logs go to files: a pipe nobody reads would fill up and stop them.
    logs = [data_dir / f"cluster-{name}.log" for name in "ab"]
    clusters = [subprocess.Popen(manage, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT) for log in logs]
    try:
        deadline = time.monotonic() + WAIT
        passes = 0
        # Uploads go on while passes run: new files, and some subscribers ask for a disc now.
        for round_ in range(4):
            for _ in range(2):
                async_task("exporter.tasks.run_schedule", cluster=queue)
                passes += 1
            for user in rng.sample(users, 15):
                add_file(user, f"more-{round_}-{rng.randint(0, 10**6)}.bin", rng.randbytes(200))
            asking = rng.sample(users[BIG:], 2)
            Subscription.objects.filter(user__in=asking).update(ship_now_requested_at=timezone.now())
            time.sleep(0.5)  # let the passes of this round start before the next uploads
        while JobRun.objects.filter(finished_at__isnull=False).count() < passes or not settled():
            assert time.monotonic() < deadline, (
                f"{JobRun.objects.count()}/{passes} passes, "
                f"{Disc.objects.exclude(status=DiscStatus.VERIFIED).count()} discs not verified; "
                + " | ".join(log.read_text()[-1500:] for log in logs)
            )
            for proc, log in zip(clusters, logs, strict=True):
                assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.2)
        # Who claimed each build ("leased by host:pid:…"), while the workers still run.
        builders = Counter(
            cluster_of(int(note.split(":")[1]), clusters)
            for note in DiscEvent.objects.filter(to_status="building").values_list("note", flat=True)
        )
    finally:
        for proc in clusters:
            proc.send_signal(signal.SIGTERM)
        for proc in clusters:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    discs = list(Disc.objects.all())
    assert len(discs) >= BIG, "the big backlogs were planned"
    assert all(d.status == DiscStatus.VERIFIED for d in discs), [(d.pk, d.last_error) for d in discs]
    assert builders[0] and builders[1], f"both clusters should have built discs: {builders}"
    # No disc was built twice: one claim, one image, one verification each.
    for step in (("planned", "building"), ("building", "built"), ("built", "verified")):
        counts = Counter(
            DiscEvent.objects.filter(from_status=step[0], to_status=step[1]).values_list("disc", flat=True)
        )
        assert set(counts.values()) == {1} and len(counts) == len(discs), f"{step}: {counts.most_common(3)}"
    assert JobRun.objects.filter(finished_at__isnull=False).count() == passes

    # Every change so far is on at most one disc; whatever waits is planned
    # here, and then every change is on exactly one.
    for user in users:
        assert_exactly_once(user, drained=False)
    for user in users:
        while plan_next_disc(user, allow_partial=True):
            pass
    assert not Change.objects.filter(resolution=Resolution.PENDING).exists()
    for user in users:
        assert_exactly_once(user)
