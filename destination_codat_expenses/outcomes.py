"""What became of a run's records: tallies, rejects and repeats, under ONE lock.

The reading thread counts what it reads, accepts and rejects; push threads report repeats
(judged when a batch is claimed) and items Codat's own schema check refused. Both move the same
numbers, which decide TooManyRejectsError and the run's row in the store, so every change and
every read of them holds the one lock, and a read is a snapshot that cannot change under you.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

from destination_codat_expenses.errors import RecordError

logger = logging.getLogger("airbyte")


class Reject(NamedTuple):
    """One bad input record, as the store keeps it (never the record itself)."""

    stream: str
    record_key: str
    field: str
    reason: str


@dataclass(frozen=True)
class Tally:
    read: int = 0
    accepted: int = 0
    rejected: int = 0
    repeated: int = 0  # the same id again with the same content: skipped, not pushed
    checkpoints: int = 0

    @property
    def rejected_share(self) -> float:
        return self.rejected / self.read if self.read else 0.0


class Outcomes:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tally = Tally()
        self.rejects: list[Reject] = []  # not yet stored

    def accepted(self) -> None:
        """A record read and mapped: it goes on to be pushed."""
        self.count(read=1, accepted=1)

    def rejected(self, stream: str, error: RecordError) -> None:
        """A record read and refused before any push (bad input, an unreadable line)."""
        self.count(read=1, rejected=1, reject=(stream, error))

    def withdrawn(self, stream: str, error: RecordError) -> Reject:
        """A record accepted earlier turned out bad when pushed: a conflicting repeat of an id,
        or an item Codat's schema check refused. It moves from accepted to rejected."""
        return self.count(accepted=-1, rejected=1, reject=(stream, error))

    def repeated(self) -> None:
        """A record repeating an id with the content recorded first for it: not pushed."""
        self.count(repeated=1)

    def undo(self, verdict: Reject | None) -> None:
        """Take back a repeat's verdict (None: counted repeated; else the conflict's reject),
        judged against content the ledger turned out to predate. A reject is taken back only
        while not yet stored; the pipeline stores them after every push of a checkpoint, by
        when every verdict is final."""
        if verdict is None:
            self.count(repeated=-1)
            return
        with self.lock:
            self.rejects = [r for r in self.rejects if r is not verdict]
        self.count(accepted=1, rejected=-1)

    def checkpointed(self) -> None:
        self.count(checkpoints=1)

    def snapshot(self) -> Tally:
        with self.lock:
            return self.tally

    def store_rejects(self, store: Callable[[list[Reject]], None]) -> None:
        """Hand the rejects not yet stored to `store` (outside the lock: push threads may go on
        reporting); they are forgotten only once it returned, so a failed store loses none."""
        with self.lock:
            pending = list(self.rejects)
        if not pending:
            return
        store(pending)
        with self.lock:
            del self.rejects[: len(pending)]

    def count(self, reject: tuple[str, RecordError] | None = None, **changes: int) -> Reject | None:
        with self.lock:
            now = self.tally
            self.tally = replace(now, **{k: getattr(now, k) + v for k, v in changes.items()})
            if reject is None:
                return None
            stream, error = reject
            stored = Reject(stream, error.record_key, error.field, error.reason)
            self.rejects.append(stored)
        logger.warning("rejected record: %s", error)
        return stored
