"""The scheduler's due selection over 100,000 subscriptions, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_a \\
        .venv/bin/python benchmarks/scheduler.py [--subscriptions 100000] [--rounds 5] [--pass]

Subscriptions are made once (and reused): 80 % active with their period
ending some time in the next 30 days, 1 % active and past their period's
end, 0.1 % asking to ship now, 10 % paused, 8 % cancelled with their final
disc planned and 0.1 % cancelled without.  The figures are medians of
``--rounds``:

- the due selection (``exporter.scheduling.due_subscriptions``): one query,
  its time, and PostgreSQL's plan (EXPLAIN ANALYZE);
- the baseline, in the same process: the plainest indexed query, active
  subscriptions past their period's end only; and the due selection again
  with index scans turned off (what the partial indexes save);
- with ``--pass``, one whole scheduler pass over the due subscriptions
  (nothing pending, so no disc), rolled back afterwards.

Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bulk import analyze, explain, insert_series, setup_django  # noqa: E402


class Rollback(Exception):
    pass


def make_subscriptions(count: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from exporter.models import Subscription

    user_model = get_user_model()
    if Subscription.objects.filter(user__username__startswith="sched-").count() == count:
        return
    if Subscription.objects.exists():
        sys.exit("the database has other subscriptions; use a fresh one")
    began = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM auth_user")
            base = cur.fetchone()[0]
        insert_series(user_model, count, {"id": f"{base} + i", "username": "'sched-' || i", "password": "'!'"})
        band = "(i %% 1000)"
        insert_series(
            Subscription,
            count,
            {
                "user_id": f"{base} + i",
                "status": f"CASE WHEN {band} BETWEEN 800 AND 899 THEN 'paused'"
                f" WHEN {band} >= 900 THEN 'cancelled' ELSE 'active' END",
                "next_run_at": f"CASE WHEN {band} < 10 THEN now() - interval '1 hour'"
                " ELSE now() + (i %% 43200) * interval '1 minute' END",
                "ship_now_requested_at": f"CASE WHEN {band} = 10 THEN now() END",
                "final_disc_planned_at": f"CASE WHEN {band} BETWEEN 900 AND 998 THEN now() - interval '1 day' END",
            },
        )
        with connection.cursor() as cur:
            cur.execute("SELECT setval(pg_get_serial_sequence('auth_user', 'id'), (SELECT MAX(id) FROM auth_user))")
    analyze(user_model, Subscription)
    print(f"made {count:,} subscriptions in {time.perf_counter() - began:.0f} s", flush=True)


def timed(fn, rounds: int) -> tuple[float, int, int]:
    """Median seconds, SELECT queries per call, rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, queries, rows = [], 0, 0
    for _ in range(rounds):
        with CaptureQueriesContext(connection) as captured:
            began = time.perf_counter()
            rows = len(fn())
            times.append(time.perf_counter() - began)
        # SET LOCAL and savepoints are not the selection's queries.
        queries = sum(q["sql"].lstrip().upper().startswith("SELECT") for q in captured.captured_queries)
    return statistics.median(times), queries, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pass", dest="whole_pass", action="store_true")
    args = parser.parse_args()
    setup_django()
    from django.db import connection, transaction
    from django.utils import timezone

    from exporter import scheduling
    from exporter.models import Subscription

    make_subscriptions(args.subscriptions)
    now = timezone.now()

    def due():
        return list(scheduling.due_subscriptions(now).values_list("pk", flat=True))

    def baseline():
        return list(Subscription.objects.filter(status="active", next_run_at__lte=now).values_list("pk", flat=True))

    def due_without_indexes():
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET LOCAL enable_indexscan = off")
            cur.execute("SET LOCAL enable_bitmapscan = off")
            cur.execute("SET LOCAL enable_indexonlyscan = off")
            return due()

    print(f"\n{args.subscriptions:,} subscriptions; medians of {args.rounds} rounds")
    print(f"{'query':<44} {'seconds':>8} {'queries':>7} {'rows':>6}")
    for name, fn in [
        ("due selection (exporter.scheduling)", due),
        ("baseline: active and past period end only", baseline),
        ("due selection, index scans off", due_without_indexes),
    ]:
        seconds, queries, rows = timed(fn, args.rounds)
        print(f"{name:<44} {seconds:>8.4f} {queries:>7} {rows:>6,}")
    print("\nEXPLAIN ANALYZE of the due selection:")
    print(explain(scheduling.due_subscriptions(now).values("pk")))

    if args.whole_pass:
        began = time.perf_counter()
        try:
            with transaction.atomic():
                run = scheduling.run_due(now, queue_builds=False)
                seconds = time.perf_counter() - began
                raise Rollback
        except Rollback:
            pass
        print(
            f"\none whole pass: {run.subscriptions:,} due subscriptions (nothing pending) in {seconds:.1f} s"
            f" ({seconds / max(run.subscriptions, 1) * 1000:.1f} ms each), rolled back"
        )


if __name__ == "__main__":
    main()
