"""`manage.py export_status`: the export machinery at a glance (exporter.status)."""

import json

from django.core.management.base import BaseCommand

from exporter import status


class Command(BaseCommand):
    help = (
        "Print purge holds, disc counts, backlog, storage per subscriber, oldest pending change, failed builds, "
        "export failures, workers and scheduler runs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
        parser.add_argument("--top", type=int, default=20, help="subscribers shown in the backlog (default 20)")

    def handle(self, json: bool, top: int, **options):
        data = status.summary(backlog_limit=top)
        if json:
            self.stdout.write(_dumps(data))
            return
        out = self.stdout.write
        for row in data["purge_holds"]:
            out(
                f"PURGE HELD: hold #{row['hold_id']} ({row['username']}, since {_when(row['held_since'])}): "
                f"{row['items_due']} items, {_size(row['bytes_due'])}, erase nothing until staff decide: "
                f"{row['reason']}. manage.py purge --approve {row['hold_id']} --by NAME, or --cancel "
                f"{row['hold_id']} --by NAME to bring the items back"
            )
        out("Discs: " + ", ".join(f"{k} {v}" for k, v in data["discs"].items()))
        age = data["oldest_pending_change_age_seconds"]
        out("Oldest change not yet on a disc: " + ("none waiting" if age is None else _duration(age)))
        out(f"Backlog (top {top}):")
        for row in data["backlog"] or [None]:
            if row is None:
                out("  nothing pending")
                continue
            out(
                f"  {row['username']}: {_size(row['pending_bytes'])} in {row['pending_items']} items, "
                f"{row['pending_changes']} changes, oldest {_when(row['oldest_pending_at'])}"
            )
        out(f"Storage (top {top}; originals with every version, of which in the trash and waiting to be erased):")
        for row in data["storage"] or [None]:
            if row is None:
                out("  nothing stored")
                continue
            out(
                f"  {row['username']}: {_size(row['originals_bytes'])} in {row['items']} items "
                f"({_size(row['trash_bytes'])} in the trash, {_size(row['waiting_erasure_bytes'])} waiting to be "
                f"erased), images {_size(row['images_bytes'])}"
            )
        out("Failed builds:")
        for row in data["failed_builds"] or [None]:
            if row is None:
                out("  none")
                continue
            retry = "permanent, needs staff" if row["permanent"] else f"retry at {_when(row['next_attempt_at'])}"
            out(
                f"  disc {row['disc_id']} ({row['username']} #{row['number']}, {row['attempts']} attempts, "
                f"{retry}): {row['reason']}"
            )
        out("Export failures (a subscriber's pass, or an item that could not be read):")
        for row in data["export_failures"] or [None]:
            if row is None:
                out("  none")
                continue
            what = f"item {row['item_id']} {row['item_name']!r}" if row["item_id"] else "their pass, rolled back"
            state = (
                "held back"
                if row["held_back"]
                else f"retry at {_when(row['retry_at'])}"
                if row["retry_at"]
                else "tried again at their next pass"
            )
            out(
                f"  {row['username']}: {what}, {row['failures']} time{'s' if row['failures'] != 1 else ''} in a row "
                f"since {_when(row['first_at'])} ({state}): {row['error']}: {row['reason']}"
            )
        out("Workers:")
        for row in data["workers"] or [None]:
            if row is None:
                out("  none has reported yet")
                continue
            doing = f"{row['task']} disc {row['disc_id']}" if row["disc_id"] else (row["task"] or "idle")
            out(
                f"  {row['worker']} [{row['cluster']}] last seen {_when(row['seen_at'])}"
                f"{' SILENT' if row['silent'] else ''}: {doing}"
            )
        _overdue_takeovers(out, data["overdue_takeovers"])
        for row in data["clusters"]:
            out(f"  cluster {row['cluster']} on {row.get('host', '?')}: {row['status']}")
        out("Scheduler runs:")
        for row in data["job_runs"] or [None]:
            if row is None:
                out("  never ran")
                continue
            if row["name"] != "plan_due":  # the trash and the purge say what they did in their note
                out(f"  {row['name']} {_when(row['started_at'])}: {row['note'] or 'did not finish'}")
                continue
            out(
                f"  {row['name']} {_when(row['started_at'])}: {row['subscriptions']} due, "
                f"{row['discs_planned']} discs planned, {row['builds_queued']} builds queued"
                + ("" if row["finished_at"] else " (did not finish)")
                + (f" ({row['note']})" if row["note"] else "")
            )


def _overdue_takeovers(out, rows) -> None:
    if not rows:
        return
    out(f"  OVERDUE TAKE-OVERS: {len(rows)} disc(s) whose worker died and that no worker has taken over:")
    for row in rows:
        out(
            f"    disc {row['disc_id']} ({row['username']} #{row['number']}, {row['status']}): "
            f"lease of {row['leased_by'] or 'an unknown worker'} ran out {_when(row['lease_expired_at'])}, "
            f"{_duration(row['overdue_seconds'])} overdue; is a build worker running?"
        )


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, default=str)


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _duration(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    return f"{days}d {hours}h {rest // 60}m" if days else f"{hours}h {rest // 60}m {rest % 60}s"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)
