"""The writer runs a flush's sync outcomes together: N syncs recorded in one flush cost a fixed
number of statements, not N times a sync's; each caller still gets its own answer after the
commit, and an outcome that cannot be recorded fails alone."""

from __future__ import annotations

import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fake_codat import COMPANY, STREAM, mapped

from destination_codat_expenses.store.db import reading, release, transaction
from destination_codat_expenses.store.status_store import StatusStore

SYNCS = 8
PER_SYNC = 5


class Counting:
    """A connection that counts the statements run through it."""

    def __init__(self, connection, counter: list) -> None:
        self.connection, self.counter = connection, counter

    def execute(self, sql: str, params=None):
        self.counter.append(sql)
        return self.connection.execute(sql, params or [])


@pytest.fixture
def store(tmp_path, monkeypatch):
    status = StatusStore(str(tmp_path / "status.duckdb"))
    status.prepare()
    for n in range(SYNCS):
        batch = [mapped(f"s{n}-r{i}") for i in range(PER_SYNC)]
        status.mark_sending(COMPANY, STREAM, batch)
        status.mark_sent(COMPANY, [m.transaction_id for m in batch], {"sync_id": f"sync-{n}"})
    statements: list[str] = []

    @contextlib.contextmanager
    def counted():
        with transaction(status.path) as connection:
            yield Counting(connection, statements)

    monkeypatch.setattr(status.writer, "unit_of_work", counted)
    yield status, statements
    release(status.path)


def outcome(n: int) -> tuple[dict, list[dict]]:
    status = {"syncId": f"sync-{n}", "syncStatusCode": 2000, "syncStatus": "Completed"}
    items = [
        {"transactionId": mapped(f"s{n}-r{i}").transaction_id, "status": "Completed"}
        for i in range(PER_SYNC)
    ]
    return status, items


def in_one_flush(store: StatusStore, calls: list) -> list:
    """Run `calls` from threads while the writer is held, so they all land in one flush."""
    go, started = threading.Event(), threading.Event()
    store.writer.submit(lambda _db: (started.set(), go.wait(10)))
    assert started.wait(10)
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        until = time.monotonic() + 10
        while len(store.writer.queue) < len(calls):
            assert time.monotonic() < until, "the calls never queued"
            time.sleep(0.01)
        go.set()
        return [f.exception(10) or f.result(10) for f in futures]


def states(store: StatusStore) -> dict[str, tuple]:
    with reading(store.path) as connection:
        rows = connection.execute(
            "SELECT s.sync_id, s.status_code, s.item_count, count(p.transaction_id), "
            "count(*) FILTER (WHERE t.state = 'completed') FROM syncs s "
            "LEFT JOIN push_items p ON p.sync_id = s.sync_id LEFT JOIN transactions t ON "
            "t.transaction_id = p.transaction_id GROUP BY ALL"
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_the_outcomes_of_one_flush_cost_a_fixed_number_of_statements(store):
    status_store, statements = store
    calls = [
        lambda n=n: status_store.record_sync_outcome(COMPANY, *outcome(n)) for n in range(SYNCS)
    ]
    answers = in_one_flush(status_store, calls)
    assert answers == [True] * SYNCS  # each settled its own sync
    # one set for all eight syncs: read syncs, write statuses, read ledger and attempts, look
    # for earlier items, insert items and attempts, move the ledger (a sync alone runs ~9)
    assert len(statements) <= 9, statements
    assert states(status_store) == {
        f"sync-{n}": (2000, PER_SYNC, PER_SYNC, PER_SYNC) for n in range(SYNCS)
    }
    # recorded again (a refresh): nobody settles it a second time
    again = in_one_flush(status_store, calls[:2])
    assert again == [False, False]


def test_an_outcome_that_cannot_be_recorded_fails_alone(store):
    status_store, _ = store
    broken = {"syncId": "sync-0", "syncStatusCode": 2000, "syncStatus": "Completed"}
    calls = [lambda n=n: status_store.record_sync_outcome(COMPANY, *outcome(n)) for n in (1, 2)]
    # an item without an id cannot be a push item: the flush fails, and reruns each job alone
    calls.append(lambda: status_store.record_sync_outcome(COMPANY, broken, [{"status": "x"}]))
    answers = in_one_flush(status_store, calls)
    assert answers[:2] == [True, True]
    assert isinstance(answers[2], Exception)
    recorded = states(status_store)
    assert recorded["sync-1"] == (2000, PER_SYNC, PER_SYNC, PER_SYNC)
    assert recorded["sync-2"] == (2000, PER_SYNC, PER_SYNC, PER_SYNC)
    assert recorded["sync-0"][0] is None  # nothing of the failed outcome was kept


def test_outcomes_that_share_a_transaction_are_not_merged(store):
    """Two syncs listing one id in one flush: recorded one after the other, both kept."""
    status_store, _ = store
    first, items = outcome(3)
    second = {"syncId": "sync-4", "syncStatusCode": 2000, "syncStatus": "Completed"}
    answers = in_one_flush(
        status_store,
        [
            lambda: status_store.record_sync_outcome(COMPANY, first, items),
            lambda: status_store.record_sync_outcome(COMPANY, second, items[:1]),
        ],
    )
    assert answers == [True, True]
    carried = push_items_per_sync(status_store, ["sync-3", "sync-4"])
    assert carried == [("sync-3", PER_SYNC), ("sync-4", 1)]


def test_the_accepted_pushes_of_one_flush_cost_a_fixed_number_of_statements(store):
    status_store, statements = store
    batches = [[mapped(f"new{n}-r{i}") for i in range(PER_SYNC)] for n in range(SYNCS)]
    for batch in batches:
        status_store.mark_sending(COMPANY, STREAM, batch)
    statements.clear()
    calls = [
        lambda n=n: status_store.mark_sent(
            COMPANY, [m.transaction_id for m in batches[n]], {"sync_id": f"new-sync-{n}"}
        )
        for n in range(SYNCS)
    ]
    assert in_one_flush(status_store, calls) == [None] * SYNCS
    # read the syncs, mark every push's ids sent, upsert every sync (one push alone runs 3)
    assert len(statements) <= 3, statements
    with reading(status_store.path) as connection:
        rows = connection.execute(
            "SELECT s.sync_id, s.item_count, count(t.transaction_id) FILTER (WHERE t.state = "
            "'sent') FROM syncs s LEFT JOIN transactions t ON t.last_sync_id = s.sync_id "
            "WHERE s.sync_id LIKE 'new-sync-%' GROUP BY ALL"
        ).fetchall()
    assert sorted(rows) == [(f"new-sync-{n}", PER_SYNC, PER_SYNC) for n in range(SYNCS)]


def test_the_claims_and_ledger_reads_of_one_flush_cost_a_fixed_number_of_statements(store):
    status_store, statements = store
    batches = [[mapped(f"claim{n}-r{i}") for i in range(PER_SYNC)] for n in range(SYNCS)]
    batches[0].append(mapped("s0-r0"))  # known to the ledger already: updated, not inserted
    statements.clear()
    calls = [
        lambda n=n: status_store.mark_sending(COMPANY, STREAM, batches[n]) for n in range(SYNCS)
    ]
    answers = in_one_flush(status_store, calls)
    assert answers == [[m.transaction_id for m in batch] for batch in batches]
    # read the ledger for every batch at once, insert the new ids, update the known one
    assert len(statements) <= 3, statements
    statements.clear()
    reads = [
        lambda n=n: status_store.ledger(COMPANY, [m.transaction_id for m in batches[n]])
        for n in range(SYNCS)
    ]
    seen = in_one_flush(status_store, reads)
    assert len(statements) == 1, statements
    assert [sorted(s for s, _ in answer.values()) for answer in seen] == [
        ["sending"] * len(batch) for batch in batches
    ]


def test_a_status_without_items_keeps_the_items_recorded_before(store):
    """In one flush, a sync recorded again with no list of items (a status alone) beside another
    sync's items: its push items from before stay; only a sync recorded with a new list of
    items has the old one replaced."""
    status_store, _ = store
    status_store.record_sync_outcome(COMPANY, *outcome(5))  # sync-5 with its 5 items
    bare = {"syncId": "sync-5", "syncStatusCode": 2000, "syncStatus": "Completed"}
    answers = in_one_flush(
        status_store,
        [
            lambda: status_store.record_sync_outcome(COMPANY, *outcome(6)),
            lambda: status_store.record_sync_outcome(COMPANY, bare, []),
        ],
    )
    assert answers == [True, False]
    carried = push_items_per_sync(status_store, ["sync-5", "sync-6"])
    assert carried == [("sync-5", PER_SYNC), ("sync-6", PER_SYNC)]


def push_items_per_sync(status_store, sync_ids: list[str]) -> list[tuple[str, int]]:
    with reading(status_store.path) as connection:
        return connection.execute(
            "SELECT sync_id, count(*) FROM push_items WHERE sync_id IN (SELECT unnest(?)) "
            "GROUP BY ALL ORDER BY 1",
            [sync_ids],
        ).fetchall()
