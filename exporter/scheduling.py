"""The scheduler's pass: which subscriptions are due, their discs, their builds.

A pass selects subscriptions *by state*, in one indexed query:

- active, and the end of its period (``next_run_at``) reached — or never
  scheduled yet (``next_run_at`` null: the first pass starts its period);
- active, with "ship now" asked for (``ship_now_requested_at``);
- cancelled, and its final disc not planned yet.

Each due subscription is handled in one transaction under its row lock
(``skip_locked``: a second scheduler running at the same time takes other
rows): its discs are planned, its period moves on, "ship now" is cleared and
a cancellation's final disc is recorded, all or nothing.  A missed pass
catches up (state, not dates, says what is due); a doubled pass finds
nothing left to do.  Builds are then queued, one task per disc (argument:
the disc's primary key), for discs that are due to build and not queued
recently.  Each pass is recorded as a :class:`JobRun`.

One subscriber never stops the others (exporter.failures): an item whose
bytes cannot be read is passed over by that pass's plan and recorded, and a
subscription whose pass raises is rolled back, recorded, and tried again
after a backoff, while the pass goes on to the next subscriber and then
queues the builds (a dead worker's disc is taken over there).
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, Min, OuterRef, Q, Sum
from django.utils import timezone

from exporter import build, failures, workers
from exporter.models import (
    Change,
    Disc,
    DiscStatus,
    JobRun,
    MediaItem,
    Resolution,
    Subscription,
    SubscriptionStatus,
    WorkerHeartbeat,
)
from exporter.planning import plan_next_disc

log = logging.getLogger(__name__)

CADENCE_DAYS = {"weekly": 7, "monthly": 30, "quarterly": 91}
BATCH = 500
JOB_NAME = "plan_due"
KEEP_RUNS = dt.timedelta(days=30)
KEEP_HEARTBEATS = dt.timedelta(days=7)


def period(subscription: Subscription) -> dt.timedelta:
    return dt.timedelta(days=CADENCE_DAYS[subscription.cadence])


def due_filter(now: dt.datetime) -> Q:
    active = Q(status=SubscriptionStatus.ACTIVE)
    return (
        (active & (Q(next_run_at__lte=now) | Q(next_run_at__isnull=True)))
        | (active & Q(ship_now_requested_at__isnull=False))
        | Q(status=SubscriptionStatus.CANCELLED, final_disc_planned_at__isnull=True)
    )


def due_subscriptions(now: dt.datetime | None = None):
    """Subscriptions due for a pass, by primary key (each OR arm is served by
    a partial index of its own; see benchmarks/scheduler.py for the plan)."""
    return Subscription.objects.filter(due_filter(now or timezone.now())).order_by("pk")


def next_period_end(subscription: Subscription, now: dt.datetime) -> dt.datetime:
    """The first end of period after ``now``: a pass that ran late (or never
    ran for months) schedules the next one from the calendar, not from itself."""
    length = period(subscription)
    if subscription.next_run_at is None:
        return now + length
    behind = now - subscription.next_run_at
    if behind < dt.timedelta(0):
        return subscription.next_run_at
    return subscription.next_run_at + length * (behind // length + 1)


@dataclass
class Outcome:
    """What one subscription's pass did."""

    subscription_id: int
    reason: str = ""
    discs: list[int] = field(default_factory=list)
    partial_held: bool = False  # a partial disc waited for the per-deployment minimum
    capped: bool = False  # the per-period cap stopped further discs
    unreadable: int = 0  # items passed over: their bytes could not be read (exporter.failures)
    error: str = ""  # the pass raised and was rolled back (recorded in exporter.failures)
    backing_off: bool = False  # its last pass failed, and its retry time has not come


def _pending_summary(owner_id: int) -> tuple[int, dt.datetime | None]:
    """Bytes of new versions waiting (an estimate of the partial disc) and
    the oldest pending change's time.  Two queries."""
    oldest = Change.objects.filter(owner_id=owner_id, resolution=Resolution.PENDING).aggregate(t=Min("created_at"))["t"]
    if oldest is None:
        return 0, None
    pending = Change.objects.filter(item=OuterRef("pk"), resolution=Resolution.PENDING)
    size = (
        MediaItem.objects.filter(Exists(pending), owner_id=owner_id, status="live")
        .exclude(current_version__number=F("planned_version_number"))
        .aggregate(s=Sum("current_version__size"))["s"]
    )
    return size or 0, oldest


def _partial_allowed(subscription: Subscription, now: dt.datetime) -> bool:
    """The per-deployment rule for a period's partial disc: ship it unless it
    is under the minimum size and has not waited the maximum number of periods."""
    minimum = settings.DISCSUB_MIN_PARTIAL_MB * 1_000_000
    if minimum <= 0:
        return True
    size, oldest = _pending_summary(subscription.user_id)
    if oldest is None:
        return False
    waited_enough = now - oldest >= period(subscription) * settings.DISCSUB_MAX_WAIT_PERIODS
    return size >= minimum or waited_enough


def run_subscription(
    subscription_id: int, now: dt.datetime | None = None, *, medium: str | None = None, owner_id: int | None = None
) -> Outcome:
    """Plan what is due for one subscription and move its schedule on, in
    one transaction under its row lock.  Does nothing when the subscription
    is no longer due or another scheduler holds it.  A subscription with
    nothing pending costs four queries (most due ones, at a period's end)."""
    now = now or timezone.now()
    outcome = Outcome(subscription_id)
    if owner_id is None:
        owner_id = Subscription.objects.filter(pk=subscription_id).values_list("user_id", flat=True).first()
        if owner_id is None:
            return outcome
    pending = Change.objects.filter(owner_id=owner_id, resolution=Resolution.PENDING)
    unreadable: set[tuple[int, int]] = set()
    if pending.exists():
        # Thumbnails go on the disc; make the missing ones now, outside every
        # lock, each item on its own: one that cannot be read waits, the rest go.
        unreadable = failures.read_for_plan(owner_id, now)
        outcome.unreadable = len(unreadable)
        workers.beat("planning", None)
    with transaction.atomic():
        sub = (
            Subscription.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("user")
            .filter(due_filter(now), pk=subscription_id)
            .first()
        )
        if sub is None:
            return outcome
        period_over = sub.status == SubscriptionStatus.ACTIVE and sub.next_run_at is not None and sub.next_run_at <= now
        ship_now = sub.status == SubscriptionStatus.ACTIVE and sub.ship_now_requested_at is not None
        final = sub.status == SubscriptionStatus.CANCELLED
        outcome.reason = "final" if final else "ship now" if ship_now else "period end" if period_over else "first"

        # Asked again under the lock: a change committed since waits no longer.
        has_pending = pending.exists()
        # The cap counts the discs planned in the last period's length (a
        # rolling window, so a late pass cannot squeeze two periods' worth in).
        room = 0
        if has_pending:
            recent = Disc.objects.filter(owner_id=sub.user_id, planned_at__gt=now - period(sub)).count()
            room = settings.DISCSUB_MAX_DISCS_PER_PERIOD - recent
            outcome.capped = room <= 0
        partial = final or ship_now or (period_over and has_pending and _partial_allowed(sub, now))
        outcome.partial_held = period_over and has_pending and not partial
        while room > 0:
            disc = plan_next_disc(
                sub.user, medium=medium or sub.medium, allow_partial=partial, now=now, unreadable=unreadable
            )
            if disc is None:
                break
            outcome.discs.append(disc.pk)
            room -= 1
            outcome.capped = room <= 0 and pending.exists()

        fields = ["updated_at"]
        if sub.status == SubscriptionStatus.ACTIVE and (period_over or sub.next_run_at is None):
            sub.next_run_at = next_period_end(sub, now)
            fields.append("next_run_at")
        if ship_now:
            sub.ship_now_requested_at = None
            fields.append("ship_now_requested_at")
        if final:
            sub.final_disc_planned_at = now
            fields.append("final_disc_planned_at")
        sub.save(update_fields=fields)
    return outcome


def queue_due_builds(now: dt.datetime | None = None, *, limit: int = 1000) -> list[int]:
    """Queue one build task per disc that is due to build (planned, failed
    past its retry time, or abandoned by a worker whose lease ran out) and
    not queued since it became due.  A doubled pass queues nothing twice."""
    from django_q.tasks import async_task

    now = now or timezone.now()
    # A task lost before any worker claimed its disc (the cluster that took
    # it from a Redis queue was killed) is queued again once the build
    # queue's retry time has passed, or after DISCSUB_LOST_BUILD_MINUTES if
    # the build queue is empty: the task is then gone, or held by a cluster
    # busy with another build (a second task lets an idle worker take the
    # disc).  Two tasks for one disc are harmless: its lease lets one build.
    queue = settings.Q_CLUSTER.get("ALT_CLUSTERS", {}).get(settings.DISCSUB_BUILD_QUEUE, settings.Q_CLUSTER)
    wait = dt.timedelta(seconds=queue.get("retry", settings.Q_CLUSTER["retry"]))
    if _build_queue_is_empty():
        wait = min(wait, dt.timedelta(minutes=settings.DISCSUB_LOST_BUILD_MINUTES))
    requeue = now - wait
    not_queued = (
        Q(queued_at__isnull=True)
        | Q(queued_at__lt=requeue)
        # failed or abandoned since it was last queued
        | Q(status=DiscStatus.FAILED, queued_at__lt=F("next_attempt_at"))
        | Q(status__in=[DiscStatus.BUILDING, DiscStatus.BUILT], queued_at__lt=F("lease_expires_at"))
    )
    queued = []
    for disc_id in build.due_discs(now).filter(not_queued).values_list("pk", flat=True)[:limit]:
        # The conditional update is the claim on queueing: of two passes
        # running at once, one queues the disc.
        if Disc.objects.filter(not_queued, pk=disc_id).update(queued_at=now):
            async_task(
                "exporter.tasks.build_disc",
                disc_id,
                cluster=settings.DISCSUB_BUILD_QUEUE,
                task_name=f"build disc {disc_id}",
                group="builds",
            )
            queued.append(disc_id)
    return queued


def _build_queue_is_empty() -> bool:
    """Whether no build task waits in the broker (when it cannot say, no)."""
    from django_q.brokers import get_broker

    try:
        return get_broker(settings.DISCSUB_BUILD_QUEUE).queue_size() == 0
    except Exception as exc:  # the broker is down: the tasks queued below would fail too
        log.warning("cannot read the build queue's size: %s", exc)
        return False


def _run_isolated(subscription_id: int, owner_id: int, now: dt.datetime, medium: str | None, failing: dict) -> Outcome:
    """:func:`run_subscription`, with whatever it raises recorded against the
    subscriber (its transaction is rolled back whole) instead of stopping the pass."""
    if owner_id in failing and failing[owner_id] is not None and failing[owner_id] > now:
        return Outcome(subscription_id, backing_off=True)
    try:
        outcome = run_subscription(subscription_id, now, medium=medium, owner_id=owner_id)
    except Exception as exc:  # one subscriber's trouble is not everyone's
        log.exception("the pass of subscription %s failed; the others go on", subscription_id)
        record = failures.subscriber_failed(owner_id, exc, now)
        return Outcome(subscription_id, error=f"{record.error}: {record.message}")
    if owner_id in failing and outcome.reason:
        failures.subscriber_succeeded(owner_id, now)
    return outcome


def run_due(now: dt.datetime | None = None, *, medium: str | None = None, queue_builds: bool = True) -> JobRun:
    """One scheduler pass over every due subscription, then the builds.  A
    subscription whose pass raises is recorded (exporter.failures) and the
    pass goes on; so does a failure to queue the builds (in the run's note)."""
    now = now or timezone.now()
    run = JobRun.objects.create(name=JOB_NAME, host=socket.gethostname(), started_at=now)
    outcomes = []
    failures.settle_subscribers(due_subscriptions(now).values("user_id"), now)
    failing = failures.failing_subscribers()
    last = 0
    while True:
        batch = list(due_subscriptions(now).filter(pk__gt=last).values_list("pk", "user_id")[:BATCH])
        if not batch:
            break
        for pk, owner_id in batch:
            outcomes.append(_run_isolated(pk, owner_id, now, medium, failing))
        last = batch[-1][0]
    notes = []
    queued = []
    if queue_builds:
        try:
            queued = queue_due_builds(now)
        except Exception as exc:  # the broker is down: the run still says what it did
            log.exception("queueing the builds failed")
            notes.append("queueing the builds failed: {}: {}".format(*failures.describe(exc)))
    run.subscriptions = sum(1 for o in outcomes if o.reason)
    run.discs_planned = sum(len(o.discs) for o in outcomes)
    run.builds_queued = len(queued)
    if held := sum(o.partial_held for o in outcomes):
        notes.append(f"{held} partial discs under the minimum wait")
    if capped := sum(o.capped for o in outcomes):
        notes.append(f"{capped} subscribers reached the per-period cap")
    if failed := sum(bool(o.error) for o in outcomes):
        notes.append(f"{failed} subscribers failed and were rolled back (see the export failures)")
    if waiting := sum(o.backing_off for o in outcomes):
        notes.append(f"{waiting} subscribers wait to retry a failed pass")
    if unreadable := sum(o.unreadable for o in outcomes):
        notes.append(f"{unreadable} items could not be read and wait (see the export failures)")
    run.note = "; ".join(notes)
    run.finished_at = timezone.now()
    run.save()
    run.outcomes = outcomes  # for callers in this process (not stored)
    # What staff no longer need: old passes, and workers long gone.
    JobRun.objects.filter(name=JOB_NAME, started_at__lt=now - KEEP_RUNS).delete()
    WorkerHeartbeat.objects.filter(seen_at__lt=now - KEEP_HEARTBEATS).delete()
    workers.beat("")
    return run
