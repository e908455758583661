"""What staff need to see of the export machinery, as plain data.

Every function runs a constant number of queries (named in its docstring),
whatever the number of discs, subscribers or changes, and returns plain
Python values (dicts, lists, ints, datetimes), so the staff dashboard and
``manage.py export_status`` show the same thing.  The names are a contract
with the staff pages: keep them stable.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db.models import Count, Exists, F, Min, OuterRef, Q, Sum
from django.utils import timezone

from exporter import catalog_backup as catalog_backup_runs
from exporter.models import (
    Change,
    Disc,
    DiscStatus,
    ExportFailure,
    ItemStatus,
    JobRun,
    MediaItem,
    Resolution,
    WorkerHeartbeat,
)

# A worker not heard from for this long is shown as silent.
HEARTBEAT_STALE = dt.timedelta(minutes=5)


def disc_counts() -> dict[str, int]:
    """Discs per image state, every state present (zero when none), plus
    ``failed_permanently`` (failed and not retried until staff act).  One query."""
    counts = {status.value: 0 for status in DiscStatus}
    counts["failed_permanently"] = 0
    rows = Disc.objects.values("status", "failure_permanent").annotate(n=Count("id")).order_by()
    for row in rows:
        counts[row["status"]] += row["n"]
        if row["status"] == DiscStatus.FAILED and row["failure_permanent"]:
            counts["failed_permanently"] += row["n"]
    return counts


def backlog_by_subscriber(limit: int = 20) -> list[dict]:
    """The subscribers with the most bytes waiting for a disc, largest first.

    Bytes are those of item versions no disc carries yet (a metadata edit or
    a deletion adds none).  Two queries: the items, then the changes of the
    subscribers shown.
    """
    pending = Change.objects.filter(item=OuterRef("pk"), resolution=Resolution.PENDING)
    new_bytes = Q(status=ItemStatus.LIVE) & ~Q(current_version__number=F("planned_version_number"))
    rows = list(
        MediaItem.objects.filter(Exists(pending))
        .values("owner_id", "owner__username")
        .annotate(pending_items=Count("id"), pending_bytes=Sum("current_version__size", filter=new_bytes, default=0))
        .order_by("-pending_bytes", "owner_id")[:limit]
    )
    changes = {
        row["owner_id"]: row
        for row in Change.objects.filter(owner_id__in=[r["owner_id"] for r in rows], resolution=Resolution.PENDING)
        .values("owner_id")
        .annotate(n=Count("id"), oldest=Min("created_at"))
        .order_by()
    }
    return [
        {
            "user_id": row["owner_id"],
            "username": row["owner__username"],
            "pending_items": row["pending_items"],
            "pending_bytes": row["pending_bytes"] or 0,
            "pending_changes": changes.get(row["owner_id"], {}).get("n", 0),
            "oldest_pending_at": changes.get(row["owner_id"], {}).get("oldest"),
        }
        for row in rows
    ]


def oldest_pending_change_age(now: dt.datetime | None = None) -> dt.timedelta | None:
    """How long the oldest change not yet on a disc has waited; None when
    nothing waits.  One query."""
    oldest = Change.objects.filter(resolution=Resolution.PENDING).aggregate(oldest=Min("created_at"))["oldest"]
    if oldest is None:
        return None
    return max((now or timezone.now()) - oldest, dt.timedelta(0))


def failed_builds(limit: int = 50) -> list[dict]:
    """Failed discs, permanent failures first, then the most recently
    attempted; each with its reason and when it is retried.  One query."""
    discs = (
        Disc.objects.filter(status=DiscStatus.FAILED)
        .select_related("owner")
        .order_by("-failure_permanent", F("next_attempt_at").desc(nulls_first=True), "-pk")[:limit]
    )
    return [
        {
            "disc_id": disc.pk,
            "user_id": disc.owner_id,
            "username": disc.owner.get_username(),
            "number": disc.number,
            "medium": disc.medium,
            "attempts": disc.attempts,
            "reason": disc.last_error,
            "permanent": disc.failure_permanent,
            "next_attempt_at": None if disc.failure_permanent else disc.next_attempt_at,
        }
        for disc in discs
    ]


def export_failures(limit: int = 50) -> list[dict]:
    """Unexpected errors the scheduler met and that still stand
    (exporter.failures), the most recent first: a subscriber's pass rolled
    back (``item_id`` None), or an item whose bytes could not be read,
    ``held_back`` once it failed too often.  Each with its reason, written
    for people.  One query."""
    rows = (
        ExportFailure.objects.filter(resolved_at__isnull=True)
        .select_related("owner", "version")
        .order_by("-last_at", "-id")[:limit]
    )
    return [
        {
            "failure_id": row.pk,
            "user_id": row.owner_id,
            "username": row.owner.get_username(),
            "item_id": row.item_id,
            "item_name": row.version.original_name if row.version else None,
            "stage": row.stage,
            "error": row.error,
            "reason": row.message,
            "failures": row.failures,
            "first_at": row.first_at,
            "last_at": row.last_at,
            "retry_at": row.retry_at,
            "held_back": row.held_back_at is not None,
        }
        for row in rows
    ]


def worker_heartbeats(now: dt.datetime | None = None) -> list[dict]:
    """Every worker process that has reported, the most recent first, with
    what it was doing and whether it has gone silent.  One query (plus one
    read of django-q2's cluster statistics from the broker, see
    :func:`cluster_stats`)."""
    now = now or timezone.now()
    return [
        {
            "worker": beat.worker,
            "host": beat.host,
            "pid": beat.pid,
            "cluster": beat.cluster,
            "seen_at": beat.seen_at,
            "task": beat.task,
            "disc_id": beat.disc_id,
            "silent": now - beat.seen_at > HEARTBEAT_STALE,
        }
        for beat in WorkerHeartbeat.objects.order_by("-seen_at", "worker")[:200]
    ]


def cluster_stats() -> list[dict]:
    """django-q2's own view of the running clusters (kept by the broker for a
    few seconds; with the ORM broker it lives in the cache, so a separate
    process sees it only with a shared cache).  One broker read."""
    from django_q.status import Stat

    try:
        stats = Stat.get_all()
    except Exception:  # the broker is down: say so rather than fail the page
        return [{"cluster": None, "status": "unreachable"}]
    return [
        {
            "cluster": str(stat.cluster_id),
            "host": stat.host,
            "pid": stat.pid,
            "status": stat.status,
            "workers": list(stat.workers),
            "reincarnations": stat.reincarnations,
            "uptime_seconds": round(stat.uptime()),
        }
        for stat in stats
    ]


def last_job_runs(limit: int = 10) -> list[dict]:
    """The scheduler's most recent passes (that they ran, and what they did).  One query."""
    return [
        {
            "name": run.name,
            "host": run.host,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "subscriptions": run.subscriptions,
            "discs_planned": run.discs_planned,
            "builds_queued": run.builds_queued,
            "note": run.note,
        }
        for run in JobRun.objects.order_by("-started_at", "-id")[:limit]
    ]


def catalog_backup(now: dt.datetime | None = None) -> dict:
    """The newest catalog snapshot (exporter.catalog_backup): when, where, its
    age, and ``alert`` when there is none or it is older than
    DISCSUB_BACKUP_ALERT_HOURS.  One query."""
    now = now or timezone.now()
    run = catalog_backup_runs.last_backup()
    age = None if run is None else now - run.finished_at
    return {
        "at": run and run.finished_at,
        "where": run.note.split(" ", 1)[0] if run else "",
        "age_seconds": None if age is None else round(age.total_seconds()),
        "alert_hours": settings.DISCSUB_BACKUP_ALERT_HOURS,
        "alert": age is None or age > dt.timedelta(hours=settings.DISCSUB_BACKUP_ALERT_HOURS),
    }


def purge_holds() -> list[dict]:
    """Groups of deleted items the purge's guard holds for staff
    (exporter.purge_guard), oldest first: each an alert.  Two queries."""
    from exporter import purge_guard

    return [
        {
            "hold_id": hold.pk,
            "scope": hold.scope,
            "username": purge_guard.owner_name(hold),
            "reason": hold.reason,
            "items_due": hold.items_due,
            "bytes_due": hold.bytes_due,
            "library_items": hold.library_items,
            "library_bytes": hold.library_bytes,
            "held_since": hold.created_at,
        }
        for hold in purge_guard.open_holds()
    ]


def storage_by_subscriber(limit: int = 20) -> list[dict]:
    """What the subscribers storing the most keep, largest first: originals
    (every version), in the trash, waiting to be erased, disc images
    (exporter.deletion.storage_by_subscriber; thumbnails are not in the
    database, see ``storage_usage``).  Four queries."""
    from django.contrib.auth import get_user_model

    from exporter.deletion import storage_by_subscriber as usage_of

    usage = usage_of(limit=limit)
    names = dict(get_user_model().objects.filter(pk__in=list(usage)).values_list("pk", "username"))
    return [
        {
            "user_id": owner_id,
            "username": names.get(owner_id, ""),
            "originals_bytes": u.originals,
            "images_bytes": u.images,
            "trash_bytes": u.in_trash,
            "waiting_erasure_bytes": u.waiting_erasure,
            "items": u.items,
            "items_in_trash": u.items_in_trash,
            "items_waiting_erasure": u.items_waiting_erasure,
        }
        for owner_id, u in usage.items()
    ]


def summary(*, backlog_limit: int = 20, failed_limit: int = 50) -> dict:
    """Everything above in one dict (what ``export_status --json`` prints)."""
    age = oldest_pending_change_age()
    return {
        "discs": disc_counts(),
        "backlog": backlog_by_subscriber(backlog_limit),
        "purge_holds": purge_holds(),
        "storage": storage_by_subscriber(backlog_limit),
        "oldest_pending_change_age_seconds": None if age is None else round(age.total_seconds()),
        "failed_builds": failed_builds(failed_limit),
        "export_failures": export_failures(failed_limit),
        "workers": worker_heartbeats(),
        "overdue_takeovers": overdue_takeovers(),
        "clusters": cluster_stats(),
        "job_runs": last_job_runs(),
        "catalog_backup": catalog_backup(),
        "queue": getattr(settings, "Q_CLUSTER", {}).get("name", ""),
    }


def takeover_grace() -> dt.timedelta:
    """How long a disc may sit under a lease that ran out before its
    take-over counts as overdue: the scheduler's pass queues it again (one
    period), and a worker takes it (another period)."""
    return 2 * dt.timedelta(minutes=settings.DISCSUB_SCHEDULE_MINUTES)


def overdue_takeovers(now: dt.datetime | None = None, limit: int = 50) -> list[dict]:
    """Discs whose worker's lease ran out longer than :func:`takeover_grace`
    ago and that no worker has taken over (the worker died and nothing picks
    its disc up: no build worker running, or the build queue stuck), longest
    overdue first.  One query."""
    now = now or timezone.now()
    discs = (
        Disc.objects.filter(
            status__in=[DiscStatus.BUILDING, DiscStatus.BUILT], lease_expires_at__lte=now - takeover_grace()
        )
        .select_related("owner")
        .order_by("lease_expires_at", "pk")[:limit]
    )
    return [
        {
            "disc_id": disc.pk,
            "user_id": disc.owner_id,
            "username": disc.owner.get_username(),
            "number": disc.number,
            "status": disc.status,
            "leased_by": disc.leased_by,
            "lease_expired_at": disc.lease_expires_at,
            "overdue_seconds": round((now - disc.lease_expires_at - takeover_grace()).total_seconds()),
            "queued_at": disc.queued_at,
        }
        for disc in discs
    ]
