"""Production settings: `check --deploy` is clean, required values are
required, and gunicorn serves the static files through whitenoise.

Each case starts a fresh interpreter with a production environment (the
settings module reads the environment once, at import)."""

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def production_env(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "discsub.settings",
        "DISCSUB_PRODUCTION": "1",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "discs.example.com",
        # check --deploy does not connect; nothing listens on this name anyway.
        "DATABASE_URL": "postgres://discsub@127.0.0.1:5432/discsub_deploy_check",
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        "DISCSUB_S3_BUCKET": "discsub-prod",
        "DISCSUB_S3_ENDPOINT_URL": "https://s3.example.com",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "example-secret",
        "DISCSUB_DATA_DIR": str(tmp_path / "data"),
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    # The data folder as docs/deploy.md sets it up on a new machine.
    for folder in ("build", "uploads", "static"):
        (tmp_path / "data" / folder).mkdir(parents=True)
    result = manage(production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)" in result.stdout


def test_check_deploy_fails_on_a_development_setup(tmp_path):
    # The same check on the embedded default: proves the test above could fail.
    env = production_env(tmp_path, DISCSUB_PRODUCTION=None, DATABASE_URL=None, DISCSUB_S3_BUCKET=None)
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W004" in result.stderr  # no HSTS
    assert "security.W012" in result.stderr  # session cookie not secure


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"SECRET_KEY": None}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "too-short"}, "SECRET_KEY is too weak for production (it is shorter than 50"),
        ({"SECRET_KEY": "django-insecure-" + secrets.token_urlsafe(50)}, "Django's insecure development key"),
        ({"SECRET_KEY": "ab" * 40}, "fewer than 20 different characters"),
        ({"SECRET_KEY": "0123456789" * 6}, "fewer than 20 different characters"),
        ({"SECRET_KEY": "please-change-me-" + secrets.token_hex(25)}, "looks like a placeholder"),
        ({"ALLOWED_HOSTS": None}, "ALLOWED_HOSTS must be set"),
        ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS must be set"),
        ({"ALLOWED_HOSTS": "*"}, "not '*'"),
        ({"ALLOWED_HOSTS": "discs.example.com, *"}, "not '*'"),
        ({"DJANGO_DEBUG": "1"}, "DJANGO_DEBUG must be off"),
        ({"DATABASE_URL": None}, "DATABASE_URL must be set"),
        ({"DATABASE_URL": "sqlite:////srv/discsub/discsub.sqlite3"}, "must not be SQLite"),
        ({"DISCSUB_SECTOR_PARITY": "255"}, "DISCSUB_SECTOR_PARITY must be 0 to 128"),
        ({"DISCSUB_TRASH_DAYS": "-1"}, "DISCSUB_TRASH_DAYS must be 0 to 3650 days"),
        ({"DISCSUB_DELETE_HOLD_DAYS": "99999"}, "DISCSUB_DELETE_HOLD_DAYS must be 0 to 3650 days"),
    ],
    ids=[
        "no-secret-key",
        "short-secret-key",
        "django-insecure-key",
        "two-character-key",
        "repeated-digits-key",
        "placeholder-key",
        "no-allowed-hosts",
        "empty-allowed-hosts",
        "any-host",
        "any-host-among-others",
        "debug-on",
        "no-database",
        "sqlite",
        "no-room-for-data-on-the-disc",
        "negative-trash-days",
        "hold-of-centuries",
    ],
)
def test_production_refuses_to_start_without_its_required_values(tmp_path, overrides, message):
    # Importing the settings is what every process (web, worker, command) does first.
    result = subprocess.run(
        [sys.executable, "-c", "import discsub.settings"],
        cwd=ROOT,
        env=production_env(tmp_path, **overrides),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert message in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_listening(port: int, server: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise AssertionError(f"{server.args[0]} did not start") from None
            time.sleep(0.1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _get(url: str, headers: dict[str, str]):
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        return opener.open(urllib.request.Request(url, headers=headers), timeout=10)
    except urllib.error.HTTPError as exc:
        return exc


def test_gunicorn_serves_hashed_static_files_through_whitenoise(tmp_path):
    env = production_env(tmp_path)
    collected = manage(env, "collectstatic", "--noinput")
    assert collected.returncode == 0, collected.stderr
    manifest = (tmp_path / "data" / "static" / "staticfiles.json").read_text()
    hashed = re.search(r'"discsub/page-actions.js": "(discsub/page-actions\.[0-9a-f]{12}\.js)"', manifest).group(1)

    port = _free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "discsub.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/static/{hashed}"
        wait_until_listening(port, server)
        host = {"Host": "discs.example.com"}
        plain = _get(url, host)
        assert plain.status == 301  # plain HTTP goes to HTTPS first
        assert plain.headers["Location"] == f"https://discs.example.com/static/{hashed}"

        served = _get(url, {**host, "X-Forwarded-Proto": "https", "Accept-Encoding": "gzip"})
        assert served.status == 200
        assert "immutable" in served.headers["Cache-Control"]  # content-hashed: cached for ever
        assert served.headers["Content-Encoding"] == "gzip"  # the compressed copy
        assert "max-age=31536000" in served.headers["Strict-Transport-Security"]

        unknown = _get(f"http://127.0.0.1:{port}/static/discsub/nothing.js", {**host, "X-Forwarded-Proto": "https"})
        assert unknown.status == 404
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_without_redis_every_process_of_the_machine_shares_the_sign_in_counts(tmp_path):
    # One machine on PostgreSQL alone: gunicorn's workers are separate
    # processes, and each must see the attempts counted by the others.
    env = production_env(tmp_path, REDIS_URL=None)
    script = "import django; django.setup(); from django.core.cache import cache; "

    def python(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", script + code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    python("cache.set('login-attempts', 0, 600); cache.incr('login-attempts')")
    python("cache.incr('login-attempts')")
    assert python("print(cache.get('login-attempts'))") == "2"
    assert (tmp_path / "data" / "cache").is_dir()
