"""What happened to a subscription, who did it and when (DESIGN §2.7)."""

from django.db import models

from exporter.models.events import StateEvent


class SubscriptionEventKind(models.TextChoices):
    SHIP_NOW = "ship_now", "Asked to ship what is waiting now"
    PAUSED = "paused", "Paused"
    RESUMED = "resumed", "Resumed"
    CANCELLED = "cancelled", "Cancelled"
    PLAN_CHANGED = "plan_changed", "Plan changed"
    ADDRESS_CHANGED = "address_changed", "Mailing address changed"
    EMAILS_CHANGED = "emails_changed", "Email preferences changed"


class SubscriptionEvent(StateEvent):
    subscription = models.ForeignKey("exporter.Subscription", on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=SubscriptionEventKind.choices)
    # Settings changes (plan, address, emails) move no status.
    to_status = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["subscription", "at", "id"]
        indexes = [models.Index(fields=["subscription", "kind", "at"])]

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.kind} at {self.at:%Y-%m-%d %H:%M}"
