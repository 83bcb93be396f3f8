"""The receiver's single writer: verified events are committed in batches (group commit), or
held in the spool when the store is busy, so every request is answered within a second.

Why: DuckDB allows one process on the file at a time, and each unit of work costs tens of
milliseconds whatever its size. One thread takes everything queued and commits it in one
transaction (applied set-wise, store/webhook_events.py), so the answer time stays flat under
load and the file is free for the destination and the report between batches. Each request
waits on its own Future.

The writer waits for the file only as long as the oldest request in the batch can afford
(ANSWER_BUDGET_S from its arrival). Past that, the batch goes to the spool (fsynced) and is
answered 202 "queued"; held events ride along with the next batch that gets the file, or are
retried while the receiver is idle, and are deleted from the spool only once committed. If one
event cannot be applied (a bug, an odd payload), the batch is rolled back and its events are
written one by one; the one that fails is kept unapplied rather than lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from destination_codat_expenses.errors import StoreError, WriterFull
from destination_codat_expenses.models import WebhookEvent
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.store.webhook_events import APPLIED
from destination_codat_expenses.webhooks.payloads import interpret
from destination_codat_expenses.webhooks.spool import HeldEvent, Spool

logger = logging.getLogger(__name__)
MAX_BATCH = 200
MAX_QUEUE = 2000
MAX_HELD_PER_BATCH = 500
ANSWER_BUDGET_S = 0.45  # from an event's arrival until it is in the store, or else in the spool
MIN_TRY_S = 0.02  # less time than this left: go straight to the spool
IDLE_S = 0.25  # while nothing arrives, held events are retried this often
IDLE_WAIT_S = 0.2  # each retry waits this long for the file
STOP = None
QUEUED = "queued"


@dataclass(frozen=True)
class Pending:
    held: HeldEvent
    event: WebhookEvent
    enqueued: float
    future: Future

    @property
    def entry(self) -> tuple[str, WebhookEvent, datetime]:
        return self.held.webhook_id, self.event, self.held.received_at


class EventWriter:
    def __init__(
        self,
        store: StatusStore,
        spool: Spool,
        budget_s: float = ANSWER_BUDGET_S,
        on_applied: Callable[[str | None, str], None] = lambda company_id, sync_id: None,
    ):
        self.store, self.spool, self.budget_s = store, spool, budget_s
        self.on_applied = on_applied  # (company, sync) of each committed event that marked one
        self.queue: queue.Queue = queue.Queue(MAX_QUEUE)
        self.thread: threading.Thread | None = None
        self.starting = threading.Lock()
        self.interpreted: dict[Path, list[tuple[str, WebhookEvent, datetime]]] = {}

    def submit(self, held: HeldEvent, event: WebhookEvent) -> Future:
        """Queue one verified event; its Future gets 'applied', 'stored', 'duplicate' or
        'queued' (held in the spool), or an exception when neither store nor spool took it."""
        self.start()
        pending = Pending(held, event, time.monotonic(), Future())
        try:
            self.queue.put_nowait(pending)
        except queue.Full:
            raise WriterFull("The webhook write queue is full.") from None
        return pending.future

    def start(self) -> None:
        with self.starting:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run, name="webhook-writer", daemon=True)
                self.thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write what is queued, then end the thread; what is held stays in the spool."""
        with self.starting:
            thread, self.thread = self.thread, None
        if thread is not None:
            self.queue.put(STOP)
            thread.join(timeout_s)

    def run(self) -> None:
        stopping = False
        while not stopping:
            fresh, stopping = self.next_batch()
            try:
                self.write(fresh)
            except Exception:  # the writer must outlive any one batch
                logger.exception("webhook writer: a batch failed")
                fail(fresh, StoreError("The event could not be written."))

    def next_batch(self) -> tuple[list[Pending], bool]:
        """Wait a moment for one event, then take whatever else is queued (up to MAX_BATCH)."""
        try:
            first = self.queue.get(timeout=IDLE_S)
        except queue.Empty:
            return [], False
        if first is STOP:
            return [], True
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
            if item is STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def write(self, fresh: list[Pending]) -> None:
        held_paths, held_entries = self.held()
        entries = [p.entry for p in fresh] + held_entries
        if not entries:
            return
        outcomes = self.commit(entries, self.wait_for(fresh))
        if outcomes is None:
            self.hold(fresh)
            return
        for pending, outcome in zip(fresh, outcomes, strict=False):
            pending.future.set_result(outcome)
        for (_, event, _), outcome in zip(entries, outcomes, strict=True):
            if outcome == APPLIED:
                self.on_applied(event.company_id, event.sync_id)
        if held_paths:
            self.spool.release(held_paths)
            logger.info("webhook writer: %d held events applied", len(held_entries))

    def held(self) -> tuple[list[Path], list[tuple[str, WebhookEvent, datetime]]]:
        """The oldest held files (up to MAX_HELD_PER_BATCH events), read and interpreted once."""
        paths, entries = [], []
        for path, events in self.spool.load():
            if entries and len(entries) + len(events) > MAX_HELD_PER_BATCH:
                break
            if path not in self.interpreted:
                self.interpreted[path] = [
                    (h.webhook_id, interpret(h.body), h.received_at) for h in events
                ]
            paths.append(path)
            entries += self.interpreted[path]
        for gone in set(self.interpreted) - set(paths):
            if not gone.exists():
                del self.interpreted[gone]
        return paths, entries

    def wait_for(self, fresh: list[Pending]) -> float:
        """How long the batch may wait for the file: what its oldest request has left."""
        if not fresh:
            return IDLE_WAIT_S
        return self.budget_s - (time.monotonic() - min(p.enqueued for p in fresh))

    def commit(self, entries: list, wait_s: float) -> list[str] | None:
        """Every entry's outcome once committed; None when the store did not take them."""
        if wait_s < MIN_TRY_S:
            return None
        try:
            return self.store.record_webhook_events(entries, wait_s)
        except StoreError as error:
            logger.info("webhook writer: store unavailable (%s)", error)
            return None
        except Exception:
            logger.exception("webhook writer: a batch of %d could not be applied", len(entries))
        try:  # one by one; the events already committed come back as duplicates if held
            return [self.commit_alone(entry, max(wait_s, MIN_TRY_S)) for entry in entries]
        except StoreError:
            return None

    def commit_alone(self, entry: tuple[str, WebhookEvent, datetime], wait_s: float) -> str:
        try:
            return self.store.record_webhook_events([entry], wait_s)[0]
        except StoreError:
            raise
        except Exception:
            logger.exception("webhook %s could not be applied; kept unapplied", entry[0][:80])
            return self.store.keep_webhook_event(*entry, wait_s)

    def hold(self, fresh: list[Pending]) -> None:
        if not fresh:
            return
        try:
            path = self.spool.hold([p.held for p in fresh])
        except OSError as error:
            logger.error("webhook writer: the spool refused %d events: %s", len(fresh), error)
            fail(fresh, StoreError("Neither the store nor the spool took the event."))
            return
        logger.warning(
            "webhook writer: store busy; %d events held in %s until it is free", len(fresh), path
        )
        for pending in fresh:
            pending.future.set_result(QUEUED)


def fail(batch: list[Pending], error: Exception) -> None:
    for pending in batch:
        if not pending.future.done():
            pending.future.set_exception(error)
