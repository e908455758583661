"""Planning the next disc of a subscriber with 1,000,000 pending items, on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_a \\
        .venv/bin/python benchmarks/planning.py [--items 1000000] [--small 10000] [--rounds 3] [--medium dvd]

Two subscribers are made once (and reused by later runs): one with
``--items`` pending photos (2-6 MB each, one ``added`` change each) and one
with ``--small``.  Each round plans the next disc of each in a transaction
that is rolled back, so every round plans the same disc 1 from the same
backlog; the figures are medians.  For each it prints the time, the number
of queries and the rows the planner read, next to the baseline: a plain
indexed SELECT, in the same process, of the pending changes the disc
carries with their items and versions (what any planner must at least read).
The query count must be the same for both backlogs: it depends on what fits
on the disc, not on how much waits.  Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bulk import analyze, insert_series, setup_django  # noqa: E402

MB = 1_000_000


class Rollback(Exception):
    pass


def make_subscriber(username: str, items: int, medium: str) -> int:
    """A subscriber with ``items`` pending items (made once, reused)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from exporter.models import Change, ChangeFeed, ExportCursor, ItemVersion, MediaItem, Subscription

    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is not None and Change.objects.filter(owner=user).count() == items:
        return user.pk
    if user is not None:
        sys.exit(f"{username} exists with another backlog; use a fresh database")
    began = time.perf_counter()
    with transaction.atomic():
        user = user_model.objects.create_user(username)
        Subscription.objects.create(user=user, medium=medium)
        ExportCursor.objects.create(owner=user)
        with connection.cursor() as cur:
            cur.execute("SELECT COALESCE(MAX(id), 0) FROM exporter_mediaitem")
            base = cur.fetchone()[0]
        owner = str(user.pk)
        insert_series(
            MediaItem,
            items,
            {
                "id": f"{base} + i",
                "public_id": "gen_random_uuid()",
                "owner_id": owner,
                "original_name": "'IMG_' || i || '.jpg'",
                "uploaded_at": "now()",
            },
        )
        insert_series(
            ItemVersion,
            items,
            {
                "id": f"{base} + i",
                "item_id": f"{base} + i",
                "number": "1",
                "storage_name": f"'originals/{owner}/' || i",
                "original_name": "'IMG_' || i || '.jpg'",
                "content_type": "'image/jpeg'",
                "size": f"{2 * MB} + (i::bigint * 7919) %% {4 * MB}",
                "sha256": "md5(i::text) || md5(i::text)",
                "uploaded_at": "now()",
            },
        )
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE exporter_mediaitem SET current_version_id = id WHERE owner_id = %s AND id > %s", [user.pk, base]
            )
        insert_series(
            Change,
            items,
            {"owner_id": owner, "seq": "i", "item_id": f"{base} + i", "kind": "'added'", "created_at": "now()"},
        )
        ChangeFeed.objects.create(owner=user, last_seq=items)
        with connection.cursor() as cur:
            for table in ("exporter_mediaitem", "exporter_itemversion", "exporter_change"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
    analyze(MediaItem, ItemVersion, Change)
    print(f"made {username}: {items:,} pending items in {time.perf_counter() - began:.0f} s", flush=True)
    return user.pk


SPENT: dict[str, float] = {}


def timing(module, name: str) -> None:
    """Count the time spent in ``module.name`` (the planner calls it through the module)."""
    inner = getattr(module, name)

    def timed(*args, **kwargs):
        began = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            SPENT[name] = SPENT.get(name, 0.0) + time.perf_counter() - began

    setattr(module, name, timed)


def plan_once(user_id: int, medium: str) -> tuple:
    """Plan disc 1 and roll it back: (seconds, queries, entries, changes
    carried, SQL, seconds laying out the image, seconds making its files)."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from exporter.planning import plan_next_disc

    user = get_user_model().objects.get(pk=user_id)
    result = {}
    SPENT.clear()
    statements: list[str] = []

    def counted(execute, sql, params, many, context):
        # Counts without Django's debug cursor, which would also copy every
        # statement with its parameters (megabytes for the entries' INSERT).
        statements.append(sql[:100])
        return execute(sql, params, many, context)

    try:
        with transaction.atomic():
            with connection.execute_wrapper(counted):
                began = time.perf_counter()
                disc = plan_next_disc(user, medium=medium)
                result["seconds"] = time.perf_counter() - began
            result["queries"] = len(statements)
            result["entries"] = disc.entries.count() if disc else 0
            result["seqs"] = (disc.last_seq - disc.first_seq + 1) if disc else 0
            result["sql"] = statements
            raise Rollback
    except Rollback:
        pass
    return (
        result["seconds"],
        result["queries"],
        result["entries"],
        result["seqs"],
        result["sql"],
        SPENT.get("measure_sectors", 0.0),
        SPENT.get("disc_files", 0.0),
    )


def baseline_once(user_id: int, rows: int) -> float:
    """A plain indexed SELECT of the first ``rows`` pending changes with their
    items and versions: the least any planner reads for this disc."""
    from django.db import connection

    began = time.perf_counter()
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.seq, c.kind, i.id, i.status, i.metadata_revision, v.number, v.size, v.sha256, v.original_name"
            " FROM exporter_change c JOIN exporter_mediaitem i ON i.id = c.item_id"
            " JOIN exporter_itemversion v ON v.id = i.current_version_id"
            " WHERE c.owner_id = %s AND c.resolution = 'pending' ORDER BY c.seq LIMIT %s",
            [user_id, rows],
        )
        cur.fetchall()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--medium", default="dvd")
    parser.add_argument("--show-queries", action="store_true")
    args = parser.parse_args()
    setup_django()
    from exporter import contents, iso

    timing(iso, "measure_sectors")
    timing(contents, "disc_files")

    subscribers = {
        "small": make_subscriber(f"bench-plan-{args.small}", args.small, args.medium),
        "large": make_subscriber(f"bench-plan-{args.items}", args.items, args.medium),
    }
    print(f"\nplanning the next {args.medium} disc; medians of {args.rounds} rounds (each rolled back)")
    header = (
        f"{'backlog':>10}  {'plan (s)':>9}  {'layout (s)':>10}  {'contents (s)':>12}  {'queries':>7}"
        f"  {'entries':>7}  {'baseline SELECT (s)':>19}  {'ratio':>5}"
    )
    print(header)
    for name, user_id in subscribers.items():
        backlog = args.items if name == "large" else args.small
        runs = [plan_once(user_id, args.medium) for _ in range(args.rounds)]
        seconds = statistics.median(r[0] for r in runs)
        queries = {r[1] for r in runs}
        entries, seqs = runs[0][2], runs[0][3]
        base = statistics.median(baseline_once(user_id, max(seqs, 1)) for _ in range(args.rounds))
        layout = statistics.median(r[5] for r in runs)
        files = statistics.median(r[6] for r in runs)
        print(
            f"{backlog:>10,}  {seconds:>9.3f}  {layout:>10.3f}  {files:>12.3f}"
            f"  {'/'.join(map(str, sorted(queries))):>7}  {entries:>7,}  {base:>19.3f}  {seconds / base:>5.1f}x"
        )
        if args.show_queries:
            for sql in runs[0][4]:
                print("    " + sql)


if __name__ == "__main__":
    main()
