"""The receiver's confirmer: with an API key, it reads from Codat every sync a webhook marked "to
confirm", in the background, so the store holds Codat's word without a refresh.

Why it is built this way:
- A webhook triggers, the API decides: the event only marks the sync (store/webhook_events.py);
  here the sync's status and every transaction page are read through the one Codat client and
  recorded by follow.SyncFollower (settle / record_final), as a run or a refresh would.
- Requests never wait for it: the writer hands over a sync once its event is committed, and a
  few threads work through a bounded queue. A full queue, or any failure (Codat down, the store
  busy past its wait), leaves the sync marked; the next webhook, the running destination or
  `codat-expenses status refresh` confirms it.
- A sync is asked about once however many webhooks name it (three endpoints, retries), and not
  at all when another process settled it from the API first.
"""

from __future__ import annotations

import logging
import queue
import threading

from destination_codat_expenses.errors import CodatAPIError, StoreError
from destination_codat_expenses.follow import SyncFollower
from destination_codat_expenses.store import queries
from destination_codat_expenses.store.status_store import StatusStore

logger = logging.getLogger(__name__)
MAX_QUEUE = 1000
WORKERS = 2
STOP = None


class Confirmer:
    def __init__(self, follower: SyncFollower, store: StatusStore, workers: int = WORKERS) -> None:
        self.follower, self.store, self.workers = follower, store, workers
        self.queue: queue.Queue = queue.Queue(MAX_QUEUE)
        self.queued: set[str] = set()  # syncs waiting in the queue or being read now
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def request(self, company_id: str | None, sync_id: str) -> None:
        """Confirm this sync soon (its company from the store when the event named none); at
        once if it is already waiting. Never blocks."""
        with self.lock:
            if sync_id in self.queued:
                return
            try:
                self.queue.put_nowait((company_id, sync_id))
            except queue.Full:
                logger.warning("confirm queue full: sync %s stays to confirm", sync_id[:80])
                return
            self.queued.add(sync_id)

    def start(self) -> None:
        """Start the threads, and queue what an earlier run (or no key) left to confirm."""
        for n in range(self.workers):
            thread = threading.Thread(target=self.run, name=f"webhook-confirm-{n}", daemon=True)
            thread.start()
            self.threads.append(thread)
        try:
            left = self.store.syncs_to_confirm()
        except StoreError as error:
            logger.warning("syncs left to confirm could not be read: %s", error)
            return
        for company_id, sync_id in left[:MAX_QUEUE]:
            self.request(company_id, sync_id)

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the threads after the syncs being read now; the rest stay marked in the store."""
        with self.lock:
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queued.clear()
        for _ in self.threads:
            self.queue.put(STOP)
        for thread in self.threads:
            thread.join(timeout_s)
        self.threads = []

    def run(self) -> None:
        while (job := self.queue.get()) is not STOP:
            company_id, sync_id = job
            try:
                self.confirm(company_id, sync_id)
            finally:
                with self.lock:
                    self.queued.discard(sync_id)

    def confirm(self, company_id: str | None, sync_id: str) -> None:
        try:
            if self.store.settled([sync_id]):
                return  # the destination or a refresh read it from Codat first
            company_id = company_id or (queries.sync_details(self.store.path, sync_id) or {}).get(
                "company_id"
            )
            if company_id is None:
                return
            final = self.follower.settle(company_id, sync_id)
        except (CodatAPIError, StoreError) as error:
            logger.warning("sync %s stays to confirm: %s", sync_id[:80], error)
            return
        except Exception:  # the confirmer must outlive any one sync
            logger.exception("sync %s stays to confirm", sync_id[:80])
            return
        if final:
            logger.info("sync %s confirmed from Codat", sync_id[:80])
        else:
            logger.info(
                "sync %s: Codat still reports it running; it stays to confirm", sync_id[:80]
            )
