"""The change feed and the export cursor.

Every change a disc must carry is a :class:`Change` with a per-subscriber,
strictly increasing ``seq``.  ``seq`` comes from the subscriber's
:class:`ChangeFeed` row, which the recording transaction locks until it
commits, so a subscriber's changes commit in ``seq`` order.

A change is resolved exactly once, by the planner, under the lock of the
subscriber's :class:`ExportCursor`: either it is carried by a disc
(``disc`` set) or it is absorbed (its net effect is nothing to ship, e.g. an
item added then trashed before any disc was planned).
"""

from django.conf import settings
from django.db import models


class ChangeKind(models.TextChoices):
    ADDED = "added", "Added"
    NEW_VERSION = "new_version", "New version"
    EDITED = "edited", "Metadata edited"
    MOVED = "moved", "Moved between albums"
    TRASHED = "trashed", "Moved to the trash"
    RESTORED = "restored", "Restored"
    DELETED = "deleted", "Deleted"


class Resolution(models.TextChoices):
    PENDING = "pending", "Waiting for a disc"
    CARRIED = "carried", "On a disc"
    ABSORBED = "absorbed", "Nothing to ship"


class ChangeFeed(models.Model):
    """The head of a subscriber's change feed: the last ``seq`` handed out."""

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="change_feed")
    last_seq = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"feed of {self.owner_id} at {self.last_seq}"


class Change(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="changes")
    seq = models.BigIntegerField()
    item = models.ForeignKey("exporter.MediaItem", on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=16, choices=ChangeKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    resolution = models.CharField(max_length=10, choices=Resolution.choices, default=Resolution.PENDING)
    disc = models.ForeignKey("exporter.Disc", null=True, blank=True, on_delete=models.PROTECT, related_name="changes")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["owner", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "seq"], name="unique_change_seq"),
            models.CheckConstraint(
                condition=~models.Q(resolution="carried") | models.Q(disc__isnull=False),
                name="carried_change_has_disc",
            ),
        ]
        indexes = [
            models.Index(
                fields=["owner", "seq"],
                condition=models.Q(resolution="pending"),
                name="pending_changes",
            ),
            models.Index(fields=["item", "resolution"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind} item {self.item_id}"


class ExportCursor(models.Model):
    """Where a subscriber's discs have got to.

    ``position``: every change with ``seq <= position`` is resolved.
    ``discs_planned``: the number of the last planned disc (numbers are gapless).
    The planner locks this row; two planners for one subscriber take turns.
    """

    owner = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_cursor")
    position = models.BigIntegerField(default=0)
    discs_planned = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"cursor of {self.owner_id} at {self.position}"
