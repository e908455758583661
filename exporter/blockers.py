"""What stops a subscriber's discs, in words for the subscriber.

A disc that cannot be mailed, a plan on pause, an item held back as damaged:
each is a :class:`Blocker` with a sentence saying what waits and what the
subscriber can do.  The portal shows them on every page (a banner), on the
next-disc page and on the disc page, and the email job tells the subscriber
once, then reminds them.  Nothing here moves a disc: once the cause is gone
(an address saved, the plan resumed), the queue takes the disc on by itself,
because claiming and shipping check the same facts (``fulfillment``).

:func:`blockers_for` runs at most three queries, whatever the size of the
library or the number of discs.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from exporter import fulfillment
from exporter.models import CopyStatus, DiscCopy, ItemIssue, ItemStatus, MediaItem, Subscription, SubscriptionStatus

# Copies that still need the post, the ones an address blocks: those still with staff.
UNMAILED = fulfillment.OPEN_STATES


@dataclass(frozen=True)
class Blocker:
    kind: str  # no_address, returned, paused, held_back
    title: str  # one line, for the banner
    detail: str  # what waits and what happens once it is fixed
    action: str  # the button's words
    where: str  # the portal page that fixes it (a URL name)
    anchor: str = ""  # the part of that page, "#..."


def held_back_items(user):
    """The user's live items held back for a problem with our stored copy (an
    open issue other than "larger than the medium", which is the item's own)."""
    open_issue = ItemIssue.objects.filter(item=OuterRef("pk"), resolved_at__isnull=True).exclude(
        kind=ItemIssue.Kind.TOO_LARGE
    )
    return MediaItem.objects.filter(Exists(open_issue), owner=user, status=ItemStatus.LIVE)


def blockers_for(user, subscription: Subscription | None = None) -> list[Blocker]:
    """What stops ``user``'s discs now, most urgent first; empty when nothing does."""
    if subscription is None:
        subscription = Subscription.objects.filter(user=user).first()
    if subscription is None:  # a staff account: no discs of its own
        return []
    found = []
    unmailed = list(DiscCopy.objects.filter(disc__owner=user, status__in=UNMAILED).select_related("disc"))
    # A returned copy waits on the subscriber until they save an address after it came back.
    returned = {
        c.disc.number
        for c in unmailed
        if c.status == CopyStatus.RETURNED and not fulfillment.address_fixed_since_return(c, subscription)
    }
    waiting = bool(unmailed)
    if returned:
        discs = ", ".join(str(n) for n in sorted(returned))
        found.append(
            Blocker(
                "returned",
                f"Disc {discs} came back to us: please check your mailing address.",
                "The post could not deliver it. We mail it again as soon as you save a corrected address.",
                "Check my address",
                "settings",
                "#address-h",
            )
        )
    elif not subscription.has_address and (waiting or subscription.status != SubscriptionStatus.CANCELLED):
        found.append(
            Blocker(
                "no_address",
                "We need your mailing address before we can send your discs.",
                (
                    "Your discs are made and kept safe, but none can be mailed until you add an address. "
                    "Once you save it, the next one goes out with no further step."
                )
                if waiting
                else "Add it now, so your first disc can go out as soon as it is made.",
                "Add my address",
                "settings",
                "#address-h",
            )
        )
    if subscription.status == SubscriptionStatus.PAUSED:
        found.append(
            Blocker(
                "paused",
                "Your subscription is paused: no new disc is made.",
                "Everything you add waits, safely, and your next disc carries all of it once you resume.",
                "Resume",
                "settings",
            )
        )
    held = held_back_items(user).count()
    if held:
        found.append(
            Blocker(
                "held_back",
                f"{held} item{'s are' if held != 1 else ' is'} held back from your discs.",
                (
                    "We found a problem with our stored copy and have been told. It goes on a later disc once "
                    "it is fixed; the rest of your library goes on as usual."
                ),
                "See which",
                "next_disc",
                "#held-back",
            )
        )
    return found
