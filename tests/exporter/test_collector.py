import gc
import threading

import pytest

from exporter import collector, iso
from exporter.layout import DiscFile
from exporter.planning import plan_next_disc
from tests.factories import add_sized


def test_the_collector_is_back_as_it_was_after_a_layout_even_a_failed_one():
    files = [DiscFile.from_bytes(f"data/{n}.jpg", b"x") for n in range(3)]
    assert gc.isenabled()
    iso.measure_sectors(files, "GC")
    assert gc.isenabled()
    with pytest.raises(ValueError, match="on the disc twice"):
        iso.measure_sectors([*files, files[0]], "GC")
    assert gc.isenabled()
    gc.disable()
    try:
        iso.measure_sectors(files, "GC")
        assert not gc.isenabled()  # paused by someone else: left paused
    finally:
        gc.enable()


@pytest.mark.django_db
def test_a_plan_runs_with_the_collector_paused_and_leaves_it_running(alice, monkeypatch):
    add_sized(alice, 5_000_000, name="a.jpg")
    seen = []
    measure = iso.measure_sectors

    def looking(files, volume_id):
        seen.append(gc.isenabled())
        return measure(files, volume_id)

    monkeypatch.setattr(iso, "measure_sectors", looking)
    assert plan_next_disc(alice, allow_partial=True) is not None
    assert seen == [False] and gc.isenabled()


def test_overlapping_pauses_in_two_threads_end_with_the_collector_running():
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with collector.paused():
            inside.set()
            leave.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    inside.wait(5)
    with collector.paused():  # starts while the other pause holds
        assert not gc.isenabled()
    leave.set()
    thread.join(5)
    assert gc.isenabled()
