"""Sign-in attempts arriving together: the limiter takes each attempt before
the password is checked, in one atomic step, so that a burst (say, at the
moment a wait ends) gets no more password checks than the limit allows.
Real threads against the real cache: the file cache, and Redis when
REDIS_URL is set (the PostgreSQL run)."""

import os
import threading
import time

import pytest
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)

REQUESTS = 8
ALLOWED = 3


class SlowCountingHasher(MD5PasswordHasher):
    """Checking a password takes long, as PBKDF2 does; every check is counted."""

    checks = 0
    lock = threading.Lock()

    def verify(self, password, encoded):
        with SlowCountingHasher.lock:
            SlowCountingHasher.checks += 1
        time.sleep(0.3)
        return super().verify(password, encoded)


@pytest.fixture(params=["file", "redis"])
def shared_cache(request, settings, tmp_path):
    if request.param == "redis":
        if not os.environ.get("REDIS_URL"):
            pytest.skip("needs Redis (set REDIS_URL); .ci/run runs the suite again with it")
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}
        }
    else:
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
        }
    cache.clear()
    yield request.param
    cache.clear()


def _at_once(count: int, attempt) -> list[int]:
    statuses = [0] * count
    start = threading.Barrier(count)

    def run(n):
        start.wait()
        statuses[n] = attempt(n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_a_burst_of_wrong_passwords_gets_only_the_allowed_checks(shared_cache, alice, settings):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = ALLOWED
    settings.PASSWORD_HASHERS = [f"{__name__}.SlowCountingHasher"]
    SlowCountingHasher.checks = 0

    def attempt(_n):
        response = Client().post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.9.9.9")
        return response.status_code

    statuses = _at_once(REQUESTS, attempt)
    assert SlowCountingHasher.checks == ALLOWED
    assert sorted(statuses) == [200] * ALLOWED + [429] * (REQUESTS - ALLOWED)
    # The right password is refused now too (the wait), but is checked after it.
    assert (
        Client()
        .post("/login/", {"username": "alice", "password": "alice-password-1"}, REMOTE_ADDR="10.9.9.9")
        .status_code
        == 429
    )


def test_the_right_password_gives_its_attempt_back(shared_cache, alice, settings):
    settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER = ALLOWED
    for _ in range(ALLOWED + 2):
        client = Client()
        response = client.post("/login/", {"username": "alice", "password": "alice-password-1"}, REMOTE_ADDR="10.9.9.9")
        assert response.status_code == 302
