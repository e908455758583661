import json

from django.core.management.base import BaseCommand

from exporter.management.commands._common import disc_json, user_named
from exporter.models import Disc


class Command(BaseCommand):
    help = "List discs as JSON, one object per line."

    def add_arguments(self, parser):
        parser.add_argument("--user", metavar="USERNAME")
        parser.add_argument("--json", action="store_true", help="JSON output (the only format)")

    def handle(self, user, **options):
        discs = Disc.objects.select_related("owner").order_by("owner_id", "number")
        if user:
            account = user_named(user)
            discs = discs.filter(owner=account)
        for disc in discs:
            self.stdout.write(json.dumps(disc_json(disc), ensure_ascii=False, sort_keys=True))
