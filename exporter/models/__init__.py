from exporter.models.copies import CopyEvent, CopyReason, CopyStatus, DiscCopy, ReadBackCheck, Shipment
from exporter.models.discs import Disc, DiscEntry, DiscEvent, DiscStatus, EntryKind
from exporter.models.failures import ExportFailure, FailureStage
from exporter.models.feed import Change, ChangeFeed, ChangeKind, ExportCursor, Resolution
from exporter.models.library import Album, ItemIssue, ItemStatus, ItemVersion, MediaItem
from exporter.models.purge import HoldStatus, PurgeHold, PurgeRecord, PurgeStatus
from exporter.models.runs import JobRun, WorkerHeartbeat
from exporter.models.subscription_events import SubscriptionEvent, SubscriptionEventKind
from exporter.models.subscriptions import Cadence, Subscription, SubscriptionStatus

__all__ = [
    "Album",
    "Cadence",
    "Change",
    "CopyEvent",
    "CopyReason",
    "CopyStatus",
    "ChangeFeed",
    "ChangeKind",
    "Disc",
    "DiscCopy",
    "DiscEntry",
    "DiscEvent",
    "DiscStatus",
    "EntryKind",
    "ExportCursor",
    "ExportFailure",
    "FailureStage",
    "HoldStatus",
    "ItemIssue",
    "ItemStatus",
    "ItemVersion",
    "JobRun",
    "MediaItem",
    "PurgeHold",
    "PurgeRecord",
    "PurgeStatus",
    "ReadBackCheck",
    "Resolution",
    "Shipment",
    "Subscription",
    "SubscriptionEvent",
    "SubscriptionEventKind",
    "SubscriptionStatus",
    "WorkerHeartbeat",
]
