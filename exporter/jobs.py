"""The job functions: what the scheduler, the commands and the tests call.

Arguments are primary keys or plain values; every job can run twice
without harm.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.utils import timezone

from exporter import build, failures, scheduling
from exporter.models import Disc
from exporter.planning import plan_next_disc


def plan_discs_for(user_id: int, *, allow_partial: bool = False, medium: str | None = None) -> list[Disc]:
    """Plan every full disc the user's backlog fills; with ``allow_partial``, the rest too."""
    user = get_user_model().objects.get(pk=user_id)
    # Thumbnails go on the disc; make the missing ones now, outside the
    # planner's locks (uploads make theirs, this catches the rest).  An item
    # that cannot be read is recorded and waits; the rest go (exporter.failures).
    unreadable = failures.read_for_plan(user_id, timezone.now())
    planned = []
    while True:
        disc = plan_next_disc(user, medium=medium, allow_partial=allow_partial, unreadable=unreadable)
        if disc is None:
            return planned
        planned.append(disc)


def plan_due(now: dt.datetime | None = None, *, medium: str | None = None) -> list[Disc]:
    """One scheduler pass without queueing builds (the caller builds):
    plans the discs of every due subscription (exporter.scheduling)."""
    run = scheduling.run_due(now, medium=medium, queue_builds=False)
    return list(Disc.objects.filter(pk__in=[pk for o in run.outcomes for pk in o.discs]).order_by("pk"))


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
