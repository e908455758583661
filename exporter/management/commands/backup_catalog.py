from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exporter import catalog_backup


class Command(BaseCommand):
    help = (
        "Write a consistent snapshot of the catalog (pg_dump's custom format on PostgreSQL, SQLite's online "
        "backup on the embedded default) with its sha256 beside it, to a folder or s3://bucket/prefix "
        "(default DISCSUB_BACKUP_TO), and keep the newest DISCSUB_BACKUP_KEEP."
    )

    def add_arguments(self, parser):
        parser.add_argument("--to", metavar="DIR|s3://bucket/prefix")
        parser.add_argument("--keep", type=int, metavar="N", help="snapshots to keep (default DISCSUB_BACKUP_KEEP)")

    def handle(self, to, keep, **options):
        bar = tqdm(desc="snapshot", unit="page", disable=None, file=self.stderr)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            snapshot = catalog_backup.backup_catalog(to, keep=keep, progress=progress)
        except catalog_backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        self.stdout.write(f"wrote {snapshot.where} ({snapshot.size} bytes, sha256 {snapshot.sha256})")
        for old in snapshot.removed:
            self.stdout.write(f"removed {old} (keeping the newest)")
