import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from exporter.management.commands._discjson import disc_json
from exporter.models import Disc


class Command(BaseCommand):
    help = "List discs as JSON, one object per line."

    def add_arguments(self, parser):
        parser.add_argument("--user", metavar="USERNAME")
        parser.add_argument("--json", action="store_true", help="JSON output (the only format)")

    def handle(self, user, **options):
        discs = Disc.objects.select_related("owner").order_by("owner_id", "number")
        if user:
            account = get_user_model().objects.filter(username=user).first()
            if account is None:
                raise CommandError(f"unknown user {user!r}")
            discs = discs.filter(owner=account)
        for disc in discs:
            self.stdout.write(json.dumps(disc_json(disc), ensure_ascii=False, sort_keys=True))
