from django.core.management.base import BaseCommand, CommandError

from exporter.disc_tools import restore


class Command(BaseCommand):
    help = (
        "Restore discs (folders or ISO images, any order) of one series into a folder: the restore.py that "
        "travels on every disc, run from here."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH")
        parser.add_argument("--into", required=True, metavar="DIR")
        parser.add_argument("--apply-deletions", action="store_true", help="move deleted items to DIR/Deleted items")
        parser.add_argument("--require-all", action="store_true", help="restore nothing if a disc is missing")
        parser.add_argument("--dry-run", action="store_true", help="check the discs and say what would be done")

    def handle(self, paths, into, apply_deletions, require_all, dry_run, **options):
        status = restore.restore(
            paths,
            into,
            apply_deletions=apply_deletions,
            dry_run=dry_run,
            require_all=require_all,
            out=self.stdout,
            err=self.stderr,
        )
        if status != 0:
            raise CommandError("the restore is not complete: see the problems above")
