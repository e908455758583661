"""exporter.status: what staff see, in a constant number of queries."""

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exporter import status
from exporter.models import Disc, DiscStatus, WorkerHeartbeat
from exporter.planning import plan_next_disc
from tests.factories import add_sized

pytestmark = pytest.mark.django_db


def backlog(owner, sizes):
    for n, size in enumerate(sizes):
        add_sized(owner, size, name=f"{owner.username}-{n}.bin")


def count_queries(fn, *args):
    with CaptureQueriesContext(connection) as ctx:
        result = fn(*args)
    return result, len(ctx.captured_queries)


def test_disc_counts_has_every_state_and_the_permanent_failures(alice, bob):
    backlog(alice, [1000])
    backlog(bob, [1000])
    first = plan_next_disc(alice, allow_partial=True)
    plan_next_disc(bob, allow_partial=True)
    Disc.objects.filter(pk=first.pk).update(status=DiscStatus.FAILED, failure_permanent=True, last_error="boom")
    counts, queries = count_queries(status.disc_counts)
    assert counts == {"planned": 1, "building": 0, "built": 0, "verified": 0, "failed": 1, "failed_permanently": 1}
    assert queries == 1


def test_backlog_is_largest_first_and_counts_only_bytes_no_disc_carries(alice, bob, django_user_model):
    backlog(alice, [5000, 7000])
    backlog(bob, [20_000])
    plan_next_disc(bob, allow_partial=True)  # bob's bytes are on a disc now
    backlog(bob, [100])
    rows, queries = count_queries(status.backlog_by_subscriber)
    assert [(r["username"], r["pending_bytes"], r["pending_items"], r["pending_changes"]) for r in rows] == [
        ("alice", 12_000, 2, 2),
        ("bob", 100, 1, 1),
    ]
    assert all(r["oldest_pending_at"] is not None for r in rows)
    # Expected: the items grouped by owner, then the owners' changes.
    assert queries == 2
    for n in range(5):
        user = django_user_model.objects.create_user(f"extra{n}")
        backlog(user, [10 * n + 1, 10])
    rows, more = count_queries(status.backlog_by_subscriber, 3)
    assert more == queries and len(rows) == 3 and rows[0]["username"] == "alice"


def test_oldest_pending_change_age(alice):
    assert status.oldest_pending_change_age() is None
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), tick=False):
        backlog(alice, [10])
    with time_machine.travel(dt.datetime(2026, 3, 2, 12, tzinfo=dt.UTC), tick=False):
        backlog(alice, [10])
        age, queries = count_queries(status.oldest_pending_change_age)
    assert age == dt.timedelta(days=1) and queries == 1


def test_failed_builds_show_the_reason_and_permanent_ones_first(alice, bob):
    backlog(alice, [10])
    transient = plan_next_disc(alice, allow_partial=True)
    backlog(bob, [10])
    permanent = plan_next_disc(bob, allow_partial=True)
    retry_at = timezone.now() + dt.timedelta(minutes=4)
    Disc.objects.filter(pk=transient.pk).update(
        status="failed", last_error="the data disk is full", next_attempt_at=retry_at
    )
    Disc.objects.filter(pk=permanent.pk).update(status="failed", last_error="gave up", failure_permanent=True)
    rows, queries = count_queries(status.failed_builds)
    assert [(r["username"], r["reason"], r["permanent"]) for r in rows] == [
        ("bob", "gave up", True),
        ("alice", "the data disk is full", False),
    ]
    assert rows[1]["next_attempt_at"] == retry_at and rows[0]["next_attempt_at"] is None
    assert queries == 1


def test_worker_heartbeats_mark_silent_workers():
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker="a:1", host="a", pid=1, seen_at=now, task="build_disc", disc_id=7)
    WorkerHeartbeat.objects.create(worker="b:2", host="b", pid=2, seen_at=now - dt.timedelta(hours=1))
    rows, queries = count_queries(status.worker_heartbeats, now)
    assert [(r["worker"], r["silent"], r["disc_id"]) for r in rows] == [("a:1", False, 7), ("b:2", True, None)]
    assert queries == 1


def test_export_status_prints_every_section_and_json(alice, capsys):
    import json

    from django.core.management import call_command

    backlog(alice, [2_500_000])
    disc = plan_next_disc(alice, allow_partial=True)
    Disc.objects.filter(pk=disc.pk).update(status=DiscStatus.FAILED, last_error="the data disk is full")
    call_command("export_status")
    text = capsys.readouterr().out
    for needle in (
        "Discs: planned 0",
        "failed 1",
        "Failed builds:",
        "the data disk is full",
        "Workers:",
        "Scheduler runs:",
    ):
        assert needle in text, text
    call_command("export_status", "--json")
    data = json.loads(capsys.readouterr().out)
    assert data["discs"]["failed"] == 1
    assert [f["disc_id"] for f in data["failed_builds"]] == [disc.pk]
    assert set(data) >= {"backlog", "oldest_pending_change_age_seconds", "workers", "clusters", "job_runs"}


def test_a_disc_whose_lease_ran_out_long_ago_is_an_overdue_takeover(alice, bob, capsys, settings):
    """Issue #12, finding 8: a dead worker's disc that nobody takes over shows
    in export_status (text and JSON), one query."""
    import json

    from django.core.management import call_command

    settings.DISCSUB_SCHEDULE_MINUTES = 5  # take-over expected within two passes: 10 minutes
    now = timezone.now()
    discs = {}
    for name, owner, state, expired_ago in [
        ("just expired", alice, DiscStatus.BUILDING, dt.timedelta(minutes=9)),
        ("overdue building", alice, DiscStatus.BUILDING, dt.timedelta(minutes=30)),
        ("overdue built", bob, DiscStatus.BUILT, dt.timedelta(minutes=11)),
        ("leased", bob, DiscStatus.BUILDING, -dt.timedelta(minutes=5)),
        ("failed", bob, DiscStatus.FAILED, dt.timedelta(hours=5)),
    ]:
        backlog(owner, [1000])
        disc = plan_next_disc(owner, allow_partial=True)
        Disc.objects.filter(pk=disc.pk).update(
            status=state, leased_by=f"host:{disc.pk}", lease_expires_at=now - expired_ago
        )
        discs[name] = disc.pk
    rows, queries = count_queries(status.overdue_takeovers, now)
    assert [(r["disc_id"], r["status"], r["overdue_seconds"]) for r in rows] == [
        (discs["overdue building"], "building", 20 * 60),
        (discs["overdue built"], "built", 60),
    ]
    assert queries == 1
    call_command("export_status")
    text = capsys.readouterr().out
    assert "OVERDUE TAKE-OVERS: 2 disc(s)" in text
    assert f"disc {discs['overdue building']} (alice #" in text and f"lease of host:{discs['overdue building']}" in text
    call_command("export_status", "--json")
    data = json.loads(capsys.readouterr().out)
    assert [r["disc_id"] for r in data["overdue_takeovers"]] == [discs["overdue building"], discs["overdue built"]]


def test_export_status_says_nothing_of_take_overs_when_none_is_overdue(alice, capsys):
    from django.core.management import call_command

    call_command("export_status")
    assert "OVERDUE" not in capsys.readouterr().out
