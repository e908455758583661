"""The scheduler's pass (exporter.scheduling): due by state, partial discs,
the per-period cap, ship now, pause and cancel, and queued builds."""

import datetime as dt

import pytest
import time_machine
from django.core.management import call_command
from django_q.models import Schedule

from exporter import scheduling, subscriptions
from exporter.models import (
    Change,
    Disc,
    ExportCursor,
    JobRun,
    Resolution,
    Subscription,
    SubscriptionStatus,
    WorkerHeartbeat,
)
from tests.factories import add_sized

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
MB = 1_000_000
CD_BYTES = 359_424 * 2048


@pytest.fixture
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


def subscription_of(user) -> Subscription:
    return Subscription.objects.get(user=user)


def set_next_run(user, when):
    Subscription.objects.filter(user=user).update(next_run_at=when)


def discs_of(user) -> list[Disc]:
    return list(Disc.objects.filter(owner=user).order_by("number"))


def pending(user) -> int:
    return Change.objects.filter(owner=user, resolution=Resolution.PENDING).count()


def test_due_selection_is_by_state(alice, bob, django_user_model, clock):
    def subscriber(name, **fields):
        user = django_user_model.objects.create_user(name)
        return Subscription.objects.create(user=user, **fields)

    due = {
        subscription_of(alice).pk,  # active, never scheduled: its first pass starts its period
        subscriber("period_over", next_run_at=T0 - dt.timedelta(days=1)).pk,
        subscriber("ship_now", next_run_at=T0 + dt.timedelta(days=9), ship_now_requested_at=T0).pk,
        subscriber("cancelled", status=SubscriptionStatus.CANCELLED, next_run_at=T0 + dt.timedelta(days=9)).pk,
    }
    set_next_run(bob, T0 + dt.timedelta(seconds=1))  # not yet
    subscriber("paused", status=SubscriptionStatus.PAUSED, next_run_at=T0 - dt.timedelta(days=40))
    subscriber("final_done", status=SubscriptionStatus.CANCELLED, final_disc_planned_at=T0 - dt.timedelta(days=1))
    assert set(scheduling.due_subscriptions(T0).values_list("pk", flat=True)) == due


def test_a_period_end_ships_what_is_pending_and_a_doubled_pass_does_nothing(alice, clock):
    add_sized(alice, 5 * MB, "a.bin")
    set_next_run(alice, T0)
    run = scheduling.run_due(T0, queue_builds=False)
    assert [d.number for d in discs_of(alice)] == [1]
    assert pending(alice) == 0
    assert subscription_of(alice).next_run_at == T0 + dt.timedelta(days=30)
    assert (run.subscriptions, run.discs_planned, run.finished_at is not None) == (1, 1, True)

    again = scheduling.run_due(T0, queue_builds=False)
    assert (again.subscriptions, again.discs_planned) == (0, 0)
    assert len(discs_of(alice)) == 1
    assert JobRun.objects.count() == 2  # every pass is recorded

    # A month later the old passes are dropped (and workers unseen for a week).
    WorkerHeartbeat.objects.create(worker="gone:1", host="gone", pid=1, seen_at=T0)
    later = scheduling.run_due(T0 + dt.timedelta(days=31), queue_builds=False)
    assert list(JobRun.objects.all()) == [later]
    assert not WorkerHeartbeat.objects.filter(worker="gone:1").exists()


def test_a_missed_pass_catches_up_once_and_keeps_the_calendar(alice, clock):
    add_sized(alice, 5 * MB, "a.bin")
    set_next_run(alice, T0 - dt.timedelta(days=95))  # three periods and five days late
    scheduling.run_due(T0, queue_builds=False)
    assert len(discs_of(alice)) == 1
    assert subscription_of(alice).next_run_at == T0 - dt.timedelta(days=95) + dt.timedelta(days=120)


def test_a_first_pass_starts_the_period_and_ships_only_full_discs(alice, clock):
    add_sized(alice, 5 * MB, "a.bin")
    scheduling.run_due(T0, queue_builds=False)
    assert discs_of(alice) == []
    assert subscription_of(alice).next_run_at == T0 + dt.timedelta(days=30)
    add_sized(alice, 400 * MB, "b.bin")
    add_sized(alice, 400 * MB, "c.bin")
    set_next_run(alice, None)
    scheduling.run_due(T0, queue_builds=False)
    assert len(discs_of(alice)) == 1  # the full one; the rest waits for the period's end
    assert pending(alice) == 1


def test_a_small_partial_disc_waits_until_it_has_waited_long_enough(alice, clock, settings):
    settings.DISCSUB_MIN_PARTIAL_MB = 50
    settings.DISCSUB_MAX_WAIT_PERIODS = 2
    add_sized(alice, 5 * MB, "small.bin")
    set_next_run(alice, T0)
    scheduling.run_due(T0, queue_builds=False)
    assert discs_of(alice) == [] and pending(alice) == 1
    assert "1 partial discs under the minimum" in JobRun.objects.latest("started_at").note

    second_end = subscription_of(alice).next_run_at
    scheduling.run_due(second_end, queue_builds=False)
    assert discs_of(alice) == [], "it has waited one period"
    third_end = subscription_of(alice).next_run_at
    assert third_end == T0 + dt.timedelta(days=60)
    scheduling.run_due(third_end, queue_builds=False)
    assert len(discs_of(alice)) == 1, "two periods of waiting ship it whatever its size"


def test_a_partial_disc_over_the_minimum_ships_at_the_period_end(alice, clock, settings):
    settings.DISCSUB_MIN_PARTIAL_MB = 50
    add_sized(alice, 60 * MB, "large.bin")
    set_next_run(alice, T0)
    scheduling.run_due(T0, queue_builds=False)
    assert len(discs_of(alice)) == 1


def test_ship_now_plans_a_partial_disc_whatever_the_minimum_and_is_cleared(alice, clock, settings):
    settings.DISCSUB_MIN_PARTIAL_MB = 500
    add_sized(alice, 1 * MB, "tiny.bin")
    set_next_run(alice, T0 + dt.timedelta(days=10))
    subscriptions.request_ship_now(subscription_of(alice), alice)
    scheduling.run_due(T0, queue_builds=False)
    assert len(discs_of(alice)) == 1
    sub = subscription_of(alice)
    assert sub.ship_now_requested_at is None
    assert sub.next_run_at == T0 + dt.timedelta(days=10), "ship now does not move the period"
    scheduling.run_due(T0, queue_builds=False)
    assert len(discs_of(alice)) == 1


def test_a_paused_subscription_plans_nothing_and_resumes_where_it_stopped(alice, clock):
    add_sized(alice, 5 * MB, "before.bin")
    set_next_run(alice, T0)
    scheduling.run_due(T0, queue_builds=False)
    cursor = ExportCursor.objects.get(owner=alice)
    subscriptions.pause(subscription_of(alice), alice)
    during = [add_sized(alice, 5 * MB, f"during-{n}.bin") for n in range(2)]
    scheduling.run_due(T0 + dt.timedelta(days=100), queue_builds=False)
    assert len(discs_of(alice)) == 1 and pending(alice) == 2
    assert ExportCursor.objects.get(owner=alice).position == cursor.position

    subscriptions.resume(subscription_of(alice), alice)
    set_next_run(alice, T0 + dt.timedelta(days=100))
    scheduling.run_due(T0 + dt.timedelta(days=100), queue_builds=False)
    first, second = discs_of(alice)
    assert sorted(second.changes.values_list("item_id", flat=True)) == [i.pk for i in during]
    assert pending(alice) == 0


def test_a_cancelled_subscription_gets_one_final_disc_then_nothing(alice, clock):
    add_sized(alice, 5 * MB, "last.bin")
    set_next_run(alice, T0 + dt.timedelta(days=20))
    subscriptions.cancel(subscription_of(alice), alice)
    scheduling.run_due(T0, queue_builds=False)
    assert len(discs_of(alice)) == 1 and pending(alice) == 0
    assert subscription_of(alice).final_disc_planned_at == T0

    add_sized(alice, 5 * MB, "after.bin")
    scheduling.run_due(T0 + dt.timedelta(days=400), queue_builds=False)
    assert len(discs_of(alice)) == 1 and pending(alice) == 1


def test_a_subscription_taken_back_after_its_final_disc_gets_another_when_cancelled_again(alice, clock):
    add_sized(alice, 5 * MB, "first.bin")
    subscriptions.cancel(subscription_of(alice), alice)
    scheduling.run_due(T0, queue_builds=False)
    assert len(discs_of(alice)) == 1
    # Staff take the cancellation back (no page does this; the shell can).
    Subscription.objects.filter(user=alice).update(status=SubscriptionStatus.ACTIVE)
    add_sized(alice, 5 * MB, "second.bin")
    subscriptions.cancel(subscription_of(alice), alice)
    assert subscription_of(alice).final_disc_planned_at is None
    scheduling.run_due(T0 + dt.timedelta(days=1), queue_builds=False)
    assert len(discs_of(alice)) == 2 and pending(alice) == 0


def test_the_per_period_cap_leaves_the_newest_for_the_next_period(alice, clock, settings):
    settings.DISCSUB_MAX_DISCS_PER_PERIOD = 2
    settings.DISCSUB_PAR2_REDUNDANCY = {"cd": 0, "dvd": 0, "dvd-dl": 0, "bd": 0}
    items = [add_sized(alice, CD_BYTES // 2 + MB, f"half-{n}.bin") for n in range(4)]  # one per CD
    set_next_run(alice, T0)
    run = scheduling.run_due(T0, queue_builds=False)
    assert [d.entries.get().item_id for d in discs_of(alice)] == [items[0].pk, items[1].pk]
    assert "1 subscribers reached the per-period cap" in run.note
    scheduling.run_due(T0 + dt.timedelta(days=1), queue_builds=False)  # same period: still capped
    assert len(discs_of(alice)) == 2

    next_end = subscription_of(alice).next_run_at
    scheduling.run_due(next_end, queue_builds=False)
    assert [d.entries.get().item_id for d in discs_of(alice)] == [i.pk for i in items]


@pytest.fixture
def build_queue(settings):
    """The build queue of the configured broker (Redis in CI's PostgreSQL run,
    the ORM otherwise), empty before and after the test."""
    from django_q.brokers import get_broker

    broker = get_broker(settings.DISCSUB_BUILD_QUEUE)
    broker.purge_queue()
    yield broker
    broker.purge_queue()


def queued_tasks(broker) -> list[dict]:
    """The tasks waiting in the queue, read without taking them."""
    from django_q.brokers.orm import ORM
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    if isinstance(broker, ORM):
        payloads = OrmQ.objects.filter(key=broker.list_key).values_list("payload", flat=True)
    else:
        payloads = broker.connection.lrange(broker.list_key, 0, -1)
    return [SignedPackage.loads(payload) for payload in payloads]


def test_one_build_task_per_disc_and_a_doubled_pass_queues_none(alice, bob, clock, build_queue):
    for user in (alice, bob):
        add_sized(user, 5 * MB, f"{user.username}.bin")
        set_next_run(user, T0)
    run = scheduling.run_due(T0)
    discs = Disc.objects.order_by("pk")
    assert run.builds_queued == 2
    assert scheduling.run_due(T0).builds_queued == 0
    tasks = queued_tasks(build_queue)
    assert sorted((t["func"], t["args"]) for t in tasks) == [("exporter.tasks.build_disc", (d.pk,)) for d in discs]

    # A disc that failed is queued again once its retry time has come.
    Disc.objects.filter(pk=discs[0].pk).update(status="failed", next_attempt_at=T0 + dt.timedelta(minutes=5))
    assert scheduling.queue_due_builds(T0 + dt.timedelta(minutes=1)) == []
    assert scheduling.queue_due_builds(T0 + dt.timedelta(minutes=6)) == [discs[0].pk]


def test_setup_schedules_is_idempotent(settings):
    call_command("setup_schedules")
    call_command("setup_schedules")
    assert sorted(Schedule.objects.values_list("func", "minutes")) == [
        ("exporter.tasks.empty_trash", settings.DISCSUB_DELETION_MINUTES),
        ("exporter.tasks.purge", settings.DISCSUB_DELETION_MINUTES),
        ("exporter.tasks.run_schedule", settings.DISCSUB_SCHEDULE_MINUTES),
    ]
    settings.DISCSUB_SCHEDULE_MINUTES = 2
    call_command("setup_schedules")
    assert Schedule.objects.get(func="exporter.tasks.run_schedule").minutes == 2
    assert Schedule.objects.count() == 3


def test_a_disc_whose_worker_died_is_queued_again_once_its_lease_runs_out(alice, clock, build_queue):
    add_sized(alice, 5 * MB, "a.bin")
    set_next_run(alice, T0)
    scheduling.run_due(T0)
    (disc,) = discs_of(alice)
    # A worker took it and died (its broker message is gone with it).
    lease_end = T0 + dt.timedelta(minutes=5)
    Disc.objects.filter(pk=disc.pk).update(status="building", leased_by="gone:1:x", lease_expires_at=lease_end)
    assert scheduling.queue_due_builds(T0 + dt.timedelta(minutes=4)) == [], "its lease still runs"
    assert scheduling.queue_due_builds(lease_end + dt.timedelta(seconds=1)) == [disc.pk]
    assert scheduling.queue_due_builds(lease_end + dt.timedelta(seconds=2)) == [], "queued once"


def test_a_build_task_lost_before_its_disc_was_claimed_is_queued_again_when_the_queue_is_empty(
    alice, clock, build_queue, settings
):
    add_sized(alice, 5 * MB, "a.bin")
    set_next_run(alice, T0)
    scheduling.run_due(T0)
    (disc,) = discs_of(alice)
    lost_after = T0 + dt.timedelta(minutes=settings.DISCSUB_LOST_BUILD_MINUTES, seconds=1)
    assert scheduling.queue_due_builds(lost_after) == [], "its task still waits in the queue"
    # A cluster took the task from the queue and was killed before claiming the disc.
    build_queue.purge_queue()
    assert scheduling.queue_due_builds(T0 + dt.timedelta(minutes=1)) == [], "not so soon"
    assert scheduling.queue_due_builds(lost_after) == [disc.pk]
    assert [t["args"] for t in queued_tasks(build_queue)] == [(disc.pk,)]
    assert scheduling.queue_due_builds(lost_after + dt.timedelta(seconds=1)) == [], "queued once"


def test_a_broker_that_cannot_say_its_queue_size_is_not_taken_for_an_empty_one(monkeypatch, caplog):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "ORM", "no-such-database")  # django-q2's own lookup fails
    assert scheduling._build_queue_is_empty() is False  # so no task is queued early
    assert "cannot read the build queue's size" in caplog.text
