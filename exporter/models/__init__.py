from exporter.models.discs import Disc, DiscEntry, DiscEvent, DiscStatus, EntryKind
from exporter.models.feed import Change, ChangeFeed, ChangeKind, ExportCursor, Resolution
from exporter.models.library import Album, ItemIssue, ItemStatus, ItemVersion, MediaItem
from exporter.models.subscriptions import Cadence, Subscription, SubscriptionStatus

__all__ = [
    "Album",
    "Cadence",
    "Change",
    "ChangeFeed",
    "ChangeKind",
    "Disc",
    "DiscEntry",
    "DiscEvent",
    "DiscStatus",
    "EntryKind",
    "ExportCursor",
    "ItemIssue",
    "ItemStatus",
    "ItemVersion",
    "MediaItem",
    "Resolution",
    "Subscription",
    "SubscriptionStatus",
]
