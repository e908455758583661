"""Figures about physical copies for the staff dashboard and queue.

Each function runs a fixed number of queries whatever the number of copies
(the dashboard's query-count test holds them to it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Min, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from exporter.fulfillment import OPEN_STATES
from exporter.models import CopyEvent, CopyStatus, DiscCopy, ReadBackCheck

# The states in which a copy waits for a person, in the order of the work.
WAITING_STATES = OPEN_STATES


@dataclass(frozen=True)
class StateCount:
    status: str
    label: str
    count: int
    oldest: dt.datetime | None


def copies_per_state() -> list[StateCount]:
    """Every copy state with its count and the oldest entry into it (one query)."""
    rows = {
        r["status"]: r
        for r in DiscCopy.objects.order_by().values("status").annotate(n=Count("id"), oldest=Min("status_changed_at"))
    }
    return [
        StateCount(status, label, rows.get(status, {}).get("n", 0), rows.get(status, {}).get("oldest"))
        for status, label in CopyStatus.choices
    ]


def oldest_waiting_copy() -> DiscCopy | None:
    """The copy that has waited longest for a person (one query)."""
    return (
        DiscCopy.objects.filter(status__in=WAITING_STATES)
        .select_related("disc", "disc__owner")
        .order_by("status_changed_at", "pk")
        .first()
    )


@dataclass(frozen=True)
class Day:
    day: dt.date
    burned: int
    checked: int
    shipped: int
    delivered: int


def throughput_per_day(days: int = 14, *, now: dt.datetime | None = None) -> list[Day]:
    """Copies burned, read back OK, shipped and delivered on each of the last
    ``days`` days (UTC), oldest first, days without work included (one query)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time.min, tzinfo=timezone.get_current_timezone())
    moves = [CopyStatus.BURNED, CopyStatus.CHECKED, CopyStatus.SHIPPED, CopyStatus.DELIVERED]
    rows = (
        CopyEvent.objects.filter(at__gte=since, to_status__in=moves)
        .annotate(day=TruncDate("at"))
        .order_by()
        .values("day", "to_status")
        .annotate(n=Count("id"))
    )
    counts = {(r["day"], r["to_status"]): r["n"] for r in rows}
    out = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        out.append(Day(day, *(counts.get((day, move), 0) for move in moves)))
    return out


@dataclass(frozen=True)
class FailureRate:
    name: str
    checks: int
    failed: int

    @property
    def rate(self) -> float:
        return self.failed / self.checks if self.checks else 0.0


def read_back_failure_rates(
    field: str, *, days: int = 90, limit: int = 12, now: dt.datetime | None = None
) -> list[FailureRate]:
    """Read-back checks and failures per drive (``field="drive"``) or per media
    batch (``"media_batch"``) over the last ``days`` days, the ``limit`` worst
    first (one query)."""
    if field not in ("drive", "media_batch"):
        raise ValueError(f"failure rates are kept per drive or per media batch, not {field!r}")
    since = (now or timezone.now()) - dt.timedelta(days=days)
    rows = (
        ReadBackCheck.objects.filter(at__gte=since)
        .order_by()
        .values(field)
        .annotate(checks=Count("id"), failed=Count("id", filter=Q(ok=False)))
    )
    rates = [FailureRate(r[field], r["checks"], r["failed"]) for r in rows]
    return sorted(rates, key=lambda r: (-r.rate, -r.checks, r.name))[:limit]
