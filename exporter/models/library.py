"""A subscriber's library: albums, media items and their versions."""

import uuid

from django.conf import settings
from django.db import models


class Album(models.Model):
    """An album; albums nest (an album may sit inside another)."""

    # What the portal's URLs name an album by (never the sequential pk).
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="albums")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children")
    name = models.CharField(max_length=1024)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner", "parent"])]

    def __str__(self) -> str:
        return self.name

    def path(self) -> list[str]:
        """Names from the top-level album down to this one."""
        names = []
        album: Album | None = self
        seen = set()
        while album is not None and album.pk not in seen:
            seen.add(album.pk)
            names.append(album.name)
            album = album.parent
        return list(reversed(names))


class ItemStatus(models.TextChoices):
    """Where an item is in its life (docs/deletion.md): live, in the trash,
    or deleted (recently deleted until the purge erases its bytes, which
    sets ``MediaItem.erased_at``)."""

    LIVE = "live", "In the library"
    TRASHED = "trashed", "In the trash"
    DELETED = "deleted", "Deleted"


class MediaItem(models.Model):
    """A photo or video.  Its bytes live in :class:`ItemVersion` rows."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="media_items")
    # Exactly as uploaded: hostile names are handled where the disc is laid out.
    original_name = models.CharField(max_length=4096)
    title = models.CharField(max_length=1024, blank=True)
    caption = models.TextField(blank=True)
    captured_at = models.DateTimeField(null=True, blank=True)
    # The UTC offset of the capture time, in minutes, when the camera said.
    captured_offset_minutes = models.SmallIntegerField(null=True, blank=True)
    uploaded_at = models.DateTimeField(auto_now_add=True)
    albums = models.ManyToManyField(Album, blank=True, related_name="items")
    status = models.CharField(max_length=10, choices=ItemStatus.choices, default=ItemStatus.LIVE)
    current_version = models.ForeignKey(
        "ItemVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Bumped by every metadata edit (caption, title, date, albums).
    metadata_revision = models.PositiveIntegerField(default=1)
    # What the discs planned so far carry of this item; the planner compares
    # these with the current state to decide what the next disc must carry.
    planned_version_number = models.PositiveIntegerField(default=0)
    planned_metadata_revision = models.PositiveIntegerField(default=0)
    deletion_planned = models.BooleanField(default=False)
    # The deletion lifecycle (exporter.deletion): set on entering the trash
    # and Recently deleted, cleared on leaving them; ``erased_at`` when the
    # purge (exporter.purge) has erased every stored byte of the item.
    trashed_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["owner", "status"]),
            # The hourly upload limit (exporter.quotas.check_rate).
            models.Index(fields=["owner", "uploaded_at"], name="items_uploaded_by_owner"),
            # What empties from the trash, and what the purge may erase (by state, then date).
            models.Index(fields=["trashed_at"], condition=models.Q(status="trashed"), name="items_in_trash"),
            models.Index(
                fields=["deleted_at"],
                condition=models.Q(status="deleted", erased_at__isnull=True),
                name="items_recently_deleted",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status="trashed", trashed_at__isnull=False)
                | (~models.Q(status="trashed") & models.Q(trashed_at__isnull=True)),
                name="trashed_at_iff_trashed",
            ),
            models.CheckConstraint(
                condition=models.Q(status="deleted", deleted_at__isnull=False)
                | (~models.Q(status="deleted") & models.Q(deleted_at__isnull=True, erased_at__isnull=True)),
                name="deleted_at_iff_deleted",
            ),
        ]

    def __str__(self) -> str:
        return self.original_name


class ItemVersion(models.Model):
    """One immutable set of bytes of an item.  A new upload is a new version."""

    item = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    storage_name = models.CharField(max_length=512)
    original_name = models.CharField(max_length=4096)
    content_type = models.CharField(max_length=255, blank=True)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "number"], name="unique_item_version_number")]
        ordering = ["item", "number"]

    def __str__(self) -> str:
        return f"{self.original_name} v{self.number}"


class ItemIssue(models.Model):
    """Something about an item that staff must look at; the item is held back."""

    class Kind(models.TextChoices):
        CHECKSUM_MISMATCH = "checksum_mismatch", "Stored bytes do not match their checksum"
        MISSING_OBJECT = "missing_object", "Stored bytes are missing"
        TOO_LARGE = "too_large", "Larger than the medium"
        UNREADABLE = "unreadable", "Could not be read for a disc"

    item = models.ForeignKey(MediaItem, on_delete=models.CASCADE, related_name="issues")
    version = models.ForeignKey(ItemVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="issues")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["item"], condition=models.Q(resolved_at__isnull=True), name="open_item_issues"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.item}"
