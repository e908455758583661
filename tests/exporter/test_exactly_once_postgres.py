"""Exactly once and gapless numbering under real concurrency (DESIGN §2.1, §2.2).

Every actor runs in its own thread with its own PostgreSQL connection, so the
row locks are the real ones.  Interleavings are forced with gates (a thread
stops at a named point until the test opens it) and by polling
``pg_stat_activity`` until a connection is seen waiting for a lock.
"""

from __future__ import annotations

import io
import random
import threading
import time
from collections import defaultdict

import pytest
from django.db import connection, transaction

from exporter import deletion, library, planning
from exporter.models import (
    Change,
    ChangeFeed,
    Disc,
    DiscEntry,
    EntryKind,
    ExportCursor,
    ItemStatus,
    MediaItem,
    Resolution,
)
from exporter.planning import plan_next_disc
from tests.factories import add_file
from tests.tools import require_postgres

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 20  # seconds any single step may take before the test fails instead of hanging


@pytest.fixture(autouse=True)
def _postgres_only():
    require_postgres()
    yield
    # A failed test must not leave threads holding locks while the test
    # database is flushed.
    for gate in Gate.made:
        gate.open()
    for actor in Actor.started:
        actor.join(WAIT)
    Gate.made.clear()
    Actor.started.clear()


class Actor(threading.Thread):
    """Calls ``fn`` in a thread of its own, on a database connection of its own."""

    started: list[Actor] = []

    def __init__(self, fn, *args, **kwargs):
        super().__init__(name=getattr(fn, "__name__", "actor"), daemon=True)
        Actor.started.append(self)
        self._call = (fn, args, kwargs)
        self.result = self.error = self.pid = None
        self._connected = threading.Event()

    def run(self):
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                self.pid = cur.fetchone()[0]
            self._connected.set()
            fn, args, kwargs = self._call
            self.result = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the test thread by outcome()
            self.error = exc
        finally:
            self._connected.set()
            connection.close()

    def outcome(self):
        self.join(WAIT)
        assert not self.is_alive(), f"{self.name} did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def start(fn, *args, **kwargs) -> Actor:
    actor = Actor(fn, *args, **kwargs)
    actor.start()
    assert actor._connected.wait(WAIT)
    return actor


class Gate:
    """A point where one thread stops until the test opens the gate."""

    made: list[Gate] = []

    def __init__(self):
        Gate.made.append(self)
        self.reached = threading.Event()
        self._open = threading.Event()

    def stop_here(self):
        self.reached.set()
        if not self._open.wait(WAIT):
            raise TimeoutError("the gate was never opened")

    def open(self):
        self._open.set()


def wait_until_waiting_for_lock(actor: Actor) -> None:
    """Return once ``actor``'s connection is blocked on a lock held by another one."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        assert actor.is_alive(), f"{actor.name} finished instead of waiting: {actor.error!r}"
        with connection.cursor() as cur:
            cur.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [actor.pid])
            row = cur.fetchone()
        if row and row[0] == "Lock":
            return
        time.sleep(0.005)
    pytest.fail(f"{actor.name} never waited for a lock")


def plan(owner, **kwargs):
    return plan_next_disc(owner, allow_partial=True, **kwargs)


def entries_of(disc) -> dict[int, DiscEntry]:
    return {e.item_id: e for e in DiscEntry.objects.filter(disc=disc).select_related("version")}


def assert_exactly_once(owner, *, drained: bool = True) -> None:
    """The whole series of ``owner`` against DESIGN §2.1 and §2.2."""
    changes = list(Change.objects.filter(owner=owner).order_by("seq"))
    seqs = [c.seq for c in changes]
    assert seqs == list(range(1, len(seqs) + 1)), "seq must be 1..N without gaps or duplicates"
    assert ChangeFeed.objects.get(owner=owner).last_seq == len(seqs)

    discs = list(Disc.objects.filter(owner=owner).order_by("number"))
    assert [d.number for d in discs] == list(range(1, len(discs) + 1)), "disc numbers must be gapless"
    cursor = ExportCursor.objects.get(owner=owner)
    assert cursor.discs_planned == len(discs)
    pending = [c.seq for c in changes if c.resolution == Resolution.PENDING]
    assert cursor.position == (min(pending) - 1 if pending else len(seqs))
    for change in changes:
        assert (change.disc_id is not None) == (change.resolution == Resolution.CARRIED), change
        assert (change.resolved_at is None) == (change.resolution == Resolution.PENDING), change
    if drained:
        assert not pending, f"changes never resolved: {pending}"

    # A disc carries exactly the changes of the items it has entries for, and
    # each entry lists the kinds of exactly those changes, oldest first.
    carried = defaultdict(lambda: defaultdict(list))
    for change in changes:
        if change.disc_id:
            carried[change.disc_id][change.item_id].append(change)
    history = defaultdict(list)  # item id -> its entries, disc by disc
    for disc in discs:
        entries = entries_of(disc)
        assert set(entries) == set(carried[disc.pk]), f"disc {disc.number}: entries and changes disagree"
        disc_seqs = [c.seq for item_changes in carried[disc.pk].values() for c in item_changes]
        assert (disc.first_seq, disc.last_seq) == (min(disc_seqs), max(disc_seqs))
        for item_id, entry in entries.items():
            assert entry.change_kinds == list(dict.fromkeys(c.kind for c in carried[disc.pk][item_id]))
            history[item_id].append(entry)

    # What the discs say of each item follows on from disc to disc: nothing
    # shipped twice, nothing skipped, and after a drain the last word is current.
    for item in MediaItem.objects.filter(owner=owner).select_related("current_version"):
        shipped = 0
        deletions = 0
        for entry in history[item.pk]:
            assert deletions == 0, f"item {item.pk} has an entry after its deletion"
            assert entry.previous_version_number == shipped, f"item {item.pk}: disc history breaks"
            if entry.kind == EntryKind.FILE:
                assert entry.version.number > shipped, f"item {item.pk}: version {entry.version.number} shipped twice"
                shipped = entry.version.number
            elif entry.kind == EntryKind.DELETION:
                deletions += 1
        assert (item.planned_version_number, item.deletion_planned) == (shipped, deletions == 1)
        if not drained:
            continue
        if item.status == ItemStatus.LIVE:
            assert shipped == item.current_version.number, f"live item {item.pk} misses its current version"
            last = history[item.pk][-1]
            assert last.metadata_revision == item.metadata_revision
            assert (last.metadata["caption"], last.metadata["title"]) == (item.caption, item.title)
            assert last.metadata["albums"] == album_paths(item)
        elif item.status == ItemStatus.DELETED:
            assert deletions == (1 if shipped else 0), f"deleted item {item.pk}: {deletions} deletion entries"


# 1. A change that begins before a disc is planned and commits after it.


def test_an_upload_in_flight_during_planning_goes_on_the_next_disc(alice):
    # T1 holds the feed lock with seq 2 uncommitted; T2 queues behind it for
    # seq 3.  The planner takes no feed lock, so it plans at once; neither
    # upload may be lost or slip onto the disc being planned.
    early = add_file(alice, "early.jpg")
    t1_gate = Gate()

    def upload_and_hold():
        with transaction.atomic():
            item = add_file(alice, "late.jpg")
            t1_gate.stop_here()
        return item

    t1 = start(upload_and_hold)
    assert t1_gate.reached.wait(WAIT)
    t2 = start(add_file, alice, "later.jpg")
    wait_until_waiting_for_lock(t2)

    first = start(plan, alice).outcome()
    assert set(entries_of(first)) == {early.pk}
    assert t1.is_alive() and t2.is_alive()
    assert ExportCursor.objects.get(owner=alice).position == 1

    t1_gate.open()
    late, later = t1.outcome(), t2.outcome()
    assert [c.seq for c in Change.objects.filter(item__in=[late, later]).order_by("item_id")] == [2, 3]
    second = plan(alice)
    assert set(entries_of(second)) == {late.pk, later.pk}
    assert plan(alice) is None
    assert_exactly_once(alice)


EDITS = {
    "replace_bytes": lambda item: library.replace_bytes(item, io.BytesIO(b"version two")),
    "edit_metadata": lambda item: library.edit_metadata(item, caption="edited while planning"),
    "move_item": lambda item: library.move_item(item, [library.ensure_album_path(item.owner, ["New", "Album"])]),
}


def album_paths(item: MediaItem) -> list[list[str]]:
    return sorted(album.path() for album in item.albums.all())


@pytest.mark.parametrize("edit", sorted(EDITS))
@pytest.mark.parametrize("held_at", ["before_next_seq", "after_next_seq"])
def test_the_planner_waits_for_an_open_change_to_an_item_it_carries(alice, monkeypatch, edit, held_at):
    # T1 holds the item's row lock (and, after next_seq, the feed lock) when
    # the planner starts.  The planner must wait for the item, then carry the
    # item as T1 left it together with T1's change, on this one disc.
    item = add_file(alice, "photo.jpg", b"version one")
    t1_gate = Gate()
    record_change = library.record_change

    def record_change_held(*args):
        if threading.current_thread().name == "edit_and_hold":
            t1_gate.stop_here()
        return record_change(*args)

    if held_at == "before_next_seq":
        monkeypatch.setattr(library, "record_change", record_change_held)

    def edit_and_hold():
        with transaction.atomic():
            EDITS[edit](MediaItem.objects.get(pk=item.pk))
            if held_at == "after_next_seq":
                t1_gate.stop_here()

    t1 = start(edit_and_hold)
    assert t1_gate.reached.wait(WAIT)
    planner = start(plan, alice)
    wait_until_waiting_for_lock(planner)
    assert t1.is_alive() and not Disc.objects.filter(owner=alice).exists()

    t1_gate.open()
    t1.outcome()
    disc = planner.outcome()
    assert disc is not None, "the planner lost the change it waited for"
    item.refresh_from_db()
    entry = entries_of(disc)[item.pk]
    assert entry.kind == EntryKind.FILE
    assert entry.version == item.current_version
    assert (entry.metadata["caption"], entry.metadata["albums"]) == (item.caption, album_paths(item))
    assert set(Change.objects.filter(item=item).values_list("resolution", "disc")) == {(Resolution.CARRIED, disc.pk)}
    assert plan(alice) is None
    assert_exactly_once(alice)


def test_changes_that_begin_while_a_disc_is_being_fixed_go_on_the_next_disc(alice, monkeypatch):
    # The planner stops inside _fix_disc, holding the cursor and the item
    # locks.  T1 (a new version of an item on this disc) must wait for it; an
    # edit of an item already shipped and a new upload commit while the disc
    # is being fixed.  All three land on the next disc, once.
    shipped = add_file(alice, "shipped.jpg")
    plan(alice)
    item = add_file(alice, "photo.jpg", b"version one")
    planner_gate = Gate()
    fix_disc = planning._fix_disc

    def fix_disc_held(*args):
        planner_gate.stop_here()
        return fix_disc(*args)

    monkeypatch.setattr(planning, "_fix_disc", fix_disc_held)
    planner = start(plan, alice)
    assert planner_gate.reached.wait(WAIT)

    t1 = start(EDITS["replace_bytes"], MediaItem.objects.get(pk=item.pk))
    wait_until_waiting_for_lock(t1)
    start(library.edit_metadata, MediaItem.objects.get(pk=shipped.pk), caption="new caption").outcome()
    newcomer = start(add_file, alice, "newcomer.jpg").outcome()
    assert t1.is_alive() and planner.is_alive()

    planner_gate.open()
    disc = planner.outcome()
    t1.outcome()
    assert {k: e.version.number for k, e in entries_of(disc).items()} == {item.pk: 1}
    monkeypatch.setattr(planning, "_fix_disc", fix_disc)
    following = entries_of(plan(alice))
    assert {k: (e.kind, e.metadata["version"]) for k, e in following.items()} == {
        item.pk: (EntryKind.FILE, 2),
        shipped.pk: (EntryKind.METADATA, 1),
        newcomer.pk: (EntryKind.FILE, 1),
    }
    assert following[shipped.pk].metadata["caption"] == "new caption"
    assert plan(alice) is None
    assert_exactly_once(alice)


# 2. Two planners racing for one subscriber while uploads continue.


def test_two_planners_racing_never_plan_overlapping_discs(alice):
    rounds = 40
    barrier = threading.Barrier(2, timeout=WAIT)
    planners_done = threading.Event()

    def planner():
        planned = []
        try:
            for _ in range(rounds):
                barrier.wait()  # both call plan_next_disc at the same moment
                disc = plan(alice)
                if disc is not None:
                    planned.append((disc.pk, disc.number))
                # The cursor's contract holds at every moment, not only at the end.
                position = ExportCursor.objects.get(owner=alice).position
                behind = Change.objects.filter(owner=alice, seq__lte=position, resolution=Resolution.PENDING)
                assert not behind.exists(), f"the cursor at {position} passed a pending change"
        except threading.BrokenBarrierError:
            pass  # the other planner failed and says why
        except BaseException:
            barrier.abort()  # let the other planner stop too
            raise
        finally:
            planners_done.set()
        return planned

    def uploader():
        rng = random.Random(2)
        items = []
        for n in range(400):
            if planners_done.is_set():
                break
            items.append(add_file(alice, f"u{n}.jpg", rng.randbytes(64)))
            if n % 3 == 2:
                library.edit_metadata(rng.choice(items), caption=f"caption {n}")
        return len(items)

    upload = start(uploader)
    racers = [start(planner), start(planner)]
    uploaded = upload.outcome()
    planned = [disc for racer in racers for disc in racer.outcome()]

    assert uploaded > 0 and len(planned) >= 2
    assert len({pk for pk, _ in planned}) == len({n for _, n in planned}) == len(planned)
    assert_exactly_once(alice, drained=False)
    while plan(alice):  # drain
        pass
    assert_exactly_once(alice)
    assert Change.objects.filter(owner=alice, resolution=Resolution.CARRIED).count() >= uploaded


# 3. Random library operations against concurrent planners.

STATUS_CHANGES = {"trash": deletion.trash_item, "restore": deletion.restore_item, "delete": deletion.delete_now}


def test_random_library_operations_against_concurrent_planners_export_each_change_once(alice):
    albums = [library.ensure_album_path(alice, path) for path in (["A"], ["B"], ["B", "Inner"])]
    writers_done = threading.Event()
    weights = {"add": 4, "version": 2, "edit": 2, "move": 1, "trash": 1, "restore": 1, "delete": 1}

    def writer(seed: int, count: int) -> int:
        rng = random.Random(seed)
        done = 0
        for n in range(count):
            pks = list(MediaItem.objects.filter(owner=alice).order_by("-pk").values_list("pk", flat=True))
            op = rng.choices(list(weights), list(weights.values()))[0] if pks else "add"
            if rng.random() < 0.8:
                pks = pks[:5]  # a few hot items, so writers and planners collide on their locks
            item = MediaItem.objects.get(pk=rng.choice(pks)) if pks else None
            try:
                if op == "add":
                    add_file(alice, f"w{seed}-{n}.jpg", rng.randbytes(32), albums=rng.sample(albums, rng.randint(0, 2)))
                elif op == "version":
                    library.replace_bytes(item, io.BytesIO(rng.randbytes(32)))
                elif op == "edit":
                    library.edit_metadata(item, caption=f"w{seed}-{n}", title=rng.choice(["", "T"]))
                elif op == "move":
                    library.move_item(item, rng.sample(albums, rng.randint(0, 2)))
                else:
                    STATUS_CHANGES[op](item)
                done += 1
            except library.LibraryError:
                pass  # e.g. editing an item another writer has just deleted
        return done

    def planner(seed: int) -> int:
        rng = random.Random(seed)
        planned = 0
        while not writers_done.is_set():
            planned += plan_next_disc(alice, allow_partial=rng.random() < 0.7) is not None
        return planned

    planners = [start(planner, 100 + n) for n in range(2)]
    writers = [start(writer, n, 70) for n in range(3)]
    try:
        operations = sum(w.outcome() for w in writers)
    finally:
        writers_done.set()
    planned = sum(p.outcome() for p in planners)
    while plan(alice):  # drain
        pass

    assert operations > 100 and planned > 0
    assert_exactly_once(alice)
    statuses = set(MediaItem.objects.filter(owner=alice).values_list("status", flat=True))
    assert statuses == set(ItemStatus.values), "the run should reach live, trashed and deleted items"
