"""The purge's records: what it erased (or is erasing), and what it holds back.

A :class:`PurgeRecord` outlives the bytes it describes: the item, each
object's storage name, size and sha256, when, by which rule, and who
approved.  A :class:`PurgeHold` is a group of due items the guard
(exporter.purge_guard) stopped, waiting for a named staff member.
"""

from django.conf import settings
from django.db import models


class PurgeStatus(models.TextChoices):
    ERASING = "erasing", "Erasing"
    ERASED = "erased", "Erased"
    FAILED = "failed", "Failed (tried again by the next pass)"


class PurgeRecord(models.Model):
    # Both kept when the item or the account is gone: the record is the proof.
    item = models.ForeignKey(
        "exporter.MediaItem", null=True, blank=True, on_delete=models.SET_NULL, related_name="purge_records"
    )
    item_public_id = models.UUIDField()
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=PurgeStatus.choices, default=PurgeStatus.ERASING)
    # Why it may go: "deleted 2026-06-01 12:00 UTC, held 30 days".
    rule = models.CharField(max_length=300)
    # The staff member who approved a held group's erasure (empty: within the limits).
    approved_by = models.CharField(max_length=150, blank=True)
    hold = models.ForeignKey("PurgeHold", null=True, blank=True, on_delete=models.SET_NULL, related_name="records")
    # One dict per object: kind (original, thumbnail), storage, name, size,
    # sha256 (both None for a name that held no current object: a bucket
    # that keeps versions may still hold older ones), erased (bool),
    # versions (how many stored versions went).
    stored = models.JSONField(default=list)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=1)
    # What failed, when the last attempt did.
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item"], condition=~models.Q(status="erased"), name="one_open_purge_record_per_item"
            ),
        ]
        indexes = [models.Index(fields=["status"], condition=~models.Q(status="erased"), name="open_purge_records")]

    def __str__(self) -> str:
        return f"purge of {self.item_public_id}: {self.status}"

    @property
    def size(self) -> int:
        return sum(obj["size"] or 0 for obj in self.stored)


class HoldStatus(models.TextChoices):
    HELD = "held", "Waiting for staff"
    APPROVED = "approved", "Approved"
    CANCELLED = "cancelled", "Cancelled (the items came back)"


class PurgeHold(models.Model):
    """A group of due items over a limit: nothing in it is erased until a
    staff member approves (their name goes on the purge records) or cancels
    (the items come back to the library)."""

    # "user:<id>" for one subscriber's items, "service" for everyone's.
    scope = models.CharField(max_length=40)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status = models.CharField(max_length=10, choices=HoldStatus.choices, default=HoldStatus.HELD)
    reason = models.TextField()
    items = models.ManyToManyField("exporter.MediaItem", related_name="purge_holds")
    # The group as the guard saw it when it held it.
    items_due = models.PositiveIntegerField(default=0)
    bytes_due = models.PositiveBigIntegerField(default=0)
    library_items = models.PositiveIntegerField(default=0)
    library_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["scope"], condition=models.Q(status="held"), name="one_open_hold_per_scope")
        ]

    def __str__(self) -> str:
        return f"hold #{self.pk} ({self.scope}): {self.status}"
