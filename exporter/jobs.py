"""The job functions: what the scheduler, the commands and the tests call.

Arguments are primary keys or plain values; every job can run twice
without harm.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.utils import timezone

from exporter import build, thumbnails
from exporter.models import Cadence, Disc, Subscription, SubscriptionStatus
from exporter.planning import plan_next_disc

CADENCE_DAYS = {Cadence.WEEKLY: 7, Cadence.MONTHLY: 30, Cadence.QUARTERLY: 91}


def plan_discs_for(user_id: int, *, allow_partial: bool = False, medium: str | None = None) -> list[Disc]:
    """Plan every full disc the user's backlog fills; with ``allow_partial``, the rest too."""
    user = get_user_model().objects.get(pk=user_id)
    # Thumbnails go on the disc; make the missing ones now, outside the
    # planner's locks (uploads make theirs, this catches the rest).
    thumbnails.make_missing(thumbnails.current_versions(user_id).filter(item__changes__resolution="pending").distinct())
    planned = []
    while True:
        disc = plan_next_disc(user, medium=medium, allow_partial=allow_partial)
        if disc is None:
            return planned
        planned.append(disc)


def plan_due(now: dt.datetime | None = None, *, medium: str | None = None) -> list[Disc]:
    """Plan the discs of every active subscription: full discs whenever the
    backlog fills one, and what is pending when the period ends."""
    now = now or timezone.now()
    planned = []
    for subscription in Subscription.objects.filter(status=SubscriptionStatus.ACTIVE).order_by("pk"):
        period_over = subscription.next_run_at is not None and subscription.next_run_at <= now
        planned += plan_discs_for(subscription.user_id, allow_partial=period_over, medium=medium)
        if subscription.next_run_at is None or period_over:
            subscription.next_run_at = now + dt.timedelta(days=CADENCE_DAYS[subscription.cadence])
            subscription.save(update_fields=["next_run_at", "updated_at"])
    return planned


def build_due(
    *, user_id: int | None = None, progress: Callable[[Disc], Callable[[int, int], None] | None] | None = None
) -> list[Disc]:
    """Build and verify every disc that is due (planned, or failed and past its retry time)."""
    discs = build.due_discs()
    if user_id is not None:
        discs = discs.filter(owner_id=user_id)
    done = []
    for disc in list(discs):
        result = build.build_disc(disc.pk, progress=progress(disc) if progress else None)
        if result is not None:
            done.append(result)
    return done
