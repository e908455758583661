"""`make run` (manage.py runsite): the site, the scheduler and the builder
together, with links in their emails pointing at the address it serves."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from django.conf import settings

from exporter.management.commands.runsite import child_environment, served_at


def test_links_point_at_the_address_served_unless_the_operator_says_otherwise():
    assert served_at("127.0.0.1", "8123") == "http://127.0.0.1:8123/"
    assert served_at("::1", "8123") == "http://[::1]:8123/"
    assert served_at("0.0.0.0", "80") == f"http://{socket.getfqdn()}:80/"
    assert child_environment("127.0.0.1", "8123", {})["DISCSUB_SITE_URL"] == "http://127.0.0.1:8123"
    behind_a_proxy = {"DISCSUB_SITE_URL": "https://discs.example.org"}
    assert child_environment("127.0.0.1", "8123", behind_a_proxy)["DISCSUB_SITE_URL"] == "https://discs.example.org"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _environ(pid: int) -> dict:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(p.decode().split("=", 1) for p in pairs if b"=" in p)


def test_runsite_serves_on_its_port_and_its_children_link_there(tmp_path):
    """A real start on the embedded default (SQLite in a fresh data folder, no
    demo), as `make run` does it; then SIGTERM stops every process."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DISCSUB_SITE_URL")}
    env["DISCSUB_DATA_DIR"] = str(tmp_path / "data")
    manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput"], env=env, check=True, capture_output=True)
    site = subprocess.Popen(
        [*manage, "runsite", "--no-demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    children: list[int] = []
    try:
        said = ""
        deadline = time.monotonic() + 60
        while "Press Ctrl-C" not in said and time.monotonic() < deadline:
            said += site.stdout.readline()
        assert f"Discsub is running at http://127.0.0.1:{port}/" in said, said
        page = None
        while page is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=5) as response:
                    page = response.read().decode()
            except OSError:
                time.sleep(0.3)
        assert page is not None and re.search(r"<form[^>]*method=\"post\"", page), "the sign-in page never came up"
        children = _children(site.pid)
        assert len(children) == 3  # the web server, the scheduler's cluster and the builder's
        for child in children:
            assert _environ(child)["DISCSUB_SITE_URL"] == f"http://127.0.0.1:{port}"
    finally:
        site.send_signal(signal.SIGTERM)
        try:
            site.wait(timeout=40)
        finally:
            site.kill()
            site.stdout.close()
    assert site.returncode is not None
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()
