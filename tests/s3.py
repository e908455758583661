"""A real S3 endpoint for the tests: moto in server mode, a separate process
on loopback started once per test session, and a fault-injecting HTTP proxy
that can stand between the app and it.

Use the fixtures by importing them into a test module::

    from tests.s3 import moto_endpoint, s3  # noqa: F401  (fixtures)
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"
KEYS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, proc: subprocess.Popen, deadline: float, log: Path) -> None:
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not start: {log.read_text()[-2000:]}") from None
            time.sleep(0.05)


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory) -> Iterator[str]:
    """The URL of a moto S3 server (a child process) on 127.0.0.1."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, proc, time.monotonic() + 30, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def client(endpoint: str, *, read_timeout: int = 5):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        config=Config(read_timeout=read_timeout, retries={"max_attempts": 1}),
        **KEYS,
    )


def storage_options(endpoint: str, bucket: str, *, location: str = "", read_timeout: int = 2) -> dict:
    """``STORAGES`` options as discsub/settings.py makes them, with short
    timeouts and no retries inside botocore (ours are under test)."""
    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint,
            "region_name": REGION,
            "access_key": KEYS["aws_access_key_id"],
            "secret_key": KEYS["aws_secret_access_key"],
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
            "location": location,
            "max_memory_size": 8 * 1024 * 1024,
            "client_config": Config(
                signature_version="s3v4",
                s3={"addressing_style": "path"},
                connect_timeout=1,
                read_timeout=read_timeout,
                retries={"mode": "standard", "max_attempts": 1},
            ),
        },
    }


@dataclass
class S3:
    """A fresh bucket on the moto server, the app's storage pointed at it."""

    endpoint: str
    bucket: str
    settings: object

    @property
    def client(self):
        return client(self.endpoint)

    def use(self, endpoint: str | None = None, *, read_timeout: int = 2) -> None:
        """Point the app's originals and images at ``endpoint`` (a proxy), or moto itself."""
        url = endpoint or self.endpoint
        self.settings.STORAGES = {
            **self.settings.STORAGES,
            "default": storage_options(url, self.bucket, read_timeout=read_timeout),
            "images": storage_options(url, self.bucket, location="images", read_timeout=read_timeout),
        }

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture
def s3(moto_endpoint, settings) -> S3:
    bucket = f"discsub-{uuid.uuid4().hex[:12]}"
    client(moto_endpoint).create_bucket(Bucket=bucket)
    settings.DISCSUB_S3_PART_MB = 5  # S3's smallest part: small images still go up in parts
    settings.DISCSUB_S3_DOWNLOADS = 3
    settings.DISCSUB_STORAGE_ATTEMPTS = 3
    settings.DISCSUB_STORAGE_RETRY_PAUSE = 0.05
    store = S3(moto_endpoint, bucket, settings)
    store.use()
    return store


# --- faults ------------------------------------------------------------------------------

REFUSE, TIME_OUT, CORRUPT = "refuse", "time out", "corrupt"


@dataclass
class Rule:
    """Inject ``fault`` into requests whose method is ``method`` and whose
    path contains ``path`` (any when empty), ``times`` times (-1: always)."""

    fault: str
    method: str = ""
    path: str = ""
    times: int = 1

    def matches(self, method: str, path: str) -> bool:
        return self.times != 0 and (not self.method or method == self.method) and self.path in path


@dataclass
class FaultProxy:
    """An HTTP proxy on loopback in front of moto.  Per request it forwards,
    refuses (resets the connection), times out (answers nothing until the
    client gives up) or corrupts the response body (same length, one byte
    changed), by ``rules`` or at random (``chaos``)."""

    upstream: str
    rules: list[Rule] = field(default_factory=list)
    chaos: float = 0.0
    delay: float = 0.0  # seconds before forwarding a GET (to see downloads overlap)
    injected: list[tuple[str, str, str]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    on_request: Callable[[str, str], None] | None = None
    in_flight: int = 0
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(0)
        self._stop = threading.Event()
        host, port = self.upstream.removeprefix("http://").split(":")
        self._target = (host, int(port))
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def set_chaos(self, rate: float, *, seed: int) -> None:
        with self._lock:
            self.chaos = rate
            self._random.seed(seed)

    def close(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    def _decide(self, method: str, path: str) -> str | None:
        with self._lock:
            self.requests.append((method, path))
            for rule in self.rules:
                if rule.matches(method, path):
                    if rule.times > 0:
                        rule.times -= 1
                    self.injected.append((rule.fault, method, path))
                    return rule.fault
            if self.chaos and self._random.random() < self.chaos:
                fault = self._random.choice([REFUSE, TIME_OUT, CORRUPT])
                self.injected.append((fault, method, path))
                return fault
        return None

    @staticmethod
    def _body(handler: BaseHTTPRequestHandler) -> bytes:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += handler.rfile.read(size)
                handler.rfile.readline()
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        body = self._body(handler)
        if self.on_request:
            self.on_request(method, path)
        fault = self._decide(method, path)
        if fault == REFUSE:
            # An RST, as from a server that drops the connection.
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            handler.close_connection = True
            return
        if fault == TIME_OUT:
            self._stop.wait(10)  # longer than the client's read timeout
            handler.close_connection = True
            return
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay and method == "GET":
                self._stop.wait(self.delay)
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("transfer-encoding", "connection")}
            if body or method in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            upstream = http.client.HTTPConnection(*self._target, timeout=30)
            upstream.request(method, path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            upstream.close()
        finally:
            with self._lock:
                self.in_flight -= 1
        if fault == CORRUPT and data:
            at = len(data) // 2
            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
        handler.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                handler.send_header(name, value)
        handler.send_header(
            "Content-Length", str(len(data)) if method != "HEAD" else response.getheader("Content-Length", "0")
        )
        try:
            handler.end_headers()
            if method != "HEAD":
                handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its own timeout): as a real server sees it


@pytest.fixture
def fault_proxy(s3) -> Iterator[FaultProxy]:
    """A fault proxy in front of the test's moto bucket; the app talks through it."""
    proxy = FaultProxy(s3.endpoint)
    s3.use(proxy.url)
    try:
        yield proxy
    finally:
        with contextlib.suppress(Exception):
            proxy.close()


def tree(folder: Path) -> list[str]:
    """Every path under ``folder`` (to prove a build area empty)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []
