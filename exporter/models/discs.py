"""Planned discs, what they carry, and their image lifecycle."""

import uuid

from django.conf import settings
from django.db import models

from exporter.media import Medium
from exporter.models.events import StateEvent


class DiscStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    BUILDING = "building", "Building"
    BUILT = "built", "Built"
    VERIFIED = "verified", "Verified"
    FAILED = "failed", "Failed"


class Disc(models.Model):
    """One planned disc image of a subscriber's series.  Its content is fixed
    when it is planned; building it again gives a byte-identical image."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="discs")
    number = models.PositiveIntegerField()
    medium = models.CharField(max_length=10, choices=Medium.choices)
    status = models.CharField(max_length=10, choices=DiscStatus.choices, default=DiscStatus.PLANNED)
    planned_at = models.DateTimeField()
    capacity_sectors = models.PositiveBigIntegerField()
    # The exact size of the image as laid out at planning time.
    planned_sectors = models.PositiveBigIntegerField()
    first_seq = models.BigIntegerField()
    last_seq = models.BigIntegerField()
    volume_id = models.CharField(max_length=32)
    # The version of the naming and layout rules the disc was planned with,
    # so a rebuild years later lays it out the same way.
    layout_version = models.PositiveSmallIntegerField(default=1)
    # PAR2 redundancy in % (settings.DISCSUB_PAR2_REDUNDANCY at planning; 0: no recovery data).
    recovery_percent = models.PositiveSmallIntegerField(default=0)
    # Parity layers of the sector recovery data appended after the ISO volume
    # (exporter.ecc; settings.DISCSUB_SECTOR_PARITY at planning; 0: none, as
    # on every disc before layout 3).
    sector_parity = models.PositiveSmallIntegerField(default=0)

    image_name = models.CharField(max_length=512, blank=True)
    image_size = models.PositiveBigIntegerField(null=True, blank=True)
    image_sha256 = models.CharField(max_length=64, blank=True)
    # The MD5 that checkisomd5 checks, implanted in the image (exporter.isomd5).
    implanted_md5 = models.CharField(max_length=32, blank=True)
    # [path, size, sha256] of each recovery file the build made, so a later
    # read-back knows what to expect without making them again.
    recovery_files = models.JSONField(default=list, blank=True)
    built_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A failure that retrying cannot fix (staff must act; see exporter.build.retry_failed).
    failure_permanent = models.BooleanField(default=False)
    # The worker building or verifying the disc holds a lease it renews; a
    # lease that runs out means the worker died and another may take over.
    leased_by = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # When a build task was last queued for the disc (so a doubled scheduler
    # run does not queue it twice).
    queued_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["owner", "number"]
        constraints = [models.UniqueConstraint(fields=["owner", "number"], name="unique_disc_number")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status__in=["planned", "failed"]),
                name="discs_to_build",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=models.Q(status__in=["building", "built"]),
                name="discs_under_lease",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner} disc {self.number}"

    @property
    def capacity_bytes(self) -> int:
        return self.capacity_sectors * 2048


class EntryKind(models.TextChoices):
    FILE = "file", "File"
    METADATA = "metadata", "Metadata only"
    DELETION = "deletion", "Deletion"


class DiscEntry(models.Model):
    """One item's part of a disc, frozen at planning time."""

    disc = models.ForeignKey(Disc, on_delete=models.CASCADE, related_name="entries")
    item = models.ForeignKey("exporter.MediaItem", on_delete=models.PROTECT, related_name="disc_entries")
    kind = models.CharField(max_length=10, choices=EntryKind.choices)
    # For FILE entries: the version whose bytes the disc carries.
    version = models.ForeignKey(
        "exporter.ItemVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="disc_entries"
    )
    # The item's planned state before this disc (to undo a hold-back).
    previous_version_number = models.PositiveIntegerField(default=0)
    # The item's metadata as it was at planning (title, caption, dates,
    # albums, original name), so a rebuild years later is identical.
    metadata = models.JSONField(default=dict)
    metadata_revision = models.PositiveIntegerField(default=0)
    change_kinds = models.JSONField(default=list)
    # Canonical disc paths of a FILE entry: the first holds the bytes, the
    # others are hard links (one per further album).
    paths = models.JSONField(default=list)
    size = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    held_back = models.BooleanField(default=False)
    held_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["disc", "id"]
        constraints = [models.UniqueConstraint(fields=["disc", "item"], name="one_entry_per_item_per_disc")]

    def __str__(self) -> str:
        return f"{self.kind} {self.item_id} on {self.disc_id}"


class DiscEvent(StateEvent):
    """Who moved a disc from one state to another, and when."""

    disc = models.ForeignKey(Disc, on_delete=models.CASCADE, related_name="events")

    class Meta:
        ordering = ["disc", "at", "id"]

    def __str__(self) -> str:
        return f"{self.disc}: {self.from_status} → {self.to_status}"
