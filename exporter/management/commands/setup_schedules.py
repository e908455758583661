"""`manage.py setup_schedules`: the django-q2 schedules, created or updated (idempotent)."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

SCHEDULES = {
    # name: (function, every N minutes)
    "discsub: plan due discs and queue their builds": ("exporter.tasks.run_schedule", "DISCSUB_SCHEDULE_MINUTES"),
    # Two jobs: the purge is apart from the code that records deletions (docs/deletion.md).
    "discsub: empty the trash": ("exporter.tasks.empty_trash", "DISCSUB_DELETION_MINUTES"),
    "discsub: purge deleted items past their hold": ("exporter.tasks.purge", "DISCSUB_DELETION_MINUTES"),
}


def setup_schedules() -> list[str]:
    """Create or update every schedule; running it again changes nothing.
    Returns what was created or changed."""
    from django_q.models import Schedule

    changed = []
    with transaction.atomic():
        for name, (func, minutes_setting) in SCHEDULES.items():
            minutes = getattr(settings, minutes_setting)
            wanted = {"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1}
            schedule = Schedule.objects.select_for_update().filter(name=name).order_by("pk").first()
            if schedule is None:
                schedule = Schedule.objects.create(name=name, **wanted)
                changed.append(f"created {name}")
            elif any(getattr(schedule, k) != v for k, v in wanted.items()):
                Schedule.objects.filter(pk=schedule.pk).update(**wanted)
                changed.append(f"updated {name}")
            # A copy made by hand (or by an older deployment) would run the pass twice as often.
            Schedule.objects.filter(name=name).exclude(pk=schedule.pk).delete()
    return changed


class Command(BaseCommand):
    help = "Create or update the scheduler's django-q2 schedules (safe to run on every start)."

    def handle(self, **options):
        for line in setup_schedules() or ["schedules are up to date"]:
            self.stdout.write(line)
