"""django-q2 workers report themselves and clean up after killed ones (exporter.apps)."""

import subprocess
import sys

import pytest
from django_q.signals import post_spawn, pre_execute

from exporter import workers
from exporter.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_a_task_starting_in_a_worker_records_a_heartbeat():
    pre_execute.send(sender="django_q", func=print, task={"name": "build disc 5", "func": "exporter.tasks.build_disc"})
    beat = WorkerHeartbeat.objects.get(worker=workers.worker_id())
    assert beat.task == "build disc 5"


def test_a_new_worker_removes_what_a_killed_one_left(settings):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # its pid is now that of a process that is gone
    leftover = settings.BUILD_DIR / f"disc-1-{proc.pid}-1"
    (leftover / "recovery").mkdir(parents=True)
    post_spawn.send(sender="django_q", proc_name="Process-1")
    assert not leftover.exists()
    assert WorkerHeartbeat.objects.get(worker=workers.worker_id()).task == ""
