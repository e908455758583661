"""Unexpected errors the export met, for staff (exporter.failures)."""

from django.conf import settings
from django.db import models


class FailureStage(models.TextChoices):
    READING = "reading", "Reading an item for a disc"
    PLANNING = "planning", "Planning a subscriber's discs"


class ExportFailure(models.Model):
    """An unexpected error met by a scheduler pass: against one item version
    (``version`` set: its bytes could not be read) or against a subscriber's
    whole pass (``version`` null: it was rolled back).  One open row per
    version, and one per subscriber for their passes, counts the failures in
    a row; it is closed (``resolved_at``) when a later attempt succeeds or the
    item is trashed, deleted or replaced.  ``message`` is written for people
    and never holds a storage path."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_failures")
    item = models.ForeignKey("exporter.MediaItem", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    version = models.ForeignKey(
        "exporter.ItemVersion", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    stage = models.CharField(max_length=20, choices=FailureStage.choices)
    # The exception's type, e.g. ``struct.error`` or ``IsADirectoryError``.
    error = models.CharField(max_length=200)
    message = models.TextField()
    failures = models.PositiveIntegerField(default=1)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    # A subscriber's pass is not tried again before this (backoff).
    retry_at = models.DateTimeField(null=True, blank=True)
    # The item failed DISCSUB_ITEM_MAX_FAILURES times in a row: an ItemIssue
    # holds it back until it is replaced, trashed or staff resolve the issue.
    held_back_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-last_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["version"],
                condition=models.Q(resolved_at__isnull=True, version__isnull=False),
                name="one_open_failure_per_version",
            ),
            models.UniqueConstraint(
                fields=["owner"],
                condition=models.Q(resolved_at__isnull=True, version__isnull=True),
                name="one_open_failure_per_subscriber_pass",
            ),
        ]
        indexes = [
            models.Index(fields=["owner"], condition=models.Q(resolved_at__isnull=True), name="open_export_failures"),
        ]

    def __str__(self) -> str:
        return f"{self.get_stage_display()}: {self.error} ({self.failures}×)"
