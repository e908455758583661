"""The tools a build runs die with the worker that started them (issue #12,
finding 8): a SIGKILLed worker used to leave par2 writing into its build
folder for minutes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from django.utils import timezone

from exporter import children
from exporter.models import Subscription
from tests.exporter.test_kill_workers import start_worker, worker_env
from tests.factories import add_file
from tests.tools import require_postgres, require_tool

DEADLINE = 5.0  # seconds for a child to be gone after its parent was killed


def running(marker: str) -> list[int]:
    """Live processes whose command line holds ``marker`` (zombies are gone: only a reap is missing)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def wait_for(predicate, seconds: float, what: str):
    until = time.monotonic() + seconds
    while not (found := predicate()):
        assert time.monotonic() < until, what
        time.sleep(0.01)
    return found


def kill_all(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def linux():
    if not Path("/proc/self/cmdline").exists():
        pytest.skip("finds processes through /proc")


@pytest.mark.parametrize("portable", [False, True], ids=["death-signal", "watchdog"])
def test_the_child_of_a_killed_parent_is_gone(linux, tmp_path, portable):
    marker = f"child-of-killed-parent-{os.getpid()}-{portable}"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys
                from exporter import children
                children.run([sys.executable, "-c", "import time; time.sleep(60)", {marker!r}], portable={portable})
            """),
        ],
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        child = wait_for(lambda: running(marker), 10, "the child never started")
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        wait_for(lambda: not running(marker), DEADLINE, f"child {child} outlived its killed parent")
    finally:
        kill_all(running(marker))
        parent.kill()
        parent.wait()


@pytest.mark.parametrize("portable", [False, True], ids=["death-signal", "watchdog"])
def test_a_child_that_finishes_gives_its_output_and_exit_code(portable):
    done = children.run([sys.executable, "-c", "import sys; print('out'); sys.exit(3)"], portable=portable)
    assert (done.returncode, done.stdout) == (3, "out\n")


@pytest.mark.django_db(transaction=True)
def test_a_killed_build_worker_takes_its_par2_with_it(linux, django_user_model, data_dir):
    """A real worker (manage.py build_discs) builds a CD of 24 MB with 30 %
    recovery data: par2 then runs for seconds.  The worker is killed with
    SIGKILL as soon as par2 is seen, and par2 must be gone within seconds."""
    require_postgres()
    require_tool("par2")
    require_tool("implantisomd5", "isomd5sum")
    user = django_user_model.objects.create_user("par2kill")
    Subscription.objects.create(user=user, medium="cd", next_run_at=timezone.now())
    rng = random.Random(12)
    for n in range(3):
        add_file(user, f"big-{n}.bin", rng.randbytes(8 * 1024 * 1024))
    Subscription.objects.filter(user=user).update(ship_now_requested_at=timezone.now())
    env = {**worker_env(data_dir), "DISCSUB_PAR2_PERCENT": "30"}
    worker = start_worker(env)
    marker = str(Path(env["DISCSUB_DATA_DIR"]) / "build")
    try:
        par2 = wait_for(lambda: [p for p in running(marker) if p != worker.pid], 60, "par2 never started")
        assert worker.poll() is None, "the worker ended before par2 was seen"
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed = time.monotonic()
        wait_for(lambda: not running(marker), DEADLINE, f"par2 {par2} outlived its killed worker")
        print(f"\npar2 gone {time.monotonic() - killed:.3f} s after its worker was killed")
    finally:
        kill_all(running(marker))
        worker.kill()
        worker.wait()
