"""`manage.py undelete_items USERNAME (--all | --match GLOB)`: bring back a
subscriber's items that are in the trash or recently deleted
(exporter.deletion.undelete_item).  Items the purge has erased cannot
come back (they are counted); one it is erasing is named, and the command
fails."""

from django.core.management.base import BaseCommand, CommandError

from exporter import deletion
from exporter.management.commands._common import add_item_selection, matching_items, move_each, user_named
from exporter.models import ItemStatus


class Command(BaseCommand):
    help = "Bring back a subscriber's items from the trash or Recently deleted."

    def add_arguments(self, parser):
        add_item_selection(parser, album=False)

    def handle(self, username, all, match, **options):
        user = user_named(username)
        items = matching_items(user, [ItemStatus.TRASHED, ItemStatus.DELETED], match=match)
        erased = items.filter(erased_at__isnull=False).count()
        back, refused = move_each(
            items.filter(erased_at__isnull=True), deletion.undelete_item, desc="undeleting", stderr=self.stderr
        )
        self.stdout.write(f"brought back {back} items of {username}")
        if erased:
            self.stdout.write(f"{erased} matching items were erased by the purge and cannot come back")
        for line in refused:
            self.stderr.write(f"  not brought back: {line}")
        if refused:
            raise CommandError(f"{len(refused)} items could not be brought back")
