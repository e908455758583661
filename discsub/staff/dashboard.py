"""The operations dashboard: how the copies and the engine are doing, at a glance.

A fixed number of queries whatever the number of copies (see
tests/staff/test_query_counts.py)."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from exporter import fulfillment_stats as stats
from exporter import purge_guard, status
from exporter.models import ItemIssue

from . import charts
from .access import staff_required

# Deciding a purge hold erases subscribers' bytes or brings them back: a
# permission of its own, beyond moving copies.
PURGE_PERMISSION = "exporter.change_purgehold"
FLOW = ["burned", "checked", "shipped", "delivered"]
# A copy waiting longer than this is shown in red.
LATE = dt.timedelta(days=2)


def _short(wait: dt.timedelta) -> str:
    if wait.days >= 1:
        return f"{wait.days} day{'s' if wait.days != 1 else ''}"
    hours = wait.seconds // 3600
    return f"{hours} h" if hours else f"{wait.seconds // 60} min"


@staff_required
def dashboard(request: HttpRequest) -> HttpResponse:
    per_state = stats.copies_per_state()
    busiest = max([1, *(s.count for s in per_state)])
    states = [
        {
            "state": s,
            "waiting": s.status in stats.WAITING_STATES,
            "meter": charts.meter(s.count, busiest, label=f"{s.count} {s.label.lower()}"),
        }
        for s in per_state
    ]
    days = stats.throughput_per_day(14)
    throughput = charts.columns(
        [f"{d.day.day} {d.day:%b}" for d in days],
        [(name, [getattr(d, name) for d in days]) for name in FLOW],
        title="Copies burned, read back OK, shipped and delivered per day, last 14 days",
    )
    totals = {name: sum(getattr(d, name) for d in days) for name in FLOW}

    def rates(field: str) -> list[dict]:
        return [
            {
                "rate": r,
                "percent": round(r.rate * 100),
                "meter": charts.meter(r.rate, 1, color=charts.PALETTE["failed"], label=f"{r.rate:.0%} failed"),
            }
            for r in stats.read_back_failure_rates(field)
        ]

    backlog = status.backlog_by_subscriber(limit=20)
    biggest = max([1, *(b["pending_bytes"] for b in backlog)])
    for row in backlog:
        row["meter"] = charts.meter(row["pending_bytes"], biggest, label=f"{row['pending_bytes']} bytes waiting")
    now = timezone.now()
    change_age = status.oldest_pending_change_age()
    oldest = stats.oldest_waiting_copy()
    wait = now - oldest.status_changed_at if oldest else None
    context = {
        "section": "dashboard",
        "oldest_wait": _short(wait) if wait is not None else "",
        "oldest_late": wait is not None and wait > LATE,
        "states": states,
        "waiting": sum(s.count for s in per_state if s.status in stats.WAITING_STATES),
        "oldest": oldest,
        "throughput": throughput,
        "legend": charts.legend(FLOW),
        "totals": totals,
        "drives": rates("drive"),
        "batches": rates("media_batch"),
        "discs": status.disc_counts(),
        "failed_builds": status.failed_builds(limit=20),
        "export_failures": status.export_failures(limit=20),
        "flagged": list(
            ItemIssue.objects.filter(resolved_at__isnull=True).select_related("item", "item__owner", "version")[:20]
        ),
        "backlog": backlog,
        "oldest_change_age": change_age,
        "oldest_change_wait": _short(change_age) if change_age is not None else "",
        "workers": status.worker_heartbeats(),
        "overdue_takeovers": status.overdue_takeovers(limit=20),
        "purge_holds": status.purge_holds(),
        "may_decide_purges": request.user.has_perm(PURGE_PERMISSION),
        "storage": status.storage_by_subscriber(limit=20),
        "now": now,
    }
    return render(request, "staff/dashboard.html", context)


@staff_required
@require_POST
def purge_hold_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Approve or cancel a group the purge's guard holds, in the staff member's name."""
    if action not in ("approve", "cancel") or not request.user.has_perm(PURGE_PERMISSION):
        raise Http404("No such page.")
    name = request.user.get_full_name() or request.user.get_username()
    try:
        if action == "approve":
            hold = purge_guard.approve(pk, name)
            messages.success(
                request, f"Hold #{hold.pk} approved: the next purge pass erases its {hold.items_due} items."
            )
        else:
            hold, back = purge_guard.cancel(pk, name)
            messages.success(request, f"Hold #{hold.pk} cancelled: {back} items are back in the library.")
    except purge_guard.GuardError as exc:
        messages.error(request, str(exc))
    return redirect("staff:dashboard")
