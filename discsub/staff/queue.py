"""The queue's steps: which copies each tab shows, and how they are filtered.

A fixed number of queries per page whatever the number of copies (see
tests/staff/test_query_counts.py): the tab counts (three), the paginator's
count and the page of rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from exporter.fulfillment import ADDRESSED
from exporter.models import CopyStatus, Disc, DiscCopy, DiscStatus


@dataclass(frozen=True)
class Step:
    slug: str
    title: str
    statuses: list[str]
    hint: str
    # What a selection of rows can be sent to (batch action codes, see views.BATCH_ACTIONS).
    actions: list[str] = field(default_factory=list)


NO_ADDRESS = ~ADDRESSED
# Returned envelopes, copies that failed a burn or read-back, copies nobody can claim for want of an address.
EXCEPTION = Q(status=CopyStatus.RETURNED) | (Q(status=CopyStatus.QUEUED) & (NO_ADDRESS | Q(burn_attempts__gt=0)))

STEPS: dict[str, Step] = {
    s.slug: s
    for s in [
        Step(
            "burn",
            "To burn",
            [CopyStatus.QUEUED, CopyStatus.CLAIMED],
            "Claim a batch, download the images, burn them, then mark them burned.",
            ["claim", "burned", "burn_failed", "release"],
        ),
        Step(
            "read-back",
            "To read back",
            [CopyStatus.BURNED],
            "Run checkisomd5 on each burned disc (or sha256 the whole disc) and record the result.",
        ),
        Step(
            "label",
            "To label",
            [CopyStatus.CHECKED],
            "Print the disc labels, mailing labels and packing slips, then mark them labelled.",
            ["print", "labelled"],
        ),
        Step(
            "ship",
            "To ship",
            [CopyStatus.LABELLED],
            "One envelope per subscriber: enter the carrier and tracking number.",
            ["print"],
        ),
        Step(
            "mail",
            "In the mail",
            [CopyStatus.SHIPPED],
            "Mark envelopes delivered, or returned when the post brings them back.",
            ["delivered", "returned"],
        ),
        Step(
            "exceptions",
            "Exceptions",
            [CopyStatus.RETURNED, CopyStatus.QUEUED],
            "Returned envelopes, failed burns and read-backs, subscribers without an address, failed image builds.",
        ),
    ]
}

AGES = [("", "Any age"), ("1", "Waiting 1+ day"), ("3", "Waiting 3+ days"), ("7", "Waiting 7+ days")]


def copies(
    step: Step, *, medium: str = "", min_age_days: int = 0, mine=None, now: dt.datetime | None = None
) -> QuerySet:
    """The step's copies, oldest first, with everything a row shows joined in."""
    rows = DiscCopy.objects.select_related(
        "disc", "disc__owner", "disc__owner__subscription", "claimed_by", "shipment"
    ).order_by("status_changed_at", "pk")
    if step.slug == "exceptions":
        rows = rows.filter(EXCEPTION)
    else:
        rows = rows.filter(status__in=step.statuses)
    if medium:
        rows = rows.filter(disc__medium=medium)
    if min_age_days:
        rows = rows.filter(status_changed_at__lte=(now or timezone.now()) - dt.timedelta(days=min_age_days))
    if mine is not None:
        rows = rows.filter(claimed_by=mine)
    return rows


def tab_counts() -> dict[str, int]:
    """Copies per tab (three queries)."""
    per_status = dict(
        DiscCopy.objects.filter(status__in=[s for step in STEPS.values() for s in step.statuses])
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    counts = {slug: sum(per_status.get(s, 0) for s in step.statuses) for slug, step in STEPS.items()}
    # Failed image builds are shown on the exceptions tab too.
    counts["exceptions"] = (
        DiscCopy.objects.filter(EXCEPTION).count() + Disc.objects.filter(status=DiscStatus.FAILED).count()
    )
    return counts


def why_exceptional(copy: DiscCopy, *, can_reship: bool = False) -> str:
    """One line saying what is wrong with a copy on the exceptions tab."""
    if copy.status == CopyStatus.RETURNED:
        return (
            "Returned undeliverable: address fixed, ready to re-ship"
            if can_reship
            else ("Returned undeliverable: waiting for a new address")
        )
    subscription = getattr(copy.disc.owner, "subscription", None)
    if subscription is None or not subscription.has_address:
        return "Subscriber has no mailing address"
    if copy.burn_attempts:
        return f"Burn or read-back failed ({copy.burn_attempts} burn{'s' if copy.burn_attempts != 1 else ''} so far)"
    return ""
