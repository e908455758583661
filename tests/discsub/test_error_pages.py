"""Error pages and reports never show secrets: with DEBUG on (``make run``)
only a client on this machine sees a debug page, and every report, the debug
page and the email to ADMINS alike, is cleansed of connection passwords,
secret values and the environment."""

import pytest
from django.core import mail
from django.test import Client

pytestmark = pytest.mark.django_db

DB_PASSWORD = "db-hunter2-correct-horse"
DATABASE_URL = f"postgres://discsub:{DB_PASSWORD}@db.internal:5432/discsub"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ENV_ONLY = "only-in-the-environment-7f3a"
REMOTE = "203.0.113.50"


@pytest.fixture
def secrets(settings, monkeypatch):
    """A development setup with real-looking secrets in settings and the environment."""
    settings.DEBUG = True
    settings.DATABASE_URL = DATABASE_URL
    settings.SECRET_KEY = "django-key-that-must-never-show-0123456789abcdef"
    monkeypatch.setenv("DATABASE_URL", DATABASE_URL)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("DISCSUB_SOMETHING_LOCAL", ENV_ONLY)
    return settings


def environ_meta():
    """What runserver (wsgiref) puts in every request's META: the whole environment."""
    import os

    return dict(os.environ)


def assert_no_secrets(text, settings):
    for secret in (DB_PASSWORD, AWS_SECRET, settings.SECRET_KEY, ENV_ONLY):
        assert secret not in text


def test_a_bad_host_from_another_machine_gets_a_plain_400(secrets):
    response = Client().get("/", HTTP_HOST="evil.example", REMOTE_ADDR=REMOTE, **environ_meta())
    assert response.status_code == 400
    page = response.content.decode()
    assert "Bad Request (400)" in page
    assert "DisallowedHost" not in page and "Traceback" not in page and "DATABASE_URL" not in page
    assert "urlpatterns" not in page.lower()
    assert_no_secrets(page, secrets)


def test_a_bad_host_from_this_machine_gets_a_cleansed_debug_page(secrets):
    response = Client().get("/", HTTP_HOST="evil.example", REMOTE_ADDR="127.0.0.1", **environ_meta())
    assert response.status_code == 400
    page = response.content.decode()
    assert "DisallowedHost" in page  # the debug page, for the developer at this machine
    assert_no_secrets(page, secrets)  # without the database password, and without the environment


def test_a_missing_page_lists_no_url_patterns_to_another_machine(secrets):
    remote = Client().get("/no-such-page/", REMOTE_ADDR=REMOTE)
    assert remote.status_code == 404
    assert "Not Found" in remote.content.decode()
    assert "library/" not in remote.content.decode() and "URLconf" not in remote.content.decode()
    assert "default-src 'self'" in remote["Content-Security-Policy"]
    local = Client().get("/no-such-page/", REMOTE_ADDR="::1")
    assert local.status_code == 404 and "URLconf" in local.content.decode()
    assert "Content-Security-Policy" not in local  # Django's debug page styles itself inline
    assert_no_secrets(local.content.decode(), secrets)


@pytest.mark.urls("tests.discsub.failing_urls")
def test_a_real_exception_shows_no_secret_on_any_page(secrets):
    remote = Client(raise_request_exception=False).get("/fails/", REMOTE_ADDR=REMOTE, **environ_meta())
    assert remote.status_code == 500
    assert "Server Error (500)" in remote.content.decode() and "ConnectionError" not in remote.content.decode()
    local = Client(raise_request_exception=False).get("/fails/", REMOTE_ADDR="127.0.0.1", **environ_meta())
    assert local.status_code == 500
    page = local.content.decode()
    assert "ConnectionError" in page and "signing_key" in page  # the exception and its frame's variables…
    assert "postgres://discsub:********************@db.internal" in page  # …its URL readable…
    assert_no_secrets(page, secrets)  # …and every secret starred
    plain = Client(raise_request_exception=False).get(
        "/fails/", REMOTE_ADDR="127.0.0.1", HTTP_ACCEPT="text/plain", **environ_meta()
    )
    assert "ConnectionError" in plain.content.decode()
    assert_no_secrets(plain.content.decode(), secrets)


def test_the_sign_in_password_is_starred_on_the_debug_page(secrets, alice):
    response = Client().post("/login/", {"username": "alice", "password": "typed-password-1"}, HTTP_HOST="evil.example")
    assert response.status_code == 400 and "DisallowedHost" in response.content.decode()
    assert "typed-password-1" not in response.content.decode()


@pytest.mark.urls("tests.discsub.failing_urls")
def test_the_email_to_admins_carries_no_secret(secrets):
    secrets.DEBUG = False
    secrets.ADMINS = [("Ops", "ops@example.com")]
    response = Client(raise_request_exception=False).get("/fails/", REMOTE_ADDR=REMOTE, **environ_meta())
    assert response.status_code == 500
    (message,) = mail.outbox
    assert "ConnectionError" in message.body and "dsn" in message.body
    assert_no_secrets(message.subject + message.body, secrets)


def _this_machines_address() -> str | None:
    """An address of this machine that is not loopback (no packet is sent)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def test_the_development_server_keeps_its_debug_pages_and_environment_to_itself(tmp_path):
    """``make run``'s own server (runserver copies the whole environment
    into every request), reached from another address of this machine."""
    import os
    import subprocess
    import sys
    import urllib.error
    import urllib.request
    from pathlib import Path

    from tests.discsub.test_production_settings import _free_port, wait_until_listening

    address = _this_machines_address()
    if address is None:
        pytest.skip("this machine has no address but loopback")
    port = _free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "discsub.settings",
        "DISCSUB_DATA_DIR": str(tmp_path / "data"),
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "DISCSUB_SOMETHING_LOCAL": ENV_ONLY,
        "ALLOWED_HOSTS": f"localhost,127.0.0.1,{address}",
    }
    root = Path(__file__).resolve().parents[2]
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"0.0.0.0:{port}"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def get(host: str) -> tuple[int, str]:
        request = urllib.request.Request(f"http://{host}:{port}/", headers={"Host": "evil.example"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    try:
        wait_until_listening(port, server)
        status, page = get(address)
        assert status == 400 and "Bad Request (400)" in page and "DisallowedHost" not in page
        status, page = get("127.0.0.1")
        assert status == 400 and "DisallowedHost" in page
        assert "SERVER_SOFTWARE" in page  # META is shown, without the environment:
        assert ENV_ONLY not in page and AWS_SECRET not in page and "DISCSUB_SOMETHING_LOCAL" not in page
    finally:
        server.terminate()
        server.wait(timeout=30)


SESSION_VALUE = "sessionvalue0123456789abcdefghij"
CSRF_VALUE = "csrfvalue0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"


def _with_cookies(settings) -> Client:
    client = Client(raise_request_exception=False)
    client.cookies[settings.SESSION_COOKIE_NAME] = SESSION_VALUE
    client.cookies[settings.CSRF_COOKIE_NAME] = CSRF_VALUE
    return client


@pytest.mark.urls("tests.discsub.failing_urls")
@pytest.mark.parametrize("debug", [True, False])
def test_no_report_shows_the_session_or_csrf_cookie(secrets, debug):
    """The raw Cookie header (HTTP_COOKIE in META) and the parsed cookies are
    starred in the text report, the HTML report and the email to ADMINS."""
    import sys

    from django.test import RequestFactory
    from django.views.debug import get_exception_reporter_class

    secrets.DEBUG = debug
    secrets.ADMINS = [("Ops", "ops@example.com")]
    request = RequestFactory().get(
        "/fails/",
        REMOTE_ADDR="127.0.0.1",
        HTTP_COOKIE=f"{secrets.SESSION_COOKIE_NAME}={SESSION_VALUE}; {secrets.CSRF_COOKIE_NAME}={CSRF_VALUE}",
    )
    try:
        raise ConnectionError("boom")
    except ConnectionError:
        reporter = get_exception_reporter_class(request)(request, *sys.exc_info())
    reports = [reporter.get_traceback_text(), reporter.get_traceback_html()]
    assert "HTTP_COOKIE" in reports[0] and "boom" in reports[0]  # the real report, with META
    page = _with_cookies(secrets).get("/fails/", REMOTE_ADDR="127.0.0.1").content.decode()
    _with_cookies(secrets).get("/fails/", REMOTE_ADDR=REMOTE)
    if not debug:
        assert len(mail.outbox) == 2  # one email to ADMINS per failed request
        for message in mail.outbox:
            reports += [message.body, *(content for content, _type in message.alternatives)]
            assert "HTTP_COOKIE" in message.body
    else:
        assert "HTTP_COOKIE" in page
    for report in [*reports, page]:
        assert SESSION_VALUE not in report and CSRF_VALUE not in report
