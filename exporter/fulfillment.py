"""The life of a physical copy, one function per move (DESIGN §5).

Every function locks the copy row, re-checks its state, refuses an illegal
move with :class:`IllegalTransition` (a message staff or a subscriber can
act on) and writes a :class:`CopyEvent`.  Calling one twice is harmless: the
second call finds the copy already moved and is refused, changing nothing.
Emails go out after the transaction commits (:mod:`exporter.notifications`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from exporter import carriers, notifications
from exporter.errors import ExportError, IllegalTransition
from exporter.models import (
    CopyEvent,
    CopyReason,
    CopyStatus,
    Disc,
    DiscCopy,
    DiscStatus,
    ReadBackCheck,
    Shipment,
    Subscription,
)

# Where a copy may go from each state.
TRANSITIONS: dict[str, set[str]] = {
    CopyStatus.QUEUED: {CopyStatus.CLAIMED},
    CopyStatus.CLAIMED: {CopyStatus.BURNED, CopyStatus.QUEUED},
    CopyStatus.BURNED: {CopyStatus.CHECKED, CopyStatus.QUEUED},
    CopyStatus.CHECKED: {CopyStatus.LABELLED},
    CopyStatus.LABELLED: {CopyStatus.SHIPPED},
    CopyStatus.SHIPPED: {CopyStatus.DELIVERED, CopyStatus.RETURNED, CopyStatus.LOST, CopyStatus.DAMAGED},
    CopyStatus.DELIVERED: {CopyStatus.LOST, CopyStatus.DAMAGED},
    CopyStatus.RETURNED: {CopyStatus.SHIPPED},
    CopyStatus.LOST: set(),
    CopyStatus.DAMAGED: set(),
}

# States in which a copy is still with staff (the queue's steps and exceptions).
OPEN_STATES = [
    CopyStatus.QUEUED,
    CopyStatus.CLAIMED,
    CopyStatus.BURNED,
    CopyStatus.CHECKED,
    CopyStatus.LABELLED,
    CopyStatus.RETURNED,
]


# Copies whose subscriber can be mailed: Subscription.has_address as a query.
ADDRESSED = Q(
    disc__owner__subscription__address_name__gt="",
    disc__owner__subscription__address_line1__gt="",
    disc__owner__subscription__address_city__gt="",
    disc__owner__subscription__address_country__gt="",
)


class ReplacementLimit(ExportError):
    pass


class MissingAddress(ExportError):
    pass


def _label(status: str) -> str:
    return CopyStatus(status).label.lower()


def _check(copy: DiscCopy, to: str, allowed_from: Iterable[str] | None = None) -> None:
    """Refuse, with a message a person can act on, a move the lifecycle does not allow."""
    allowed = set(allowed_from) if allowed_from is not None else {s for s, nxt in TRANSITIONS.items() if to in nxt}
    if copy.status not in allowed or to not in TRANSITIONS[copy.status]:
        raise IllegalTransition(
            f"Disc {copy.disc.number} of {copy.disc.owner} (copy {copy.pk}) is {_label(copy.status)}; "
            f"it cannot be marked {_label(to)}."
        )


def _move(copy: DiscCopy, to: str, *, actor=None, note: str = "", allowed_from: Iterable[str] | None = None, **fields):
    """Move a copy that the caller has locked; the one place a status is assigned."""
    _check(copy, to, allowed_from)
    now = timezone.now()
    from_status = copy.status
    copy.status = to
    copy.status_changed_at = now
    for name, value in fields.items():
        setattr(copy, name, value)
    copy.save(update_fields=["status", "status_changed_at", *fields])
    CopyEvent.objects.create(copy=copy, actor=actor, from_status=from_status, to_status=to, note=note[:4000])
    return copy


def _locked(copy_id: int) -> DiscCopy:
    return DiscCopy.objects.select_for_update(of=("self",)).select_related("disc", "disc__owner").get(pk=copy_id)


def queue_first_copy(disc: Disc, *, actor=None) -> DiscCopy | None:
    """Queue the first copy of a verified image (once; later calls return None)."""
    if disc.status != DiscStatus.VERIFIED:
        raise IllegalTransition(f"disc {disc.pk} is {disc.status}; only a verified image is burned")
    with transaction.atomic():
        copy, created = DiscCopy.objects.get_or_create(disc=disc, reason=CopyReason.FIRST)
        if not created:
            return None
        CopyEvent.objects.create(copy=copy, actor=actor, to_status=CopyStatus.QUEUED, note="image verified")
    return copy


def claim_copies(copy_ids: Sequence[int], staff, *, drive: str = "") -> list[DiscCopy]:
    """queued → claimed for each copy nobody else holds and whose subscriber
    has an address; returns the copies this call claimed (the rest were
    taken by someone else, or wait for an address)."""
    return _claim(DiscCopy.objects.filter(pk__in=list(copy_ids)), staff, drive=drive)


def claim_next(staff, *, limit: int, medium: str | None = None, drive: str = "") -> list[DiscCopy]:
    """Claim up to ``limit`` of the oldest queued copies whose subscriber has
    an address.  Two staff claiming at once get different copies (the rows
    one of them holds are skipped, not waited for)."""
    waiting = DiscCopy.objects.filter(ADDRESSED)
    if medium:
        waiting = waiting.filter(disc__medium=medium)
    return _claim(waiting, staff, drive=drive, limit=max(limit, 0))


def _claim(candidates, staff, *, drive: str, limit: int | None = None) -> list[DiscCopy]:
    claimed = []
    with transaction.atomic():
        rows = (
            candidates.select_for_update(skip_locked=True, of=("self",))
            .select_related("disc", "disc__owner")
            .filter(status=CopyStatus.QUEUED)
            .order_by("status_changed_at", "pk")
        )
        # Lock only the rows this call takes, so a second claimer gets the next ones.
        rows = list(rows[:limit] if limit is not None else rows)
        addresses = {s.user_id: s for s in Subscription.objects.filter(user_id__in={c.disc.owner_id for c in rows})}
        now = timezone.now()
        for copy in rows:
            subscription = addresses.get(copy.disc.owner_id)
            if subscription is None or not subscription.has_address:
                continue
            claimed.append(
                _move(
                    copy,
                    CopyStatus.CLAIMED,
                    actor=staff,
                    note=f"drive {drive}" if drive else "",
                    claimed_by=staff,
                    claimed_at=now,
                    address=subscription.address(),
                    drive=drive[:64],
                )
            )
    return claimed


def _locked_for_holder(copy_id: int, staff) -> DiscCopy:
    """The locked copy; a claimed one only for the staff member who claimed it."""
    copy = _locked(copy_id)
    held_by_other = copy.claimed_by_id is not None and staff is not None and copy.claimed_by_id != staff.pk
    if copy.status == CopyStatus.CLAIMED and held_by_other:
        raise IllegalTransition(f"Disc {copy.disc.number} of {copy.disc.owner} is claimed by {copy.claimed_by}.")
    return copy


def release(copy_id: int, staff, *, note: str = "") -> DiscCopy:
    """claimed → queued: hand a claimed copy back unburned."""
    with transaction.atomic():
        copy = _locked_for_holder(copy_id, staff)
        return _move(
            copy,
            CopyStatus.QUEUED,
            actor=staff,
            note=note or "released",
            allowed_from=[CopyStatus.CLAIMED],
            claimed_by=None,
            claimed_at=None,
        )


def mark_burned(copy_id: int, staff, *, drive: str, media_batch: str) -> DiscCopy:
    """claimed → burned, on a drive with a batch of blank media."""
    drive, media_batch = drive.strip()[:64], media_batch.strip()[:64]
    if not drive or not media_batch:
        raise IllegalTransition("Say which drive and which batch of blank discs were used.")
    with transaction.atomic():
        copy = _locked_for_holder(copy_id, staff)
        return _move(
            copy,
            CopyStatus.BURNED,
            actor=staff,
            note=f"drive {drive}, media batch {media_batch}",
            allowed_from=[CopyStatus.CLAIMED],
            drive=drive,
            media_batch=media_batch,
            burn_attempts=copy.burn_attempts + 1,
        )


def burn_failed(copy_id: int, staff, *, note: str = "") -> DiscCopy:
    """claimed → queued: the burn failed; the copy waits to be burned again."""
    with transaction.atomic():
        copy = _locked_for_holder(copy_id, staff)
        return _move(
            copy,
            CopyStatus.QUEUED,
            actor=staff,
            note=f"burn failed: {note}".strip(": "),
            allowed_from=[CopyStatus.CLAIMED],
            burn_attempts=copy.burn_attempts + 1,
            claimed_by=None,
            claimed_at=None,
        )


_PASS = re.compile(r"result is:?\s*PASS", re.I)
_FAIL = re.compile(r"result is:?\s*FAIL", re.I)
_MD5 = re.compile(r"ISO MD5SUM\s*=\s*([0-9a-f]{32})", re.I)
_SHA256 = re.compile(r"\b([0-9a-f]{64})\b", re.I)


def read_back_verdict(disc: Disc, method: str, value: str) -> tuple[bool, str]:
    """(ok, why) for what a staff member recorded from the read-back tool.

    For ``checkisomd5``: its output (or just PASS / FAIL); an MD5 it printed
    must be this image's.  For ``sha256``: the digest of the whole disc read
    back, which must equal the image's."""
    value = (value or "").strip()
    if method == ReadBackCheck.Method.SHA256:
        found = _SHA256.search(value)
        if not found:
            raise IllegalTransition("Paste the 64-character sha256 the read-back printed.")
        digest = found.group(1).lower()
        if digest == disc.image_sha256:
            return True, "sha256 matches the image"
        return False, f"sha256 {digest} is not the image's ({disc.image_sha256})"
    if method == ReadBackCheck.Method.CHECKISOMD5:
        md5 = _MD5.search(value)
        if md5 and disc.implanted_md5 and md5.group(1).lower() != disc.implanted_md5:
            return (
                False,
                f"the disc's MD5 {md5.group(1).lower()} is not this image's ({disc.implanted_md5}): wrong disc?",
            )
        if _FAIL.search(value) or value.upper() == "FAIL":
            return False, "checkisomd5 reported FAIL"
        if _PASS.search(value) or value.upper() == "PASS":
            return True, "checkisomd5 reported PASS"
        raise IllegalTransition("Paste checkisomd5's output, or enter PASS or FAIL.")
    raise IllegalTransition(f"Unknown read-back method {method!r}.")


def record_read_back(copy_id: int, staff, *, drive: str, media_batch: str, method: str, value: str) -> ReadBackCheck:
    """burned → checked when the read-back matches the image; burned → queued
    (to burn again) when it does not.  Either way the check is recorded
    against the drive and the media batch."""
    drive, media_batch = drive.strip()[:64], media_batch.strip()[:64]
    if not drive or not media_batch:
        raise IllegalTransition("Say which drive read the disc back and which media batch it came from.")
    with transaction.atomic():
        copy = _locked(copy_id)
        _check(copy, CopyStatus.CHECKED)
        ok, why = read_back_verdict(copy.disc, method, value)
        check = ReadBackCheck.objects.create(
            copy=copy,
            actor=staff,
            drive=drive,
            media_batch=media_batch,
            method=method,
            value=value.strip()[:200],
            ok=ok,
        )
        if ok:
            _move(copy, CopyStatus.CHECKED, actor=staff, note=f"read back OK on {drive}: {why}")
        else:
            _move(
                copy,
                CopyStatus.QUEUED,
                actor=staff,
                note=f"read-back failed on {drive}, media batch {media_batch}: {why}",
                claimed_by=None,
                claimed_at=None,
            )
    return check


def mark_labelled(copy_id: int, staff) -> DiscCopy:
    """checked → labelled: the disc label, mailing label and slip are printed and on."""
    with transaction.atomic():
        return _move(_locked(copy_id), CopyStatus.LABELLED, actor=staff, note="labels printed")


def address_fixed_since_return(copy: DiscCopy, subscription: Subscription | None) -> bool:
    """Whether a returned copy may go out again: the subscriber changed the
    address after the envelope came back."""
    return bool(
        subscription is not None
        and subscription.has_address
        and subscription.address_updated_at
        and subscription.address_updated_at > copy.status_changed_at
    )


def ship(copy_ids: Sequence[int], staff, *, carrier: str, tracking_number: str) -> Shipment:
    """labelled → shipped (or returned → shipped once the address is fixed)
    for every copy in one envelope.  All the copies belong to one subscriber;
    the envelope keeps the address it went to."""
    number = carriers.normalize_tracking(carrier, tracking_number)
    if not copy_ids:
        raise IllegalTransition("Choose the discs that go in the envelope.")
    with transaction.atomic():
        copies = list(
            DiscCopy.objects.select_for_update(of=("self",))
            .select_related("disc", "disc__owner")
            .filter(pk__in=list(copy_ids))
            .order_by("pk")
        )
        if len(copies) != len(set(copy_ids)):
            raise IllegalTransition("Some of those copies do not exist.")
        owners = {c.disc.owner_id for c in copies}
        if len(owners) != 1:
            raise IllegalTransition("One envelope holds the discs of one subscriber only.")
        subscription = Subscription.objects.select_for_update().get(user_id=owners.pop())
        now = timezone.now()
        for copy in copies:
            if copy.status == CopyStatus.RETURNED:
                if not address_fixed_since_return(copy, subscription):
                    raise IllegalTransition(
                        f"Disc {copy.disc.number} of {copy.disc.owner} came back undeliverable; "
                        "it waits until the subscriber fixes the address."
                    )
                copy.address = subscription.address()
        addresses = {tuple(sorted(c.address.items())) for c in copies}
        if len(addresses) != 1:
            raise IllegalTransition("These copies were claimed for different addresses; ship them separately.")
        shipment = Shipment.objects.create(
            owner=copies[0].disc.owner,
            address=copies[0].address,
            carrier=carrier,
            tracking_number=number,
            shipped_at=now,
            shipped_by=staff,
        )
        for copy in copies:
            note = f"{carriers.carrier_name(carrier)} {number}"
            if copy.status == CopyStatus.RETURNED:
                note = "re-shipped to the corrected address: " + note
            _move(
                copy,
                CopyStatus.SHIPPED,
                actor=staff,
                note=note,
                allowed_from=[CopyStatus.LABELLED, CopyStatus.RETURNED],
                shipment=shipment,
                shipped_at=now,
                address=copy.address,
            )
        notifications.after_commit(notifications.shipped, shipment.pk)
    return shipment


def mark_delivered(copy_id: int, actor, *, note: str = "") -> DiscCopy:
    with transaction.atomic():
        copy = _move(_locked(copy_id), CopyStatus.DELIVERED, actor=actor, note=note, delivered_at=timezone.now())
        notifications.after_commit(notifications.delivered, copy.pk)
    return copy


def mark_returned(copy_id: int, actor, *, note: str = "") -> DiscCopy:
    """shipped → returned: the envelope came back; the copy waits for an address fix."""
    with transaction.atomic():
        copy = _move(_locked(copy_id), CopyStatus.RETURNED, actor=actor, note=note or "returned undeliverable")
        notifications.after_commit(notifications.returned, copy.pk)
    return copy


def replacements_left(owner, *, now: dt.datetime | None = None) -> int:
    """How many more replacements the subscriber may ask for in the current period."""
    now = now or timezone.now()
    since = now - dt.timedelta(days=settings.DISCSUB_REPLACEMENT_PERIOD_DAYS)
    used = DiscCopy.objects.filter(disc__owner=owner, reason=CopyReason.REPLACEMENT, created_at__gte=since).count()
    return max(settings.DISCSUB_REPLACEMENTS_PER_PERIOD - used, 0)


def report_problem(copy_id: int, actor, *, problem: str, note: str = "") -> DiscCopy:
    """shipped/delivered → lost or damaged, and a new copy of the same image
    is queued.  Returns the replacement.  Limited per subscriber per period."""
    if problem not in (CopyStatus.LOST, CopyStatus.DAMAGED):
        raise IllegalTransition("Say whether the disc was lost or damaged.")
    with transaction.atomic():
        copy = _locked(copy_id)
        owner = copy.disc.owner
        Subscription.objects.select_for_update().filter(user=owner).first()  # one report at a time per subscriber
        _check(copy, problem)
        if replacements_left(owner) <= 0:
            raise ReplacementLimit(
                f"You have had {settings.DISCSUB_REPLACEMENTS_PER_PERIOD} replacements in the last "
                f"{settings.DISCSUB_REPLACEMENT_PERIOD_DAYS} days; please contact us for more."
            )
        label = "lost" if problem == CopyStatus.LOST else "damaged"
        _move(copy, problem, actor=actor, note=f"reported {label}" + (f": {note}" if note else ""))
        replacement = DiscCopy.objects.create(disc=copy.disc, reason=CopyReason.REPLACEMENT, replaces=copy)
        CopyEvent.objects.create(
            copy=replacement, actor=actor, to_status=CopyStatus.QUEUED, note=f"replaces copy {copy.pk} ({label})"
        )
    return replacement


def history(copy: DiscCopy) -> list[str]:
    """The copy's states in order, rebuilt from its events alone."""
    states = []
    for event in copy.events.order_by("at", "id"):
        if states and event.from_status != states[-1]:
            raise IllegalTransition(f"copy {copy.pk}: event {event.pk} starts at {event.from_status}, not {states[-1]}")
        states.append(event.to_status)
    return states
