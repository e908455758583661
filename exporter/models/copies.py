"""Physical copies of a disc image, and how they travel to the subscriber.

An image is made once (``Disc``); a copy is one burn of it and one trip in
the mail.  The lifecycle (DESIGN §5, and the staff issue's "to label" step):

    queued → claimed → burned → checked (read back OK) → labelled → shipped → delivered

with the side paths: a failed burn or read-back goes back to queued; a copy
returned undeliverable waits for an address fix and is shipped again; a copy
reported lost or damaged ends there and a new copy of the same image is
queued.  Every move is a function in :mod:`exporter.fulfillment`.
"""

import uuid

from django.conf import settings
from django.db import models

from exporter.models.events import StateEvent


class CopyStatus(models.TextChoices):
    QUEUED = "queued", "To burn"
    CLAIMED = "claimed", "Claimed"
    BURNED = "burned", "To read back"
    CHECKED = "checked", "To label"
    LABELLED = "labelled", "To ship"
    SHIPPED = "shipped", "Shipped"
    DELIVERED = "delivered", "Delivered"
    RETURNED = "returned", "Returned undeliverable"
    LOST = "lost", "Reported lost"
    DAMAGED = "damaged", "Reported damaged"


class CopyReason(models.TextChoices):
    FIRST = "first", "First copy"
    REPLACEMENT = "replacement", "Replacement"


class Shipment(models.Model):
    """One envelope: the copies of one subscriber mailed together."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="shipments")
    # The address the envelope went to (a snapshot: later edits don't change it).
    address = models.JSONField(default=dict)
    carrier = models.CharField(max_length=20)
    tracking_number = models.CharField(max_length=64, blank=True)
    shipped_at = models.DateTimeField()
    shipped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-shipped_at", "-id"]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number} to {self.owner}"


class DiscCopy(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    disc = models.ForeignKey("exporter.Disc", on_delete=models.PROTECT, related_name="copies")
    reason = models.CharField(max_length=12, choices=CopyReason.choices, default=CopyReason.FIRST)
    # The copy a replacement stands in for.
    replaces = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="replacements")
    status = models.CharField(max_length=10, choices=CopyStatus.choices, default=CopyStatus.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the copy entered its current state (the queue sorts by it).
    status_changed_at = models.DateTimeField(auto_now_add=True)

    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="claimed_copies"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    # The mailing address, snapshot when the copy was claimed (or re-shipped).
    address = models.JSONField(default=dict, blank=True)
    drive = models.CharField(max_length=64, blank=True)
    media_batch = models.CharField(max_length=64, blank=True)
    burn_attempts = models.PositiveIntegerField(default=0)
    shipment = models.ForeignKey(Shipment, null=True, blank=True, on_delete=models.PROTECT, related_name="copies")
    shipped_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["status_changed_at", "id"]
        verbose_name_plural = "disc copies"
        constraints = [
            models.UniqueConstraint(
                fields=["disc"], condition=models.Q(reason="first"), name="one_first_copy_per_disc"
            ),
        ]
        indexes = [
            models.Index(
                fields=["status", "status_changed_at"],
                condition=~models.Q(status__in=["delivered", "lost", "damaged"]),
                name="copies_in_the_queue",
            )
        ]

    def __str__(self) -> str:
        return f"copy {self.pk} of {self.disc}"


class CopyEvent(StateEvent):
    """Who moved a copy from one state to another, when, and why."""

    copy = models.ForeignKey(DiscCopy, on_delete=models.CASCADE, related_name="events")

    class Meta:
        ordering = ["copy", "at", "id"]

    def __str__(self) -> str:
        return f"{self.copy}: {self.from_status or '∅'} → {self.to_status}"


class ReadBackCheck(models.Model):
    """The result of reading a burned copy back, with the drive and media batch."""

    class Method(models.TextChoices):
        CHECKISOMD5 = "checkisomd5", "checkisomd5"
        SHA256 = "sha256", "sha256 of the read-back"

    copy = models.ForeignKey(DiscCopy, on_delete=models.CASCADE, related_name="read_backs")
    at = models.DateTimeField(auto_now_add=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    drive = models.CharField(max_length=64)
    media_batch = models.CharField(max_length=64)
    method = models.CharField(max_length=12, choices=Method.choices)
    # What the staff member recorded: checkisomd5's verdict or the sha256.
    value = models.CharField(max_length=200)
    ok = models.BooleanField()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["drive"]), models.Index(fields=["media_batch"])]

    def __str__(self) -> str:
        return f"read-back of {self.copy}: {'ok' if self.ok else 'failed'}"
