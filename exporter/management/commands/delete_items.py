"""`manage.py delete_items USERNAME (--all | --album PATH | --match GLOB) [--trash]`:
support staff delete (or trash) a subscriber's items (exporter.deletion).

Deleted items go to Recently deleted: they can still be brought back with
undelete_items until the purge erases them, and a bulk delete over the
purge guard's limits waits for staff (docs/deletion.md)."""

from django.core.management.base import BaseCommand, CommandError

from exporter import deletion
from exporter.management.commands._common import add_item_selection, matching_items, move_each, user_named
from exporter.models import ItemStatus


class Command(BaseCommand):
    help = "Delete (to Recently deleted) or, with --trash, trash a subscriber's matching items."

    def add_arguments(self, parser):
        add_item_selection(parser, album=True)
        parser.add_argument("--trash", action="store_true", help="move to the trash instead of deleting")

    def handle(self, username, all, album, match, trash, **options):
        user = user_named(username)
        if trash:
            statuses, move, done = [ItemStatus.LIVE], deletion.trash_item, "trashed"
        else:
            statuses, move, done = [ItemStatus.LIVE, ItemStatus.TRASHED], deletion.delete_now, "deleted"
        items = matching_items(user, statuses, album=album, match=match)
        moved, refused = move_each(items, move, desc=done, stderr=self.stderr)
        self.stdout.write(f"{done} {moved} items of {username}")
        if not trash and moved:
            self.stdout.write(
                f"they can be brought back with undelete_items until the purge erases them "
                f"(after {deletion.hold_days().days} days)"
            )
        for line in refused:
            self.stderr.write(f"  not {done}: {line}")
        if refused:
            raise CommandError(f"{len(refused)} items were not {done}")
