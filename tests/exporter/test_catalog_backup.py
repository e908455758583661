"""Catalog snapshots (exporter/catalog_backup.py), proven by a drill: build
discs, back up, destroy the database, restore it, and find the catalog
exactly as it was, then go on with disc N+1 carrying exactly what came after.

The drill runs the real commands in a separate process against a database of
its own: SQLite in a fresh data folder (the embedded default), and, where
DATABASE_URL names a PostgreSQL server, a new database on that server."""

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from exporter import catalog_backup, status
from exporter.models import JobRun
from tests.factories import jpeg_bytes
from tests.tools import require_postgres

MANAGE = [sys.executable, str(settings.BASE_DIR / "manage.py")]
# Everything the catalog holds, as rows (the task broker's own tables aside).
CATALOG = ["auth.user", "exporter"]


class Site:
    """manage.py in a process of its own, on its own data folder and database."""

    def __init__(self, data: Path, database_url: str = "", **extra: str):
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(DISCSUB_DATA_DIR=str(data), **extra)
        if database_url:
            self.env["DATABASE_URL"] = database_url

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([*MANAGE, *args], env=self.env, capture_output=True, text=True)
        if ok:
            assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
        return done

    def catalog(self) -> list:
        rows = json.loads(self("dumpdata", *CATALOG, "--indent", "0").stdout)
        # The snapshot's own record is written after the snapshot: it cannot be in it.
        return sorted(
            (r for r in rows if not (r["model"] == "exporter.jobrun" and r["fields"]["name"] == "backup_catalog")),
            key=lambda r: (r["model"], str(r["pk"])),
        )


def photos(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True)
    for n, name in enumerate(names):
        color = tuple(hashlib.sha256(name.encode()).digest()[:3])  # other bytes for every name: no duplicates
        (folder / name).write_bytes(jpeg_bytes(color=color, exif_date=f"2025:0{n % 9 + 1}:01 10:00:00"))
    return folder


def drill(tmp_path: Path, site: Site, destroy, backup_to: str) -> None:
    site("migrate", "--noinput")
    site("import_media", "zoe", str(photos(tmp_path / "first", ["a.jpg", "b.jpg", "c.jpg"])), "--create-user")
    site("build_discs", "--user", "zoe", "--now")
    site("import_media", "zoe", str(photos(tmp_path / "second", ["d.jpg", "e.jpg"])))
    site("build_discs", "--user", "zoe", "--now")
    site("import_media", "zoe", str(photos(tmp_path / "waiting", ["f.jpg"])))  # not on a disc yet: a pending change
    before, discs = site.catalog(), site("list_discs", "--json").stdout
    assert len(discs.splitlines()) == 2

    said = site("backup_catalog", "--to", backup_to).stdout
    where = said.split()[1]
    destroy()
    assert site("list_discs", "--json", ok=False).returncode != 0  # the catalog is gone
    site("restore_catalog", where)

    assert site.catalog() == before
    assert site("list_discs", "--json").stdout == discs
    # The series goes on: disc 3 carries exactly what came after disc 2.
    site("import_media", "zoe", str(photos(tmp_path / "after", ["g.jpg"])))
    (third,) = [
        json.loads(line) for line in site("build_discs", "--user", "zoe", "--now", "--json").stdout.splitlines()
    ]
    assert (third["number"], third["files"]) == (3, 2)  # f.jpg (waiting at the backup) and g.jpg


@pytest.mark.slow
def test_the_drill_on_the_embedded_default(tmp_path):
    data = tmp_path / "data"
    site = Site(data)
    drill(tmp_path, site, lambda: (data / "discsub.sqlite3").unlink(), str(tmp_path / "backups"))
    snapshot = next((tmp_path / "backups").glob("discsub-catalog-*.sqlite3"))
    digest = hashlib.sha256(snapshot.read_bytes()).hexdigest()
    assert Path(f"{snapshot}.sha256").read_text() == f"{digest}  {snapshot.name}\n"  # sha256sum -c reads it


@pytest.mark.slow
@pytest.mark.django_db
def test_the_drill_on_postgresql(tmp_path):
    require_postgres()
    import psycopg

    name = f"drill_{uuid.uuid4().hex[:12]}"
    db = connection.settings_dict
    admin = psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT'] or 5432}/{name}"

    def destroy():
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')

    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        drill(tmp_path, Site(tmp_path / "data", url), destroy, str(tmp_path / "backups"))
        assert next((tmp_path / "backups").glob("discsub-catalog-*.dump")).read_bytes()[:5] == b"PGDMP"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.slow
def test_a_snapshot_in_a_bucket_restores_from_there(tmp_path, s3):
    site = Site(
        tmp_path / "data",
        DISCSUB_S3_ENDPOINT_URL=s3.endpoint,
        DISCSUB_S3_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
    )
    drill(tmp_path, site, lambda: (tmp_path / "data" / "discsub.sqlite3").unlink(), f"s3://{s3.bucket}/catalog")
    (name, sums) = s3.keys("catalog/")
    assert name.endswith(".sqlite3") and sums == f"{name}.sha256"
    assert hashlib.sha256(s3.get(name)).hexdigest() == s3.get(sums).decode().split()[0]


# --- in this process (committed: a snapshot is never taken inside a transaction) -----------


def test_a_snapshot_inside_a_transaction_is_refused_not_waited_for(db, tmp_path):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's backup only: pg_dump reads through a connection of its own")
    with pytest.raises(catalog_backup.BackupError, match="inside a transaction"):
        catalog_backup.backup_catalog(str(tmp_path / "backups"))
    assert not (tmp_path / "backups").exists()


def test_only_the_newest_are_kept(transactional_db, tmp_path):
    for day in range(1, 5):
        at = dt.datetime(2026, 12, day, 3, tzinfo=dt.UTC)
        catalog_backup.backup_catalog(str(tmp_path / "backups"), keep=2, now=at)
    assert sorted(p.name for p in (tmp_path / "backups").iterdir()) == [
        f"discsub-catalog-2026120{day}T030000Z.{ext}" for day in (3, 4) for ext in (SUFFIX(), f"{SUFFIX()}.sha256")
    ]
    assert JobRun.objects.filter(name="backup_catalog").count() == 4


def SUFFIX() -> str:  # noqa: N802 - reads as a constant
    return "dump" if connection.vendor == "postgresql" else "sqlite3"


def test_restoring_into_a_database_that_holds_anything_is_refused(transactional_db, tmp_path):
    snapshot = catalog_backup.backup_catalog(str(tmp_path / "backups"))
    tables = connection.introspection.table_names()
    with pytest.raises(CommandError, match="the database is not empty"):
        call_command("restore_catalog", snapshot.where)
    assert connection.introspection.table_names() == tables


def test_a_snapshot_that_does_not_match_its_sha256_or_has_none_is_refused(tmp_path, settings):
    # An empty database (a fresh SQLite file), so only the snapshot's own check can refuse.
    source = tmp_path / "discsub-catalog-20261201T030000Z.sqlite3"
    source.write_bytes(b"SQLite format 3\0" + bytes(4080))
    Path(f"{source}.sha256").write_text(f"{'0' * 64}  {source.name}\n")
    empty = Site(tmp_path / "data")
    refused = empty("restore_catalog", str(source), ok=False)
    assert refused.returncode != 0 and "does not match its sha256" in refused.stderr
    Path(f"{source}.sha256").unlink()
    refused = empty("restore_catalog", str(source), ok=False)
    assert refused.returncode != 0 and "is missing: the snapshot cannot be checked" in refused.stderr
    assert not (tmp_path / "data" / "discsub.sqlite3").exists() or empty("showmigrations", ok=False).returncode == 0


def test_an_unwritable_destination_is_a_clear_error_and_records_nothing(transactional_db, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(CommandError, match="cannot use .* for backups"):
        call_command("backup_catalog", "--to", str(blocked / "backups"))
    assert not JobRun.objects.filter(name="backup_catalog").exists()


def test_the_dashboard_and_export_status_alert_when_the_newest_is_too_old(transactional_db, tmp_path, client, sam):
    assert status.catalog_backup()["alert"] and status.catalog_backup()["at"] is None
    catalog_backup.backup_catalog(str(tmp_path / "backups"))
    fresh = status.catalog_backup()
    assert not fresh["alert"] and fresh["where"].startswith(str(tmp_path / "backups"))
    client.force_login(sam)
    page = client.get("/staff/dashboard/").content.decode()
    assert "since the last catalog backup" in page and "older than 26 hours" not in page
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=27)):
        assert status.catalog_backup()["alert"]
        assert "older than 26 hours, check the scheduler" in client.get("/staff/dashboard/").content.decode()
        from io import StringIO

        out = StringIO()
        call_command("export_status", stdout=out)
        assert "OLDER THAN 26 HOURS" in out.getvalue()
