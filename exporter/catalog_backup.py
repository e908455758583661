"""Snapshots of the catalog (the database), and restoring one.

The database holds what no stored byte says by itself: every subscriber's
cursor, library, albums, versions and disc history.  A snapshot is one
consistent copy of it, taken while the site runs:

- on PostgreSQL, ``pg_dump --format=custom`` (one transaction: a consistent
  snapshot; ``pg_restore`` reads it);
- on SQLite, the online backup API (``sqlite3.Connection.backup``), a page-by
  page copy that is consistent even while other connections write.

Each snapshot ``discsub-catalog-<UTC time>.<dump|sqlite3>`` is written through
``.partial`` and renamed when whole, with ``<name>.sha256`` beside it in
sha256sum's format, to a folder or to ``s3://bucket/prefix``; only the newest
``DISCSUB_BACKUP_KEEP`` are kept.  Every snapshot taken leaves a
:class:`JobRun` row (``backup_catalog``) whose age the dashboard and
``export_status`` show.

Restoring goes into an empty database only (no tables at all): a snapshot is
never merged into, or written over, a catalog that holds anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import socket
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.exceptions
from django.conf import settings
from django.db import connection
from django.utils import timezone

from exporter.errors import ExportError
from exporter.models import JobRun

JOB = "backup_catalog"
_NAME = re.compile(r"^discsub-catalog-(\d{8}T\d{6}Z)\.(dump|sqlite3)$")
_CHUNK = 1024 * 1024


class BackupError(ExportError):
    pass


@dataclass(frozen=True)
class Snapshot:
    where: str  # the folder path or s3:// URL of the snapshot file
    name: str
    size: int
    sha256: str
    removed: tuple[str, ...]  # older snapshots deleted to keep the newest N


def _engine() -> str:
    vendor = connection.vendor
    if vendor not in ("sqlite", "postgresql"):
        raise BackupError(f"no snapshot method for a {vendor} database")
    return vendor


def _pg_environment() -> dict:
    """libpq's variables for the configured database: the password never
    appears on a command line."""
    db = connection.settings_dict
    env = {**os.environ}
    for key, var in (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD")):
        if db.get(key):
            env[var] = str(db[key])
    env["PGDATABASE"] = str(db["NAME"])
    return env


def _run(command: list[str]) -> None:
    done = subprocess.run(command, env=_pg_environment(), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _snapshot_to(path: Path, progress: Callable[[int, int], None] | None) -> None:
    """A consistent snapshot of the database, written to ``path``."""
    if _engine() == "postgresql":
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={path}"])
        return
    connection.ensure_connection()
    target = sqlite3.connect(path)
    try:
        # A few hundred pages at a time: writers are never shut out for long.
        connection.connection.backup(
            target, pages=256, progress=(lambda _s, left, total: progress(total - left, total)) if progress else None
        )
    finally:
        target.close()


def _split_s3(url: str) -> tuple[str, str]:
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise BackupError(f"no bucket in {url!r}: give s3://bucket/prefix")
    return bucket, prefix.strip("/")


def _s3_client():
    return boto3.client(
        "s3", endpoint_url=settings.DISCSUB_S3_ENDPOINT_URL or None, region_name=settings.DISCSUB_S3_REGION or None
    )


class _Folder:
    def __init__(self, path: str):
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackupError(f"cannot use {path} for backups: {exc.strerror or exc}") from exc

    def where(self, name: str) -> str:
        return str(self.path / name)

    def put(self, local: Path, name: str) -> None:
        partial = self.path / f"{name}.partial"
        try:
            with open(local, "rb") as src, open(partial, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(partial, self.path / name)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise BackupError(f"could not write {self.path / name}: {exc.strerror or exc}") from exc

    def names(self) -> list[str]:
        return [p.name for p in self.path.iterdir()]

    def remove(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)


class _Bucket:
    def __init__(self, url: str):
        self.bucket, self.prefix = _split_s3(url)
        self.client = _s3_client()

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def where(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(name)}"

    def put(self, local: Path, name: str) -> None:
        # upload_file sends large files in parts; an object appears only when whole.
        self.client.upload_file(str(local), self.bucket, self._key(name))

    def names(self) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else ""
        )
        return [o["Key"].rsplit("/", 1)[-1] for page in pages for o in page.get("Contents", [])]

    def remove(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(name))


def _destination(to: str):
    return _Bucket(to) if to.startswith("s3://") else _Folder(to)


def backup_catalog(
    to: str | None = None,
    *,
    keep: int | None = None,
    now: dt.datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Snapshot:
    """Write a snapshot of the catalog to ``to`` (a folder or s3://bucket/prefix;
    default ``DISCSUB_BACKUP_TO``) and keep only the newest ``keep``."""
    to = str(to or settings.DISCSUB_BACKUP_TO)
    keep = settings.DISCSUB_BACKUP_KEEP if keep is None else keep
    if keep < 1:
        raise BackupError("keep at least one snapshot")
    if _engine() == "sqlite" and connection.in_atomic_block:
        # SQLite's backup cannot read through a connection that is writing: it would wait forever.
        raise BackupError("a snapshot cannot be taken inside a transaction")
    destination = _destination(to)
    started = timezone.now()
    stamp = (now or started).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"discsub-catalog-{stamp}.{'dump' if _engine() == 'postgresql' else 'sqlite3'}"
    # The snapshot is made on this machine's data disk first, then copied whole.
    scratch = Path(settings.DATA_DIR) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="backup-") as work:
        local = Path(work) / name
        try:
            _snapshot_to(local, progress)
        except (OSError, sqlite3.Error) as exc:
            raise BackupError(f"could not write the snapshot: {exc}") from exc
        digest, size = _sha256(local), local.stat().st_size
        sums = Path(work) / f"{name}.sha256"
        sums.write_text(f"{digest}  {name}\n")
        destination.put(local, name)
        destination.put(sums, f"{name}.sha256")
    snapshots = sorted(n for n in destination.names() if _NAME.match(n))
    removed = tuple(snapshots[:-keep])
    for old in removed:
        destination.remove(old)
        destination.remove(f"{old}.sha256")
    JobRun.objects.create(
        name=JOB,
        host=socket.gethostname(),
        started_at=started,
        finished_at=timezone.now(),
        note=f"{destination.where(name)} {size} bytes sha256 {digest}",
    )
    return Snapshot(destination.where(name), name, size, digest, removed)


def last_backup() -> JobRun | None:
    return JobRun.objects.filter(name=JOB, finished_at__isnull=False).order_by("-finished_at").first()


def database_tables() -> list[str]:
    return connection.introspection.table_names()


def _fetch(path: str, work: Path) -> Path:
    """The snapshot (and its .sha256 where there is one) as a local file."""
    if not path.startswith("s3://"):
        return Path(path)
    bucket, key = _split_s3(path)
    client = _s3_client()
    local = work / key.rsplit("/", 1)[-1]
    client.download_file(bucket, key, str(local))
    try:
        client.download_file(bucket, f"{key}.sha256", f"{local}.sha256")
    except botocore.exceptions.ClientError:
        pass  # no checksum beside it: refused below
    return local


def restore_catalog(path: str) -> str:
    """Restore the snapshot at ``path`` (a file or s3:// URL) into the
    configured database, which must be empty; returns its sha256."""
    tables = database_tables()
    if tables:
        raise BackupError(
            f"the database is not empty ({len(tables)} tables): restore only into a new, empty database, "
            "so that nothing in it is overwritten or mixed"
        )
    scratch = Path(settings.DATA_DIR) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="restore-") as work:
        local = _fetch(path, Path(work))
        if not local.is_file():
            raise BackupError(f"no snapshot at {path}")
        digest = _sha256(local)
        sums = Path(f"{local}.sha256")
        if not sums.is_file():
            raise BackupError(f"{sums.name} is missing: the snapshot cannot be checked")
        recorded = sums.read_text().split()[0] if sums.read_text().strip() else ""
        if digest != recorded:
            raise BackupError(f"{local.name} does not match its sha256 ({digest}, recorded {recorded}): not restored")
        if _engine() == "postgresql":
            if not local.name.endswith(".dump"):
                raise BackupError(f"{local.name} is not a PostgreSQL snapshot")
            database = f"--dbname={connection.settings_dict['NAME']}"
            _run(
                [
                    "pg_restore",
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--single-transaction",
                    database,
                    str(local),
                ]
            )
        else:
            if not local.name.endswith(".sqlite3"):
                raise BackupError(f"{local.name} is not a SQLite snapshot")
            source = sqlite3.connect(f"file:{local}?mode=ro", uri=True)
            try:
                connection.ensure_connection()
                source.backup(connection.connection)
            except sqlite3.Error as exc:
                raise BackupError(f"{local.name} could not be restored: {exc}") from exc
            finally:
                source.close()
    return digest
