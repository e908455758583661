"""`manage.py purge [--dry-run] [--json] [--approve ID] [--cancel ID] [--by NAME]`:
run the purge pass now (exporter.purge), after approving or cancelling a
group the guard holds (exporter.purge_guard)."""

import json

from django.core.management.base import BaseCommand, CommandError

from exporter import purge, purge_guard


class Command(BaseCommand):
    help = "Erase the stored bytes of deleted items past their hold (the guard's limits apply)."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="say what would happen; erase and record nothing")
        parser.add_argument("--json", action="store_true", help="one JSON object per item: item, user, action, reason")
        decide = parser.add_mutually_exclusive_group()
        decide.add_argument("--approve", type=int, metavar="ID", help="approve the held group ID (then run the pass)")
        decide.add_argument("--cancel", type=int, metavar="ID", help="cancel the held group ID: its items come back")
        parser.add_argument("--by", metavar="NAME", default="", help="the staff member deciding (--approve, --cancel)")

    def handle(self, dry_run, json, approve, cancel, by, **options):
        if (approve or cancel) and not by.strip():
            raise CommandError("--approve and --cancel need --by NAME: the staff member who decides")
        if (approve or cancel) and dry_run:
            raise CommandError("--dry-run decides nothing: leave out --approve and --cancel")
        try:
            if approve:
                hold = purge_guard.approve(approve, by)
                self.stderr.write(f"hold #{hold.pk} approved by {hold.decided_by}")
            if cancel:
                hold, back = purge_guard.cancel(cancel, by)
                self.stderr.write(f"hold #{hold.pk} cancelled by {hold.decided_by}: {back} items are back")
        except purge_guard.GuardError as exc:
            raise CommandError(str(exc)) from None
        outcomes = purge.run_purge(dry_run=dry_run)
        if json:
            for outcome in outcomes:
                self.stdout.write(_dumps(outcome.as_json()))
            return
        for outcome in outcomes:
            if outcome.action != purge.WAITING or "failed" in outcome.reason:
                self.stdout.write(f"{outcome.action} {outcome.user} {outcome.item}: {outcome.reason}")
        counts = {a: sum(o.action == a for o in outcomes) for a in (purge.ERASED, purge.HELD, purge.WAITING)}
        verb = "would be erased" if dry_run else "erased"
        self.stdout.write(
            f"{counts[purge.ERASED]} {verb}, {counts[purge.HELD]} held by the guard, {counts[purge.WAITING]} waiting"
        )
        for hold in purge_guard.open_holds():
            self.stdout.write(
                f"PURGE HELD: hold #{hold.pk} ({purge_guard.owner_name(hold)}): {hold.reason}; "
                f"purge --approve {hold.pk} --by NAME, or --cancel {hold.pk} --by NAME"
            )


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True)
