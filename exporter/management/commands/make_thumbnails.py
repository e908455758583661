import time

from django.core.management.base import BaseCommand
from tqdm import tqdm

from exporter import thumbnails
from exporter.management.commands._common import user_named


class Command(BaseCommand):
    help = (
        "Make the missing thumbnails of every item's current version (or one subscriber's), "
        "so planning a disc never has to.  Safe to run again: what exists is kept."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", metavar="USERNAME")

    def handle(self, user, **options):
        owner_id = None
        if user:
            account = user_named(user)
            owner_id = account.pk
        versions = thumbnails.current_versions(owner_id)
        started = time.perf_counter()
        total = versions.count()
        made, placeholders = thumbnails.make_missing(
            tqdm(versions.iterator(chunk_size=500), total=total, desc="thumbnails", disable=None, file=self.stderr)
        )
        elapsed = time.perf_counter() - started
        per_item = f" ({elapsed / total * 1000:.0f} ms each)" if total else ""
        self.stdout.write(f"{made} thumbnails, {placeholders} placeholders, in {elapsed:.1f} s{per_item}")
