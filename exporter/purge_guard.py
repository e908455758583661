"""The guard in front of the purge (placeholder: lets every due item go)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from exporter.models import MediaItem, PurgeHold


@dataclass
class Decision:
    held: bool = False
    reason: str = ""
    approved_by: str = ""
    hold: PurgeHold | None = None


def decide(due: list[MediaItem], now: dt.datetime, *, record: bool = True) -> dict[int, Decision]:
    return {item.pk: Decision() for item in due}
