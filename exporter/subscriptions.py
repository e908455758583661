"""What a subscriber may change about their subscription, one function per move.

Each function locks the subscription row, re-checks its state, refuses a
move that is not allowed with :class:`IllegalTransition` (a message the
subscriber can act on) and records a :class:`SubscriptionEvent` with who
and when.  The portal, commands and tests call these; nothing else assigns
a subscription's status.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from exporter import splitting
from exporter.countries import COUNTRIES
from exporter.errors import ExportError, IllegalTransition
from exporter.media import CAPACITY_SECTORS, Medium, capacity_bytes
from exporter.models import (
    Cadence,
    Change,
    ItemStatus,
    MediaItem,
    Resolution,
    Subscription,
    SubscriptionEvent,
    SubscriptionEventKind,
    SubscriptionStatus,
)
from exporter.scheduling import period


class InvalidAddress(ExportError):
    """An address that cannot be mailed to.  ``errors`` maps a field to its problem."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(errors.values()))


def _locked(subscription: Subscription) -> Subscription:
    return Subscription.objects.select_for_update().get(pk=subscription.pk)


def _record(subscription: Subscription, actor, kind: str, *, from_status: str = "", to_status: str = "", note=""):
    SubscriptionEvent.objects.create(
        subscription=subscription, actor=actor, kind=kind, from_status=from_status, to_status=to_status, note=note
    )


def _refresh(subscription: Subscription, locked: Subscription) -> Subscription:
    # The caller's object reflects the move too.
    subscription.refresh_from_db()
    return locked


# --- ship now ----------------------------------------------------------------------


def request_ship_now(subscription: Subscription, actor, *, now: dt.datetime | None = None) -> Subscription:
    """Ask the scheduler to plan a disc of whatever is waiting on its next
    pass, even if it is not full.  Once per period (the subscription's
    cadence, :func:`exporter.scheduling.period`); the scheduler clears
    ``ship_now_requested_at`` when it plans."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = _locked(subscription)
        if locked.status != SubscriptionStatus.ACTIVE:
            raise IllegalTransition(
                f"Your subscription is {locked.get_status_display().lower()}, so no disc can be sent now."
            )
        if locked.ship_now_requested_at is not None:
            raise IllegalTransition("You have already asked; your disc will be planned on the next pass.")
        length = period(locked)
        asked = SubscriptionEvent.objects.filter(subscription=locked, kind=SubscriptionEventKind.SHIP_NOW)
        last = asked.filter(at__gt=now - length).order_by("-at").first()
        if last is not None:
            again = last.at + length
            raise IllegalTransition(
                f"You can ask for an early disc once per {locked.get_cadence_display().lower()} period; "
                f"you last asked on {last.at:%-d %B %Y}. You can ask again from {again:%-d %B %Y}."
            )
        if not Change.objects.filter(owner_id=locked.user_id, resolution=Resolution.PENDING).exists():
            raise IllegalTransition("Nothing is waiting for a disc yet. Add some photos or videos first.")
        locked.ship_now_requested_at = now
        locked.save(update_fields=["ship_now_requested_at", "updated_at"])
        _record(locked, actor, SubscriptionEventKind.SHIP_NOW)
    return _refresh(subscription, locked)


# --- pause, resume, cancel -----------------------------------------------------------


def _move(subscription: Subscription, actor, to: str, allowed_from: set[str], kind: str, refusal: str):
    with transaction.atomic():
        locked = _locked(subscription)
        if locked.status not in allowed_from:
            raise IllegalTransition(refusal.format(status=locked.get_status_display().lower()))
        from_status = locked.status
        locked.status = to
        fields = ["status", "updated_at"]
        if to != SubscriptionStatus.ACTIVE and locked.ship_now_requested_at is not None:
            # A paused or cancelled subscription gets no early disc.
            locked.ship_now_requested_at = None
            fields.append("ship_now_requested_at")
        if to == SubscriptionStatus.CANCELLED and locked.final_disc_planned_at is not None:
            # Cancelled before and taken back since (by staff): this
            # cancellation gets its own final disc.
            locked.final_disc_planned_at = None
            fields.append("final_disc_planned_at")
        locked.save(update_fields=fields)
        _record(locked, actor, kind, from_status=from_status, to_status=to)
    return _refresh(subscription, locked)


def pause(subscription: Subscription, actor) -> Subscription:
    """active → paused: no new discs are planned; changes keep waiting."""
    return _move(
        subscription,
        actor,
        SubscriptionStatus.PAUSED,
        {SubscriptionStatus.ACTIVE},
        SubscriptionEventKind.PAUSED,
        "Your subscription is {status}; only an active subscription can be paused.",
    )


def resume(subscription: Subscription, actor) -> Subscription:
    """paused → active: the next disc carries everything that waited."""
    return _move(
        subscription,
        actor,
        SubscriptionStatus.ACTIVE,
        {SubscriptionStatus.PAUSED},
        SubscriptionEventKind.RESUMED,
        "Your subscription is {status}; only a paused subscription can be resumed.",
    )


def cancel(subscription: Subscription, actor) -> Subscription:
    """active or paused → cancelled: one final disc carries what is waiting,
    then nothing more is planned.  Discs already made stay downloadable."""
    return _move(
        subscription,
        actor,
        SubscriptionStatus.CANCELLED,
        {SubscriptionStatus.ACTIVE, SubscriptionStatus.PAUSED},
        SubscriptionEventKind.CANCELLED,
        "Your subscription is already {status}.",
    )


# --- plan, address, emails -------------------------------------------------------------


def change_plan(subscription: Subscription, actor, *, medium: str, cadence: str) -> Subscription:
    """A new medium or cadence; discs already planned keep theirs."""
    if medium not in Medium.values:
        raise IllegalTransition("Choose one of the discs we offer.")
    if cadence not in Cadence.values:
        raise IllegalTransition("Choose how often we send discs.")
    with transaction.atomic():
        locked = _locked(subscription)
        if locked.status == SubscriptionStatus.CANCELLED:
            raise IllegalTransition("Your subscription is cancelled; its plan cannot change.")
        if (locked.medium, locked.cadence) == (medium, cadence):
            return _refresh(subscription, locked)
        smaller = CAPACITY_SECTORS[medium] < CAPACITY_SECTORS[locked.medium]
        splitting_item = splitting.in_progress(locked.user_id) if smaller else None
        if splitting_item is not None:
            # Its parts are cut to the size of this disc type: a smaller one cannot take the rest.
            name = MediaItem.objects.filter(pk=splitting_item).values_list("original_name", flat=True).first()
            raise IllegalTransition(
                f"“{name}” is larger than one disc and is going out in parts on {locked.get_medium_display()} "
                "discs; its remaining parts need discs as large. You can change to a smaller kind of disc "
                "once its last part is on its way."
            )
        note = f"{locked.medium}/{locked.cadence} → {medium}/{cadence}"
        locked.medium, locked.cadence = medium, cadence
        locked.save(update_fields=["medium", "cadence", "updated_at"])
        _record(locked, actor, SubscriptionEventKind.PLAN_CHANGED, note=note)
    return _refresh(subscription, locked)


# Postal code formats of the countries most of our discs go to; elsewhere
# any short code of letters, digits, spaces and dashes.
POSTAL_CODES = {
    "GB": re.compile(r"[A-Z]{1,2}\d[A-Z\d]? ?\d[A-Z]{2}"),
    "US": re.compile(r"\d{5}(-\d{4})?"),
    "CA": re.compile(r"[A-Z]\d[A-Z] ?\d[A-Z]\d"),
    "DE": re.compile(r"\d{5}"),
    "FR": re.compile(r"\d{5}"),
    "NL": re.compile(r"\d{4} ?[A-Z]{2}"),
    "AU": re.compile(r"\d{4}"),
    "IE": re.compile(r"[A-Z\d]{3} ?[A-Z\d]{4}"),
}
_ANY_POSTAL_CODE = re.compile(r"[A-Z\d][A-Z\d -]{1,11}")
# Countries without postal codes (the rest need one).
NO_POSTAL_CODES = {"AE", "AG", "AO", "BS", "BZ", "FJ", "GH", "HK", "JM", "QA", "TT", "UG", "ZW"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LIMITS = {"name": 200, "line1": 200, "line2": 200, "city": 100, "region": 100, "postal_code": 20}


def clean_address(fields: dict[str, str]) -> dict[str, str]:
    """The address with whitespace tidied and codes upper-cased; raises
    :class:`InvalidAddress` naming every field that is wrong."""
    clean = {f: " ".join(str(fields.get(f) or "").split()) for f in Subscription.ADDRESS_FIELDS}
    clean["country"] = clean["country"].upper()
    clean["postal_code"] = clean["postal_code"].upper()
    errors = {}
    for field, label in (("name", "full name"), ("line1", "first address line"), ("city", "town or city")):
        if not clean[field]:
            errors[field] = f"Enter your {label}."
    for field, limit in _LIMITS.items():
        if len(clean[field]) > limit:
            errors[field] = f"Use at most {limit} characters."
        elif _CONTROL.search(str(fields.get(field) or "")):
            errors[field] = "Remove the control characters."
    country, code = clean["country"], clean["postal_code"]
    if country not in COUNTRIES:
        errors["country"] = "Choose a country from the list."
    elif not code and country not in NO_POSTAL_CODES:
        errors["postal_code"] = "Enter your postal code."
    elif code and not (POSTAL_CODES.get(country, _ANY_POSTAL_CODE)).fullmatch(code):
        errors["postal_code"] = f"That is not a postal code in {COUNTRIES[country]}."
    if errors:
        raise InvalidAddress(errors)
    return clean


def update_address(subscription: Subscription, actor, **fields: str) -> Subscription:
    """Validate and store the mailing address.  Copies already claimed or
    shipped keep the address they were made for; a copy that came back
    undeliverable is sent again once this moves ``address_updated_at``."""
    clean = clean_address(fields)
    with transaction.atomic():
        locked = _locked(subscription)
        if locked.address() == clean:
            return _refresh(subscription, locked)
        for field, value in clean.items():
            setattr(locked, f"address_{field}", value)
        locked.address_updated_at = timezone.now()
        locked.save(update_fields=[*(f"address_{f}" for f in clean), "address_updated_at", "updated_at"])
        _record(locked, actor, SubscriptionEventKind.ADDRESS_CHANGED)
    return _refresh(subscription, locked)


def set_email_preferences(subscription: Subscription, actor, *, on_shipped: bool, on_delivered: bool) -> Subscription:
    with transaction.atomic():
        locked = _locked(subscription)
        if (locked.email_on_shipped, locked.email_on_delivered) == (on_shipped, on_delivered):
            return _refresh(subscription, locked)
        locked.email_on_shipped, locked.email_on_delivered = on_shipped, on_delivered
        locked.save(update_fields=["email_on_shipped", "email_on_delivered", "updated_at"])
        _record(
            locked,
            actor,
            SubscriptionEventKind.EMAILS_CHANGED,
            note=f"shipped: {'on' if on_shipped else 'off'}, delivered/returned: {'on' if on_delivered else 'off'}",
        )
    return _refresh(subscription, locked)


# --- the next disc ---------------------------------------------------------------------


@dataclass(frozen=True)
class NextDisc:
    """What is waiting for the subscriber's next disc, and when it will be planned."""

    items: int
    changes: int
    bytes: int
    capacity: int
    medium: str
    status: str
    next_run_at: dt.datetime | None
    ship_now_requested_at: dt.datetime | None

    @property
    def fill(self) -> float:
        """The share of the disc the waiting bytes fill (0–1; more spills onto further discs)."""
        return min(self.bytes / self.capacity, 1.0) if self.capacity else 0.0

    @property
    def discs_needed(self) -> int:
        return max(-(-self.bytes // self.capacity), 1 if self.changes else 0) if self.capacity else 0

    @property
    def when(self) -> str:
        """When the disc will be planned, in plain words."""
        if self.status == SubscriptionStatus.PAUSED:
            return "Not while your subscription is paused. Resume it and the next disc carries everything waiting."
        if self.status == SubscriptionStatus.CANCELLED:
            return "Your subscription is cancelled: one final disc carries what is waiting, then we stop."
        if not self.changes:
            return "As soon as you add photos or videos."
        if self.ship_now_requested_at:
            return "Very soon: you asked us to send what you have now."
        if self.bytes >= self.capacity:
            return "Very soon: you have enough to fill a disc."
        if self.next_run_at:
            return f"On {self.next_run_at:%-d %B %Y}, with everything waiting then, or earlier if a disc fills up."
        return "At the end of your first period, or earlier if a disc fills up."


def next_disc(user) -> NextDisc:
    """The facts of the next disc, in three queries whatever the library's
    size: the subscription, one aggregate over the items with waiting changes
    (kept apart from the count of changes: joining both would multiply sizes)
    and the count of waiting changes."""
    subscription = Subscription.objects.get(user=user)
    pending = Change.objects.filter(owner=user, resolution=Resolution.PENDING)
    # Bytes that will travel: live items whose current version no disc carries yet
    # (an edit or a deletion carries only metadata).
    new_bytes = Q(status=ItemStatus.LIVE, current_version__number__gt=F("planned_version_number"))
    totals = MediaItem.objects.filter(owner=user, pk__in=pending.values("item_id")).aggregate(
        items=Count("pk"),
        bytes=Sum("current_version__size", filter=new_bytes, default=0),
    )
    return NextDisc(
        items=totals["items"],
        changes=pending.count(),
        bytes=totals["bytes"],
        capacity=capacity_bytes(subscription.medium),
        medium=subscription.medium,
        status=subscription.status,
        next_run_at=subscription.next_run_at,
        ship_now_requested_at=subscription.ship_now_requested_at,
    )
