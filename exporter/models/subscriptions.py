from django.conf import settings
from django.db import models

from exporter.media import Medium


class Cadence(models.TextChoices):
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"
    QUARTERLY = "quarterly", "Quarterly"


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    CANCELLED = "cancelled", "Cancelled"


class Subscription(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="subscription")
    medium = models.CharField(max_length=10, choices=Medium.choices, default=Medium.DVD)
    cadence = models.CharField(max_length=10, choices=Cadence.choices, default=Cadence.MONTHLY)
    status = models.CharField(max_length=10, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE)
    next_run_at = models.DateTimeField(null=True, blank=True)
    # "Ship what I have now": the scheduler plans a partial disc on its next pass.
    ship_now_requested_at = models.DateTimeField(null=True, blank=True)
    # When the scheduler planned a cancelled subscription's final disc; after
    # that nothing more is planned for it.
    final_disc_planned_at = models.DateTimeField(null=True, blank=True)

    # Where discs are mailed.  Copies take a snapshot when they are claimed,
    # so an edit never changes a copy already on its way.
    address_name = models.CharField("full name", max_length=200, blank=True)
    address_line1 = models.CharField("address line 1", max_length=200, blank=True)
    address_line2 = models.CharField("address line 2", max_length=200, blank=True)
    address_city = models.CharField("city", max_length=100, blank=True)
    address_region = models.CharField("state or region", max_length=100, blank=True)
    address_postal_code = models.CharField("postal code", max_length=20, blank=True)
    address_country = models.CharField("country", max_length=2, blank=True, help_text="ISO 3166 code, e.g. GB")
    address_updated_at = models.DateTimeField(null=True, blank=True)

    # This subscriber's storage quota in GB, when it is not DISCSUB_QUOTA_GB
    # (0 for no limit); see exporter.quotas.
    quota_gb = models.PositiveIntegerField("storage quota (GB)", null=True, blank=True)

    email_on_shipped = models.BooleanField("email me when a disc ships", default=True)
    email_on_delivered = models.BooleanField("email me when a disc is delivered or returned", default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_run_at"],
                condition=models.Q(status="active"),
                name="due_active_subscriptions",
            ),
            # The scheduler's other two reasons to look at a subscription
            # (exporter.scheduling.due_subscriptions), each a small partial index.
            models.Index(
                fields=["ship_now_requested_at"],
                condition=models.Q(ship_now_requested_at__isnull=False),
                name="ship_now_requested",
            ),
            models.Index(
                fields=["id"],
                condition=models.Q(status="cancelled", final_disc_planned_at__isnull=True),
                name="final_disc_due",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_medium_display()}, {self.get_status_display()})"

    ADDRESS_FIELDS = ("name", "line1", "line2", "city", "region", "postal_code", "country")

    def address(self) -> dict[str, str]:
        """The mailing address as a plain dict (what copies snapshot)."""
        return {f: getattr(self, f"address_{f}") for f in self.ADDRESS_FIELDS}

    @property
    def has_address(self) -> bool:
        return bool(self.address_name and self.address_line1 and self.address_city and self.address_country)
