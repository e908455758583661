"""The sliding log behind every sign-in door counts every attempt once, also
when many processes record at the same moment (Redis with REDIS_URL, else the
file cache shared by one machine's processes, as on the PostgreSQL run and
on the embedded default)."""

import os

import pytest
from django.core.cache import cache

from discsub.signin_limits import Limit, record, wait_seconds

LIMIT = Limit("test", attempts=200, window=60.0, then_every=5.0)


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def test_the_wait_follows_the_oldest_attempt_still_in_the_window():
    hard = Limit("hard", attempts=2, window=60.0)
    record([(hard, "k")], now=1000.0)
    record([(hard, "k")], now=1010.0)
    assert wait_seconds([(hard, "k")], now=1030.0) == 30  # until 1000 leaves the window
    assert wait_seconds([(hard, "k")], now=1060.0) == 0
    assert wait_seconds([(hard, "other")], now=1030.0) == 0
    slowed = Limit("slowed", attempts=2, window=60.0, then_every=5.0)
    record([(slowed, "k")], now=1000.0)
    record([(slowed, "k")], now=1010.0)
    assert wait_seconds([(slowed, "k")], now=1012.0) == 3  # one attempt 5 s after the last
    assert wait_seconds([(slowed, "k")], now=1015.0) == 0


def test_attempts_from_many_processes_at_once_are_all_counted():
    processes = 4
    per_process = 50
    children = []
    for _ in range(processes):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                for n in range(per_process):
                    record([(LIMIT, "shared")], now=1000.0 + n / 100)
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    for pid in children:
        assert os.waitpid(pid, 0)[1] == 0
    # 200 attempts in the window: exactly at the limit, so the next must wait.
    assert wait_seconds([(LIMIT, "shared")], now=1001.0) > 0
    assert wait_seconds([(Limit("test", 201, 60.0), "shared")], now=1001.0) == 0


def test_processes_reserving_at_once_get_only_the_allowed_attempts():
    from discsub.signin_limits import reserve

    hard = Limit("reserve", attempts=2, window=60.0, then_every=30.0)
    children = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                code = 0 if reserve([(hard, "k"), (LIMIT, "client")], now=1000.0).wait == 0 else 3
            except BaseException:
                code = 1
            os._exit(code)
        children.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    assert sorted(codes) == [0, 0, 3, 3, 3, 3]  # two took an attempt, four were told to wait
    # A refused reservation took nothing, under any of its keys.
    assert wait_seconds([(Limit("reserve", 3, 60.0), "k")], now=1000.0) == 0
    assert wait_seconds([(Limit("test", 3, 60.0), "client")], now=1000.0) == 0
