"""Outcomes: the reading thread and the push threads move the same tallies under one lock, and
rejects are never lost on the way to the store."""

from __future__ import annotations

import sys
import threading

import pytest

from destination_codat_expenses.errors import RecordError
from destination_codat_expenses.outcomes import Outcomes, Reject, Tally


@pytest.fixture
def busy_threads():
    """Switch threads as often as the interpreter allows, so an unlocked read-modify-write
    loses updates."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def test_counts_from_many_threads_add_up_and_every_snapshot_is_consistent(busy_threads):
    outcomes = Outcomes()
    inconsistent: list[Tally] = []
    per_thread = 6000
    start = threading.Barrier(4)  # the reader and three push threads, all at once

    def reader():
        start.wait()
        for n in range(per_thread):
            outcomes.accepted()
            if n % 4 == 0:
                outcomes.rejected("s", RecordError(f"r{n}", "amount", "bad"))

    def pusher():
        start.wait()
        for n in range(per_thread // 4):
            outcomes.withdrawn("s", RecordError(f"p{n}", "id", "conflict"))
            outcomes.repeated()

    def watcher(stop: threading.Event):
        while not stop.is_set():
            tally = outcomes.snapshot()
            if tally.accepted + tally.rejected != tally.read:
                inconsistent.append(tally)

    stop = threading.Event()
    watch = threading.Thread(target=watcher, args=(stop,))
    watch.start()
    workers = [threading.Thread(target=reader)]
    workers += [threading.Thread(target=pusher) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    watch.join()

    read = per_thread + per_thread // 4
    withdrawn = 3 * (per_thread // 4)
    assert outcomes.snapshot() == Tally(
        read=read,
        accepted=per_thread - withdrawn,
        rejected=per_thread // 4 + withdrawn,
        repeated=withdrawn,
    )
    assert len(outcomes.rejects) == per_thread // 4 + withdrawn
    assert not inconsistent


def test_rejects_a_failed_store_did_not_take_are_kept_for_the_next_try():
    outcomes = Outcomes()
    outcomes.rejected("cards", RecordError("k1", "amount", "is not a number"))

    def broken(rejects):
        raise OSError("disk full")

    with pytest.raises(OSError):
        outcomes.store_rejects(broken)
    stored: list[list[Reject]] = []
    outcomes.store_rejects(stored.append)
    outcomes.store_rejects(stored.append)  # nothing left: not called again
    assert stored == [[Reject("cards", "k1", "amount", "is not a number")]]


def test_a_reject_reported_while_storing_is_kept_for_the_next_store():
    outcomes = Outcomes()
    outcomes.rejected("cards", RecordError("k1", "amount", "bad"))
    stored: list[list[Reject]] = []

    def storing(rejects):
        outcomes.withdrawn("cards", RecordError("k2", "codat", "refused"))  # a push thread
        stored.append(rejects)

    outcomes.store_rejects(storing)
    outcomes.store_rejects(stored.append)
    assert [[r.record_key for r in batch] for batch in stored] == [["k1"], ["k2"]]


def test_the_share_of_rejects_is_of_records_read():
    assert Tally().rejected_share == 0.0
    assert Tally(read=4, accepted=3, rejected=1).rejected_share == 0.25
