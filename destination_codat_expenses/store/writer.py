"""One writer per store: the only thread that uses the store's connection for a running
destination, committing everything queued since its last commit in ONE transaction.

Push and follow threads hand it work (a function of a connection) and wait for the commit that
carries it: a pusher's `sending` rows are committed before its POST leaves, as before, but many
pushes share one commit, and no HTTP thread ever holds the store. Reads go the same way (they
see every write queued before them). A group that fails is rolled back and its jobs run again
one transaction each, so one bad job fails alone and the others still commit.

Jobs of one kind that can share statements (a `Merge`: every sync outcome of a flush, say)
run together, as one set of statements for all of them, built from one derived table: the cost
of a flush grows with the rows it writes, not with the jobs it carries. Jobs of one flush come
from threads that each wait for their answer, so any order among them is a valid one.

Nothing here is DuckDB's: the writer is given `unit_of_work`, a factory of transactions (a
context manager that yields a connection and commits on leaving), the backend's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from destination_codat_expenses.errors import StoreError

MAX_GROUP = 512  # jobs per commit
FLUSH_BUDGET_S = 0.2  # jobs not begun by then wait for the next flush (a waiting reader's turn)
DEFERRED = object()  # a job's place in the answers of a flush that left it for the next
TRIES_ALONE = 5  # a job alone that lost to another process (a deadlock) runs again this often


class TryAgain(StoreError):
    """The backend rolled the unit of work back, and running it again may well succeed: for
    another process's sake (PostgreSQL found a deadlock between two writers, or a claim lock was
    not let go in time), or after DuckDB's memory limit was raised. Nothing of it was kept. A
    caller outside the writer treats it as the store being unavailable for now."""


Work = Callable[[Any], Any]


class Merge:
    """A kind of job whose payloads run together: `run_all` does for all of them what each
    would do alone, and answers each; `parts` splits payloads that must not share statements
    (the same row touched twice, say) into lists of positions that may."""

    def run_all(self, db: Any, payloads: list[Any]) -> list[Any]:
        raise NotImplementedError

    def parts(self, payloads: list[Any]) -> list[list[int]]:
        return [list(range(len(payloads)))]


def disjoint_parts(key_sets: list[set[str]]) -> list[list[int]]:
    """Positions grouped so no two in a group share a key (one UPDATE must not join a row
    twice, one upsert must not name a key twice); what clashes waits for a later group."""
    parts, left = [], list(range(len(key_sets)))
    while left:
        part, later, taken = [], [], set()
        for position in left:
            keys = set(key_sets[position])
            (later if keys & taken else part).append(position)
            if not keys & taken:
                taken |= keys
        parts.append(part)
        left = later
    return parts


@dataclass
class Job:
    work: Work | None
    future: Future = field(default_factory=Future)
    merge: Merge | None = None
    payload: Any = None


def execute(connection: Any, group: list[Job], deadline: float) -> list[Any]:
    """Every job's answer: plain jobs in order, then each kind of merged job together. Plain
    jobs not begun by `deadline` are left out (answered DEFERRED): a flush holds the file for a
    bounded time, so a process waiting for it gets in between two flushes."""
    results: list[Any] = [DEFERRED] * len(group)
    kinds: dict[Merge, list[int]] = {}
    for position, job in enumerate(group):
        if job.merge is not None:
            kinds.setdefault(job.merge, []).append(position)
        elif position == 0 or time.monotonic() < deadline:
            results[position] = job.work(connection)
    for merge, positions in kinds.items():
        payloads = [group[p].payload for p in positions]
        for part in merge.parts(payloads):
            answers = merge.run_all(connection, [payloads[i] for i in part])
            for i, answer in zip(part, answers, strict=True):
                results[positions[i]] = answer
    return results


class GroupWriter:
    def __init__(self, unit_of_work: Callable[[], AbstractContextManager[Any]], name: str) -> None:
        self.unit_of_work = unit_of_work
        self.name = name
        self.queue: list[Job] = []
        self.ready = threading.Condition()
        self.thread: threading.Thread | None = None
        self.commits = 0  # transactions committed: what group commit saves is counted here

    def run(self, work: Work) -> Any:
        """Queue `work`, wait for the commit that carries it, return what it returned."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("the store's writer cannot wait for itself")
        return self.submit(work).result()

    def run_merged(self, merge: Merge, payload: Any) -> Any:
        """Like `run`, for a job that may share its statements with others of its kind."""
        if threading.current_thread() is self.thread:
            raise RuntimeError("the store's writer cannot wait for itself")
        return self.enqueue(Job(None, merge=merge, payload=payload)).result()

    def submit(self, work: Work) -> Future:
        return self.enqueue(Job(work))

    def enqueue(self, job: Job) -> Future:
        with self.ready:
            self.queue.append(job)
            self.start()
            self.ready.notify()
        return job.future

    def start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self.serve, daemon=True, name=self.name)
            self.thread.start()

    def serve(self) -> None:
        while True:
            with self.ready:
                while not self.queue:
                    self.ready.wait()
                group, self.queue = self.queue[:MAX_GROUP], self.queue[MAX_GROUP:]
            self.flush(group)

    def flush(self, group: list[Job], tries: int = 1) -> None:
        """Commit the group in one transaction; only then does any of its jobs get an answer."""
        began = False
        try:
            with self.unit_of_work() as connection:
                began = True
                results = execute(connection, group, time.monotonic() + FLUSH_BUDGET_S)
        except BaseException as error:  # noqa: BLE001 - handed to the waiting threads
            if len(group) == 1 and isinstance(error, TryAgain) and tries < TRIES_ALONE:
                self.flush(group, tries + 1)
                return
            if not began or len(group) == 1:  # the store could not be opened: all fail
                for job in group:
                    job.future.set_exception(error)
                return
            for job in group:  # one bad job must not fail the others
                self.flush([job])
            return
        self.commits += 1
        deferred = [job for job, result in zip(group, results, strict=True) if result is DEFERRED]
        if deferred:  # first in the queue: the next flush (after any waiter's turn) runs them
            with self.ready:
                self.queue[:0] = deferred
        for job, result in zip(group, results, strict=True):
            if result is not DEFERRED:
                job.future.set_result(result)


WRITERS: dict[str, GroupWriter] = {}
WRITERS_LOCK = threading.Lock()


def writer_for(path: str, unit_of_work: Callable[[], AbstractContextManager[Any]]) -> GroupWriter:
    """The one writer of this store in this process."""
    key = str(Path(path).expanduser().resolve()) if "://" not in path else path
    with WRITERS_LOCK:
        if key not in WRITERS:
            WRITERS[key] = GroupWriter(unit_of_work, name="store-writer")
        return WRITERS[key]
