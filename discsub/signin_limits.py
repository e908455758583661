"""The one limiter for every sign-in door: the sign-in form, its code step
(staff with an authenticator) and password reset.

Attempts are kept as a sliding log: the time of each one, so that "5 in 15
minutes" holds for every 15 minutes, not per fixed slot (a burst across a
slot's edge got twice the attempts).  The log is shared by every web
process: a sorted set in Redis when the cache is Redis (several machines),
else a list in the Django cache, changed under a file lock in the cache
folder (every process of one machine).

Nobody can lock someone else out: failed sign-ins are counted per username
*and client address*, and past the limit that client is not refused for
good but asked to wait ``DISCSUB_LOGIN_DELAY_SECONDS`` between attempts; the
right password, typed after the wait, signs in.  Another client is not
slowed down at all."""

from __future__ import annotations

import fcntl
import hashlib
import ipaddress
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache as memoize
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest


@dataclass(frozen=True)
class Limit:
    """At most ``attempts`` in any ``window`` seconds; past that, one more
    every ``then_every`` seconds after the last (None: wait until the
    oldest leaves the window)."""

    name: str
    attempts: int
    window: float
    then_every: float | None = None


def login_limits() -> tuple[Limit, Limit]:
    """Failed sign-ins (wrong password or code): per username from one
    client, and per client whatever the username."""
    window = settings.DISCSUB_LOGIN_WINDOW_MINUTES * 60
    delay = settings.DISCSUB_LOGIN_DELAY_SECONDS
    return (
        Limit("login-user-client", settings.DISCSUB_LOGIN_ATTEMPTS_PER_USER, window, delay),
        Limit("login-client", settings.DISCSUB_LOGIN_ATTEMPTS_PER_IP, window, delay),
    )


def reset_limits() -> tuple[Limit, Limit]:
    """Password-reset emails: per address (nobody's inbox is flooded, from
    however many clients) and per client."""
    window = settings.DISCSUB_RESET_WINDOW_MINUTES * 60
    return (
        Limit("reset-email", settings.DISCSUB_RESET_REQUESTS_PER_EMAIL, window),
        Limit("reset-client", settings.DISCSUB_RESET_REQUESTS_PER_IP, window),
    )


def client_address(request: HttpRequest) -> str:
    """The client's address: the proxy's header when one is configured
    (``DISCSUB_CLIENT_IP_HEADER``), else the socket's peer.  An IPv6 client
    counts as its /64, which one subscriber line usually gets whole."""
    header = settings.DISCSUB_CLIENT_IP_HEADER
    raw = (request.META.get(header) if header else None) or request.META.get("REMOTE_ADDR", "")
    # In a list (X-Forwarded-For) only the last entry, added by our own
    # proxy, is not the client's say.
    raw = raw.split(",")[-1].strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def normalise_username(username: str) -> str:
    return (username or "").strip().casefold()


def wait_seconds(checks: list[tuple[Limit, str]], now: float | None = None) -> int:
    """Seconds to wait before the next attempt under every (limit, key) in
    ``checks``; 0 when it may go ahead now."""
    now = time.time() if now is None else now
    longest = 0.0
    for limit, key in checks:
        longest = max(longest, _until_room(limit, _LOG.times(limit, key, now)) - now)
    return _whole_seconds(longest)


@dataclass(frozen=True)
class Reservation:
    """An attempt taken before the password is checked: ``wait`` > 0 when
    there was no room (nothing was taken).  Kept, it counts as a failure;
    :func:`release` gives it back."""

    checks: tuple[tuple[Limit, str], ...]
    member: str
    wait: int


def reserve(checks: list[tuple[Limit, str]], now: float | None = None) -> Reservation:
    """Take an attempt under every (limit, key) in ``checks`` at once, or none
    when any of them should wait: the check and the taking are one atomic
    step (a Lua script in Redis; the lock for the file cache), so that
    requests arriving together cannot all see room and all check a password."""
    now = time.time() if now is None else now
    member = uuid.uuid4().hex
    wait = _LOG.reserve(list(checks), member, now)
    return Reservation(tuple(checks), member, _whole_seconds(wait))


def release(reservation: Reservation) -> None:
    """The reserved attempt was not a failure (the right password): give it back."""
    if not reservation.wait:
        for limit, key in reservation.checks:
            _LOG.remove(limit, key, reservation.member)


def _until_room(limit: Limit, times: list[float]) -> float:
    """When the next attempt may go, given this key's attempts in the window."""
    if len(times) < limit.attempts:
        return float("-inf")
    until_room = times[len(times) - limit.attempts] + limit.window
    if limit.then_every is not None:
        until_room = min(until_room, times[-1] + limit.then_every)
    return until_room


def _whole_seconds(wait: float) -> int:
    return int(-(-wait // 1)) if wait > 0 else 0


def record(checks: list[tuple[Limit, str]], now: float | None = None) -> None:
    now = time.time() if now is None else now
    for limit, key in checks:
        _LOG.add(limit, key, now)


def forget(checks: list[tuple[Limit, str]]) -> None:
    for limit, key in checks:
        _LOG.clear(limit, key)


def _storage_key(limit: Limit, key: str) -> str:
    return f"discsub:signin:{limit.name}:{hashlib.sha256(key.encode()).hexdigest()}"


def _keep_for(limit: Limit) -> int:
    return int(limit.window + (limit.then_every or 0)) + 60


class _RedisLog:
    """A sorted set per key: members unique, scores the attempts' times;
    each change is one MULTI/EXEC, so concurrent processes never lose one."""

    def _client(self):
        return _redis_client(_cache_location())

    def times(self, limit: Limit, key: str, now: float) -> list[float]:
        name = _storage_key(limit, key)
        pipe = self._client().pipeline()
        pipe.zremrangebyscore(name, "-inf", now - limit.window)
        pipe.zrange(name, 0, -1, withscores=True)
        return [score for _member, score in pipe.execute()[1]]

    def add(self, limit: Limit, key: str, now: float) -> None:
        name = _storage_key(limit, key)
        pipe = self._client().pipeline()
        pipe.zremrangebyscore(name, "-inf", now - limit.window)
        pipe.zadd(name, {uuid.uuid4().hex: now})
        pipe.expire(name, _keep_for(limit))
        pipe.execute()

    def clear(self, limit: Limit, key: str) -> None:
        self._client().delete(_storage_key(limit, key))

    def remove(self, limit: Limit, key: str, member: str) -> None:
        self._client().zrem(_storage_key(limit, key), member)

    def reserve(self, checks: list[tuple[Limit, str]], member: str, now: float) -> float:
        keys = [_storage_key(limit, key) for limit, key in checks]
        args = [repr(now), member]
        for limit, _key in checks:
            then_every = -1 if limit.then_every is None else limit.then_every
            args += [limit.attempts, repr(limit.window), repr(then_every), _keep_for(limit)]
        return float(self._client().eval(_RESERVE_SCRIPT, len(keys), *keys, *args))


# Every key's wait worked out as _until_room does, then the member added to
# every key only if none has to wait: one script, so atomic in Redis.  (A
# float goes back as a string: Redis would cut a Lua number to an integer.)
_RESERVE_SCRIPT = """
local now = tonumber(ARGV[1])
local member = ARGV[2]
local wait = 0
for i, name in ipairs(KEYS) do
  local base = 2 + (i - 1) * 4
  local attempts = tonumber(ARGV[base + 1])
  local window = tonumber(ARGV[base + 2])
  local then_every = tonumber(ARGV[base + 3])
  redis.call('ZREMRANGEBYSCORE', name, '-inf', now - window)
  local count = redis.call('ZCARD', name)
  if count >= attempts then
    local oldest = redis.call('ZRANGE', name, count - attempts, count - attempts, 'WITHSCORES')
    local until_room = tonumber(oldest[2]) + window
    if then_every >= 0 then
      local last = redis.call('ZRANGE', name, -1, -1, 'WITHSCORES')
      until_room = math.min(until_room, tonumber(last[2]) + then_every)
    end
    wait = math.max(wait, until_room - now)
  end
end
if wait <= 0 then
  for i, name in ipairs(KEYS) do
    redis.call('ZADD', name, now, member)
    redis.call('EXPIRE', name, tonumber(ARGV[2 + (i - 1) * 4 + 4]))
  end
  return '0'
end
return tostring(wait)
"""


class _CacheLog:
    """A list of times in the Django cache, read and written under a lock
    that every process of this machine shares (the file cache has no
    atomic update)."""

    _thread_lock = threading.Lock()

    @contextmanager
    def _locked(self):
        conf = settings.CACHES["default"]
        if not conf["BACKEND"].endswith("FileBasedCache"):
            with self._thread_lock:
                yield
            return
        folder = Path(conf["LOCATION"])
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._thread_lock, open(folder / "signin-limits.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _entries(self, limit: Limit, key: str, now: float) -> list[tuple[float, str]]:
        """(time, member) of the attempts in the window, oldest first."""
        entries = [
            (e, "") if isinstance(e, (int, float)) else tuple(e) for e in cache.get(_storage_key(limit, key), [])
        ]
        return sorted(e for e in entries if e[0] > now - limit.window)

    def times(self, limit: Limit, key: str, now: float) -> list[float]:
        return [t for t, _member in self._entries(limit, key, now)]

    def _put(self, limit: Limit, key: str, entries: list[tuple[float, str]]) -> None:
        cache.set(_storage_key(limit, key), sorted(entries), _keep_for(limit))

    def add(self, limit: Limit, key: str, now: float) -> None:
        with self._locked():
            self._put(limit, key, [*self._entries(limit, key, now), (now, uuid.uuid4().hex)])

    def clear(self, limit: Limit, key: str) -> None:
        with self._locked():
            cache.delete(_storage_key(limit, key))

    def remove(self, limit: Limit, key: str, member: str) -> None:
        with self._locked():
            entries = self._entries(limit, key, time.time())
            self._put(limit, key, [e for e in entries if e[1] != member])

    def reserve(self, checks: list[tuple[Limit, str]], member: str, now: float) -> float:
        with self._locked():
            logs = [(limit, key, self._entries(limit, key, now)) for limit, key in checks]
            wait = max([_until_room(limit, [t for t, _m in entries]) - now for limit, key, entries in logs] or [0.0])
            if wait <= 0:
                for limit, key, entries in logs:
                    self._put(limit, key, [*entries, (now, member)])
            return wait


def _cache_location() -> str:
    location = settings.CACHES["default"]["LOCATION"]
    return location[0] if isinstance(location, (list, tuple)) else location.split(",")[0]


@memoize
def _redis_client(url: str):
    import redis

    return redis.Redis.from_url(url)


class _Log:
    """The sliding log behind whichever cache the site uses."""

    def _backend(self):
        if settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
            return _REDIS
        return _CACHE

    def times(self, limit: Limit, key: str, now: float) -> list[float]:
        return sorted(self._backend().times(limit, key, now))

    def add(self, limit: Limit, key: str, now: float) -> None:
        self._backend().add(limit, key, now)

    def clear(self, limit: Limit, key: str) -> None:
        self._backend().clear(limit, key)

    def remove(self, limit: Limit, key: str, member: str) -> None:
        self._backend().remove(limit, key, member)

    def reserve(self, checks: list[tuple[Limit, str]], member: str, now: float) -> float:
        return self._backend().reserve(checks, member, now)


_REDIS = _RedisLog()
_CACHE = _CacheLog()
_LOG = _Log()
