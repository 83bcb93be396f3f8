"""The store's one writer: group commit, work only on the writer's thread, a failing job
failing alone; and the lease giving the file up to another process that announced it waits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest
from fake_codat import COMPANY, STREAM, mapped

from destination_codat_expenses.store import db, writer
from destination_codat_expenses.store.db import reading, release, transaction
from destination_codat_expenses.store.status_store import StatusStore


@pytest.fixture
def store(tmp_path):
    status = StatusStore(str(tmp_path / "status.duckdb"))
    status.prepare()
    yield status
    release(status.path)


def hold_writer(store: StatusStore) -> threading.Event:
    """Keep the writer busy with a job that waits for the returned event."""
    go, started = threading.Event(), threading.Event()
    store.writer.submit(lambda _db: (started.set(), go.wait(10)))
    assert started.wait(10)
    return go


def wait_until(condition, timeout_s: float = 10.0) -> None:
    until = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < until, "condition not reached"
        time.sleep(0.01)


def test_claims_of_many_pushers_share_one_commit(store):
    go = hold_writer(store)
    before = store.writer.commits
    pushers = [
        threading.Thread(target=store.mark_sending, args=(COMPANY, STREAM, [mapped(f"r{n}")]))
        for n in range(8)
    ]
    for thread in pushers:
        thread.start()
    wait_until(lambda: len(store.writer.queue) == len(pushers))
    go.set()
    for thread in pushers:
        thread.join(10)
    # the held job's commit, then ONE commit for all eight claims (not eight)
    assert store.writer.commits == before + 2
    assert len(store.ledger(COMPANY, [mapped(f"r{n}").transaction_id for n in range(8)])) == 8


def test_a_pusher_returns_only_once_its_claim_is_committed(store):
    go = hold_writer(store)
    done = threading.Event()
    pusher = threading.Thread(
        target=lambda: (store.mark_sending(COMPANY, STREAM, [mapped("a")]), done.set())
    )
    pusher.start()
    wait_until(lambda: len(store.writer.queue) == 1)
    assert not done.wait(0.2)  # its claim is not committed yet: its POST must not leave
    go.set()
    assert done.wait(10)
    with reading(store.path) as connection:
        assert connection.execute("SELECT state FROM transactions").fetchall() == [("sending",)]


def test_store_work_runs_on_the_writers_thread_only(store, monkeypatch):
    users: set[str] = set()
    use = db.Lease.use

    def recording_use(self, wait_s):
        users.add(threading.current_thread().name)
        return use(self, wait_s)

    monkeypatch.setattr(db.Lease, "use", recording_use)
    threads = [
        threading.Thread(
            target=store.mark_sending, args=(COMPANY, STREAM, [mapped(f"t{n}")]), name=f"push-{n}"
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    store.ledger(COMPANY, [mapped("t0").transaction_id])
    assert users == {"store-writer"}


def test_a_failing_job_fails_alone_and_the_rest_of_its_group_commits(store):
    go = hold_writer(store)
    good = store.writer.submit(
        lambda c: c.execute("INSERT INTO rejects VALUES ('r', 's', 'k', 'f', 'ok', now())")
    )
    bad = store.writer.submit(lambda c: c.execute("INSERT INTO no_such_table VALUES (1)"))
    wait_until(lambda: len(store.writer.queue) == 2)
    go.set()
    good.result(10)
    with pytest.raises(Exception, match="no_such_table"):
        bad.result(10)
    with reading(store.path) as connection:
        assert connection.execute("SELECT reason FROM rejects").fetchall() == [("ok",)]


def test_a_flush_past_its_budget_leaves_the_rest_for_the_next_one(store, monkeypatch):
    """A flush holds the file for a bounded time (a waiting process gets in between flushes):
    jobs not begun by then run in the next flush, each still answered after its commit."""
    monkeypatch.setattr(writer, "FLUSH_BUDGET_S", 0.05)
    go = hold_writer(store)
    before = store.writer.commits
    slow = store.writer.submit(lambda _db: time.sleep(0.2) or "slow")
    rest = [store.writer.submit(lambda _db, n=n: n) for n in range(3)]
    wait_until(lambda: len(store.writer.queue) == 4)
    go.set()
    assert slow.result(10) == "slow"
    assert [job.result(10) for job in rest] == [0, 1, 2]
    # the held job's commit, the slow job's alone, then the three left for the next flush
    assert store.writer.commits == before + 3


READER = textwrap.dedent("""
    import sys, time
    from destination_codat_expenses.store.db import reading
    started = time.monotonic()
    with reading(sys.argv[1], read_only=True, wait_s=20) as connection:
        connection.execute("SELECT count(*) FROM rejects").fetchone()
    print(f"{time.monotonic() - started:.3f}", flush=True)
""")


def test_a_waiting_reader_process_gets_in_during_a_long_write(tmp_path, monkeypatch):
    """The writer keeps using the file without a pause longer than IDLE_S, so only the
    reader's announcement can let it in; without it the reader would wait its 20 s."""
    path = str(tmp_path / "status.duckdb")
    db.migrate(path)
    stop = threading.Event()

    def busy_writer():
        while not stop.is_set():
            with transaction(path) as connection:
                connection.execute("INSERT INTO rejects VALUES ('r', 's', 'k', 'f', 'w', now())")
            time.sleep(0.01)

    writer = threading.Thread(target=busy_writer)
    writer.start()
    try:
        reader = subprocess.run(
            [sys.executable, "-c", READER, path], capture_output=True, text=True, timeout=60
        )
    finally:
        stop.set()
        writer.join(10)
    assert reader.returncode == 0, reader.stderr[-2000:]
    assert db.lease_for(path).yields >= 1
    assert not db.others_waiting(path)  # the reader took its announcement away
    release(path)


def test_an_announcement_left_by_a_dead_process_is_swept(tmp_path):
    path = str(tmp_path / "status.duckdb")
    db.waiters_dir(path).mkdir()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    (db.waiters_dir(path) / f"{dead.stdout.strip()}-x").touch()
    assert not db.others_waiting(path)
    assert list(db.waiters_dir(path).iterdir()) == []
