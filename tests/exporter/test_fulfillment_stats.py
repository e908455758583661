"""The copy figures of the staff dashboard: per state, per day, the oldest
waiting copy, read-back failure rates per drive and media batch."""

import datetime as dt

import pytest
import time_machine

from exporter import fulfillment
from exporter import fulfillment_stats as stats
from exporter.models import CopyStatus
from tests.factories import new_copy

pytestmark = pytest.mark.django_db

DAY1 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def test_copies_per_state_counts_every_state_with_its_oldest_entry(alice, sam):
    with time_machine.travel(DAY1, tick=False):
        old = new_copy(alice, sam)
    with time_machine.travel(DAY1 + dt.timedelta(days=2), tick=False):
        new_copy(alice, sam)
        shipped = new_copy(alice, sam, CopyStatus.SHIPPED)
    per_state = {s.status: s for s in stats.copies_per_state()}
    assert list(per_state) == [value for value, _ in CopyStatus.choices]
    assert per_state[CopyStatus.QUEUED].count == 2
    assert per_state[CopyStatus.QUEUED].oldest == old.status_changed_at == DAY1
    assert per_state[CopyStatus.SHIPPED].count == 1 and per_state[CopyStatus.DELIVERED].count == 0
    assert stats.oldest_waiting_copy() == old
    fulfillment.claim_copies([old.pk], sam)
    # Shipped copies wait for the post, not for a person.
    assert stats.oldest_waiting_copy() != shipped


def test_throughput_counts_each_move_on_its_day_including_empty_days(alice, sam):
    with time_machine.travel(DAY1, tick=False):
        new_copy(alice, sam, CopyStatus.BURNED)
    with time_machine.travel(DAY1 + dt.timedelta(days=2), tick=False):
        new_copy(alice, sam, CopyStatus.DELIVERED)
        new_copy(alice, sam, CopyStatus.SHIPPED)
    days = stats.throughput_per_day(4, now=DAY1 + dt.timedelta(days=3, hours=5))
    assert [(d.day.isoformat(), d.burned, d.checked, d.shipped, d.delivered) for d in days] == [
        ("2026-03-02", 1, 0, 0, 0),
        ("2026-03-03", 0, 0, 0, 0),
        ("2026-03-04", 2, 2, 2, 1),
        ("2026-03-05", 0, 0, 0, 0),
    ]


def test_failure_rates_per_drive_and_batch_worst_first_within_the_period(alice, sam):
    def read_back(ok: bool, drive: str, batch: str) -> None:
        copy = new_copy(alice, sam, CopyStatus.BURNED)
        value = copy.disc.image_sha256 if ok else "0" * 64
        fulfillment.record_read_back(copy.pk, sam, drive=drive, media_batch=batch, method="sha256", value=value)

    with time_machine.travel(DAY1 - dt.timedelta(days=200), tick=False):
        read_back(False, "Drive B", "Old batch")  # long ago: not counted
    with time_machine.travel(DAY1, tick=False):
        read_back(True, "Drive A", "V-1")
        read_back(True, "Drive A", "V-1")
        read_back(False, "Drive A", "V-2")
        read_back(False, "Drive B", "V-2")
        drives = stats.read_back_failure_rates("drive")
        batches = stats.read_back_failure_rates("media_batch")
    assert [(r.name, r.checks, r.failed) for r in drives] == [("Drive B", 1, 1), ("Drive A", 3, 1)]
    assert [(r.name, r.failed, round(r.rate, 2)) for r in batches] == [("V-2", 2, 1.0), ("V-1", 0, 0.0)]
    with pytest.raises(ValueError):
        stats.read_back_failure_rates("actor")
