"""`make run`: the portal, the staff queue and the scheduler worker together."""

import os
import signal
import socket
import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from exporter.management.commands.load_demo import DEMO_PASSWORD, DEMO_USER, STAFF_PASSWORD, STAFF_USER


def served_at(host: str, port: str) -> str:
    """The address people reach the site at, for links in emails: the host
    it listens on, or this machine's name when it listens on every address."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.getfqdn()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def child_environment(host: str, port: str, environ=os.environ) -> dict:
    """The web server's and the workers' environment: links in the emails
    they send point at this site, unless the operator set DISCSUB_SITE_URL."""
    env = {**environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("DISCSUB_SITE_URL", served_at(host, port).rstrip("/"))
    return env


class Command(BaseCommand):
    help = "Serve the site and run the task worker on the embedded default; loads demo data on first start."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", default="8000")
        parser.add_argument("--no-demo", action="store_true")

    def handle(self, host, port, no_demo, **options):
        from django.contrib.auth import get_user_model

        if not no_demo and not get_user_model().objects.filter(username=DEMO_USER).exists():
            call_command("load_demo")
            # The demo subscriber's first discs, built by the worker.
            from django_q.tasks import async_task

            demo = get_user_model().objects.get(username=DEMO_USER)
            async_task(
                "exporter.tasks.plan_and_build",
                demo.pk,
                True,
                task_name="demo first discs",
                cluster=settings.DISCSUB_BUILD_QUEUE,
            )
        call_command("setup_schedules")
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        env = child_environment(host, port)
        # Two clusters: the scheduler and short jobs, and the image builds.
        worker = subprocess.Popen([*manage, "qcluster"], env=env)
        builder = subprocess.Popen([*manage, "qcluster"], env={**env, "Q_CLUSTER_NAME": settings.DISCSUB_BUILD_QUEUE})
        web = subprocess.Popen([*manage, "runserver", "--noreload", f"{host}:{port}"], env=env)
        url = served_at(host, port)
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Discsub is running at {url}",
                    f"  subscriber: {DEMO_USER} / {DEMO_PASSWORD}",
                    f"  staff:      {STAFF_USER} / {STAFF_PASSWORD}",
                    f"  data folder: {settings.DATA_DIR}",
                    "Press Ctrl-C to stop.",
                    "",
                ]
            )
        )

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
        try:
            while worker.poll() is None and builder.poll() is None and web.poll() is None:
                try:
                    web.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    pass
        except KeyboardInterrupt:
            pass
        finally:
            for proc in (web, worker, builder):
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)
            for proc in (web, worker, builder):
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
