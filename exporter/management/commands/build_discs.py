import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from exporter import cleanup, jobs
from exporter.management.commands._common import disc_json, user_named
from exporter.media import Medium
from exporter.models import DiscStatus


class Command(BaseCommand):
    help = "Plan and build every disc that is due (or, with --user and --now, that subscriber's discs at once)."

    def add_arguments(self, parser):
        parser.add_argument("--user", metavar="USERNAME")
        parser.add_argument("--now", action="store_true", help="ship what is pending even if the last disc is not full")
        parser.add_argument("--medium", choices=[m.value for m in Medium], help="medium for discs planned in this run")
        parser.add_argument("--json", action="store_true", help="one JSON object per disc on stdout")

    def handle(self, user, now, medium, json: bool, **options):
        if now and not user:
            raise CommandError("--now needs --user")
        # This process is a worker too: first remove what killed ones left.
        cleanup.clean_leftovers()
        user_id = None
        if user:
            account = user_named(user)
            user_id = account.pk
            jobs.plan_discs_for(user_id, allow_partial=now, medium=medium)
        else:
            jobs.plan_due(medium=medium)

        bars = []

        def progress(disc):
            if json:
                return None
            bar = tqdm(
                desc=f"{disc.owner} disc {disc.number}", unit="B", unit_scale=True, file=self.stderr, disable=None
            )
            bars.append(bar)

            def update(done, total):
                bar.total = total
                bar.n = done
                bar.refresh()

            return update

        built = jobs.build_due(user_id=user_id, progress=progress)
        for bar in bars:
            bar.close()
        failed = 0
        for disc in built:
            if json:
                self.stdout.write(_dumps(disc_json(disc)))
            else:
                self.stdout.write(
                    f"{disc.owner} disc {disc.number}: {disc.get_status_display().lower()}"
                    + (f" ({disc.last_error})" if disc.last_error else "")
                )
            failed += disc.status != DiscStatus.VERIFIED
        if failed:
            raise CommandError(f"{failed} disc(s) failed; they are retried later")


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
