from django.core.management.base import BaseCommand, CommandError

from exporter import catalog_backup


class Command(BaseCommand):
    help = (
        "Restore a catalog snapshot written by backup_catalog (a file, or s3://bucket/key) into the configured "
        "database, which must be empty (no tables): a new database, never one that holds anything. The "
        "snapshot's sha256 file must sit beside it and match."
    )

    def add_arguments(self, parser):
        parser.add_argument("snapshot", metavar="FILE")

    def handle(self, snapshot, **options):
        try:
            digest = catalog_backup.restore_catalog(snapshot)
        except catalog_backup.BackupError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"restored {snapshot} (sha256 {digest}); run `manage.py migrate` if the code is newer")
