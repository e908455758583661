"""Emails to subscribers about their copies: shipped, delivered, returned.

One home for them, used by staff actions and anything else that moves a
copy.  They are sent after the transaction that moved the copy commits, and
a mail server that is down never undoes the move: the failure is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from exporter import carriers
from exporter.models import DiscCopy, Shipment, Subscription

log = logging.getLogger(__name__)


def after_commit(send: Callable[[int], bool], pk: int) -> None:
    transaction.on_commit(lambda: send(pk))


def _send(user, template: str, subject: str, context: dict) -> bool:
    if not user.email:
        return False
    context = {**context, "user": user, "site_url": settings.DISCSUB_SITE_URL.rstrip("/")}
    body = render_to_string(f"email/{template}.txt", context)
    try:
        send_mail(subject, body, None, [user.email])
    except Exception:
        log.exception("could not email %s about %s", user.pk, template)
        return False
    return True


def _wants(user_id: int, field: str) -> bool:
    return Subscription.objects.filter(user_id=user_id, **{field: True}).exists()


def shipped(shipment_id: int) -> bool:
    shipment = Shipment.objects.select_related("owner").get(pk=shipment_id)
    if not _wants(shipment.owner_id, "email_on_shipped"):
        return False
    copies = list(shipment.copies.select_related("disc").order_by("disc__number"))
    numbers = ", ".join(str(c.disc.number) for c in copies)
    return _send(
        shipment.owner,
        "shipped",
        f"Your disc{'s' if len(copies) > 1 else ''} {numbers} {'are' if len(copies) > 1 else 'is'} on the way",
        {
            "shipment": shipment,
            "copies": copies,
            "carrier": carriers.carrier_name(shipment.carrier),
            "tracking_url": carriers.tracking_url(shipment.carrier, shipment.tracking_number),
        },
    )


def _copy_email(copy_id: int, template: str, subject: str) -> bool:
    copy = DiscCopy.objects.select_related("disc", "disc__owner", "shipment").get(pk=copy_id)
    if not _wants(copy.disc.owner_id, "email_on_delivered"):
        return False
    return _send(copy.disc.owner, template, subject.format(number=copy.disc.number), {"copy": copy, "disc": copy.disc})


def delivered(copy_id: int) -> bool:
    return _copy_email(copy_id, "delivered", "Disc {number} has arrived")


def returned(copy_id: int) -> bool:
    return _copy_email(copy_id, "returned", "Disc {number} came back to us: please check your address")
