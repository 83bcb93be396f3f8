"""Following syncs to their end: status with backoff, then the final status together with every
transaction's outcome (one commit), then receipts for the transactions that completed.

Codat's API is the only source of a status: a webhook only marks a sync "to confirm", which wakes
a waiting follower at once (it then reads the sync from Codat like any other). A sync another
process has already settled from the API (the receiver, a refresh) is not read again, and of two
processes settling one sync at the same time only the first to commit uploads its receipts.

An item of a 5080 sync whose message says that its own id was processed before is checked
against Codat's transaction statuses (reconcile.find_completions) before it is called completed;
the sync's other items failed because of it and are recorded as failed. `complete_unfinished`
finds and finishes what a crash or an older version left half done.

A run follows its syncs while it pushes (`start_following`, `add`): a thread of its own polls
each sync as it is opened, with the same backoff, and records the final ones from a pool of
workers, so many syncs' outcomes share one commit of the store's writer. `stop_following` ends
it; what is still open is followed by `follow` at the end of the run, within its timeout.

A round asks about a company's open syncs with one `list/status` request when several are due
at once, instead of one status request each: Codat runs a company's syncs one after another, so
a run that pushes ten at a time has ten open, and each poll of each one would spend a request of
the company's ten at a time and of the day's quota. The list has no paging and holds the
company's whole history, so a company whose last list (or, before one is read, the store's count
of its syncs) was long for the syncs due is asked sync by sync; a due sync the list does not
hold yet is asked about alone. Either answer is Codat's
own status of that sync, recorded the same way.

When Codat's request quota is nearly used up (codat/quota.py), a round asks about each
company's oldest open sync only (or reads its list, one request all the same): Codat runs a
company's syncs one after another, so the others are known to be waiting, and what is left of
the quota goes to the syncs that can end.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass

from destination_codat_expenses import stopping
from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.codat.errors import names_itself
from destination_codat_expenses.errors import CodatAPIError, QuotaExhausted
from destination_codat_expenses.models import IN_PROGRESS
from destination_codat_expenses.reconcile import settle_processed_before
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.uploads import ReceiptUploader

logger = logging.getLogger("airbyte")
FIRST_PAUSE_S, MAX_PAUSE_S, WEBHOOK_CHECK_S = 0.2, 5.0, 0.25
# a company's syncs due at once before one list answers them; a list longer than this many
# entries for each of them costs more than asking about each alone
LIST_FROM_DUE, LIST_ENTRIES_PER_SYNC = 2, 100
# syncs due this soon join a round that is starting anyway: syncs opened together are asked
# about together (one list), not in rounds a few milliseconds apart
DUE_SOON_S = 0.1
Sync = tuple[str, str]  # (company, sync)


@dataclass
class Polling:
    """An open sync followed while the run pushes: when to ask next, and the pause after."""

    due: float
    pause: float = FIRST_PAUSE_S


class SyncFollower:
    def __init__(
        self,
        client: CodatClient,
        store: StatusStore,
        upload_receipts: bool,
        workers: int = 4,
        receipts_root: str | None = None,
        on_wait: Callable[[int], None] = lambda still_open: None,
    ) -> None:
        self.client, self.store = client, store
        self.workers = workers
        self.upload_receipts = upload_receipts
        self.receipts = ReceiptUploader(client, store, receipts_root, workers)
        self.finished = 0
        self.lock = threading.Lock()
        self.reported: set[str] = set()  # syncs seen marked to confirm (or settled) while waiting
        self.on_wait = on_wait  # called between polls: the pipeline logs progress
        self.polling: dict[Sync, Polling] = {}  # followed while pushing (start_following)
        self.woken = threading.Condition(self.lock)  # a sync added, or stop
        self.stopping = False
        self.background: threading.Thread | None = None
        self.looked_for_marks = 0.0  # when the store was last asked for webhook marks
        self.without_receipts: set[str] = set()  # syncs this run opened with no receipt
        self.progress: dict[str, int | None] = {}  # open syncs' status code last recorded
        self.list_lengths: dict[str, int] = {}  # company -> entries in its last status list

    # -- following while pushing -----------------------------------------------------------------
    def start_following(self) -> None:
        """Follow every sync `add`ed from now on, on a thread of this follower's own."""
        self.stopping = False
        self.background = threading.Thread(
            target=self.follow_in_background, name="follow-open", daemon=True
        )
        self.background.start()

    def add(self, company_id: str, sync_id: str, receipts: bool = True) -> None:
        """A sync just opened (and in the store): asked about after the first pause. Without
        receipts among its items, its end looks for none to upload (the run's last upload
        round looks for every receipt still waiting anyway)."""
        with self.woken:
            self.polling[(company_id, sync_id)] = Polling(time.monotonic() + FIRST_PAUSE_S)
            if not receipts:
                self.without_receipts.add(sync_id)
            self.woken.notify()

    def stop_following(self) -> None:
        """End the background following after its current round; syncs still open stay open
        in the store (the run's `follow` takes them from there)."""
        with self.woken:
            self.stopping = True
            self.woken.notify()
        if self.background is not None:
            self.background.join()
            self.background = None

    def follow_in_background(self) -> None:
        with ThreadPoolExecutor(self.workers, thread_name_prefix="follow") as pool:
            while True:
                due = self.next_due()
                if due is None:
                    return
                try:
                    still_open = self.settle_round(due, pool)
                except Exception:  # noqa: BLE001 - the run's `follow` meets it again, and fails
                    logger.warning("following syncs while pushing stopped", exc_info=True)
                    return
                self.poll_again(due, still_open)

    def next_due(self) -> list[Sync] | None:
        """Wait until some sync is due (a webhook mark makes one due at once); None: stop."""
        while True:
            with self.woken:
                if self.stopping:
                    return None
                now = time.monotonic()
                soon = now + DUE_SOON_S
                due = [sync for sync, polling in self.polling.items() if polling.due <= soon]
                if due:
                    return due
                soonest = min((p.due for p in self.polling.values()), default=now + 1.0)
                self.woken.wait(min(max(soonest - now, 0.0), WEBHOOK_CHECK_S))
                looked = time.monotonic() - self.looked_for_marks >= WEBHOOK_CHECK_S
                open_ids = [sync_id for _, sync_id in self.polling] if looked else []
            if open_ids:
                self.looked_for_marks = time.monotonic()
                self.due_if_reported(open_ids)

    def due_if_reported(self, open_ids: list[str]) -> None:
        """Syncs a webhook newly marked to confirm (or another process settled) are due now."""
        marked = self.store.reported_or_settled(open_ids)
        with self.woken:
            news, self.reported = marked - self.reported, self.reported | marked
            for sync, polling in self.polling.items():
                if sync[1] in news:
                    polling.due = 0.0

    def poll_again(self, asked: list[Sync], still_open: list[Sync]) -> None:
        with self.woken:
            for sync in set(asked) - set(still_open):
                self.polling.pop(sync, None)
            for sync in still_open:
                polling = self.polling[sync]
                polling.pause = min(polling.pause * 1.5, MAX_PAUSE_S)
                polling.due = time.monotonic() + polling.pause

    def follow(self, syncs: list[tuple[str, str]], timeout_s: float) -> list[tuple[str, str]]:
        """Poll until every sync is final or the time is up; returns the ones still open."""
        deadline = time.monotonic() + timeout_s
        pause, open_syncs = FIRST_PAUSE_S, list(syncs)
        while open_syncs:
            open_syncs = self.settle_round(open_syncs)
            if not open_syncs or time.monotonic() + pause > deadline:
                break
            self.wait(open_syncs, pause)
            pause = min(pause * 1.5, MAX_PAUSE_S)
            self.on_wait(len(open_syncs))
        if open_syncs:
            logger.warning(
                "%d syncs still running after %.0fs; `codat-expenses status refresh` "
                "or the webhook receiver will record how they end",
                len(open_syncs),
                timeout_s,
            )
        return open_syncs

    def wait(self, open_syncs: list[tuple[str, str]], pause: float) -> None:
        """Sleep until the next poll, or less: a sync a webhook newly marked to confirm (or
        another process settled) is read at once. A mark seen before does not wake it again."""
        until = time.monotonic() + pause
        while time.monotonic() < until:
            stopping.pause(min(WEBHOOK_CHECK_S, max(until - time.monotonic(), 0)))
            marked = self.store.reported_or_settled([sync_id for _, sync_id in open_syncs])
            news, self.reported = marked - self.reported, self.reported | marked
            if news:
                return

    def settle_round(
        self, syncs: list[tuple[str, str]], pool: Executor | None = None
    ) -> list[tuple[str, str]]:
        """Ask about every open sync, several at once (each a few requests); the still open.
        Syncs another process settled from Codat meanwhile are done without asking again."""
        settled = self.store.settled([sync_id for _, sync_id in syncs])
        asked = [sync for sync in syncs if sync[1] not in settled]
        for company_id, sync_id in syncs:
            if sync_id in settled:
                # whoever settled it may lack the receipts folder: what still waits goes now
                self.upload_waiting(company_id, sync_id)
        with self.lock:
            self.finished += len(syncs) - len(asked)
        later: list[Sync] = []
        if self.client.quota.tight(len(asked)):  # too few requests left to ask about each alone
            asked, later = oldest_of_each_company(asked, set(self.companies_to_list(asked)))
        if pool is None:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="follow") as own:
                final = self.settle_all(asked, own)
        else:
            final = self.settle_all(asked, pool)
        return [sync for sync, done in zip(asked, final, strict=True) if not done] + later

    def settle_all(self, syncs: list[Sync], pool: Executor) -> list[bool]:
        """`settle` each sync, all at once: a company with several due has its list read, and
        its syncs settled from it; the others are asked about alone meanwhile. The lists are
        waited for here, never on one of the pool's threads (which may all be busy)."""
        lists = {
            company_id: pool.submit(self.company_statuses, company_id)
            for company_id in self.companies_to_list(syncs)
        }
        alone = [sync for sync in syncs if sync[0] not in lists]
        settled_alone = pool.map(lambda sync: self.settle(*sync), alone)  # sent now, read below
        listed = {s.get("syncId"): s for answer in lists.values() for s in answer.result()}
        rest = [sync for sync in syncs if sync[0] in lists]
        settled_rest = pool.map(lambda sync: self.settle(*sync, listed.get(sync[1])), rest)
        final = dict(zip(alone, settled_alone, strict=True))
        final.update(zip(rest, settled_rest, strict=True))
        return [final[sync] for sync in syncs]

    def companies_to_list(self, syncs: list[Sync]) -> list[str]:
        """Companies with several syncs due, whose last list (if any) is short enough for
        them: one list answers them all."""
        due = Counter(company_id for company_id, _ in syncs)
        return [
            company_id
            for company_id, count in due.items()
            if count >= LIST_FROM_DUE
            and self.list_length(company_id) <= count * LIST_ENTRIES_PER_SYNC
        ]

    def list_length(self, company_id: str) -> int:
        """Entries in the company's last list; before one was read, the syncs of it the store
        knows (a company with years of history is not read whole to learn that it has)."""
        with self.lock:
            known = self.list_lengths.get(company_id)
        if known is None:
            known = self.store.company_sync_count(company_id)
            with self.lock:
                self.list_lengths.setdefault(company_id, known)
        return known

    def company_statuses(self, company_id: str) -> list[dict]:
        try:
            statuses = self.client.list_sync_statuses(company_id)
        except QuotaExhausted:
            raise
        except CodatAPIError as error:  # each sync is then asked about alone, as before
            logger.info("the list of syncs of company %s was not read: %s", company_id, error)
            return []
        with self.lock:
            self.list_lengths[company_id] = len(statuses)
        return statuses

    def settle(self, company_id: str, sync_id: str, status: dict | None = None) -> bool:
        """Record the sync's current status (as given, from its company's list, or asked
        for); if final, with its items. True when final."""
        status = status or self.client.get_sync_status(company_id, sync_id)
        code = status.get("syncStatusCode")
        if code in IN_PROGRESS:
            with self.lock:  # the same progress again is not written again
                seen, self.progress[sync_id] = self.progress.get(sync_id), code
            if seen != code:
                self.store.record_sync_status(status)
            return False
        self.record_final(company_id, status)
        with self.lock:
            self.finished += 1
            self.progress.pop(sync_id, None)
        return True

    def record_final(self, company_id: str, status: dict) -> None:
        """A final status with every transaction page from Codat; receipts when this call is
        the one that settled the sync (another process may be settling it at the same time)."""
        sync_id = status["syncId"]
        items = list(self.client.iter_sync_transactions(company_id, sync_id))
        first = self.store.record_sync_outcome(company_id, status, items)
        repeated = {
            i["transactionId"] for i in items if names_itself(i["transactionId"], i.get("message"))
        }
        if repeated:
            settle_processed_before(self.client, self.store, company_id, repeated)
        if self.upload_receipts and first and sync_id not in self.without_receipts:
            self.upload_waiting(company_id, sync_id)

    def upload_waiting(self, company_id: str | None = None, sync_id: str | None = None) -> None:
        """One try for each receipt waiting (uploads.py); what Codat cannot take now stays
        pending in the ledger."""
        if self.upload_receipts:
            self.receipts.upload_waiting(company_id, sync_id)

    def upload_pending(self, company_id: str | None = None) -> int:
        """Every receipt waiting, with a few rounds for those Codat could not take; returns
        how many stay pending (for the next run or `status refresh`)."""
        return self.receipts.upload_pending(company_id) if self.upload_receipts else 0

    def complete_unfinished(self, company_id: str | None = None) -> int:
        """What a crash (or an older version) left half done: final syncs whose items were
        never recorded, repeats not yet checked against Codat, receipts not yet uploaded.
        Returns how many syncs were recorded again."""
        half = self.store.half_recorded_syncs(company_id)
        for company, sync_id in half:
            self.record_final(company, self.client.get_sync_status(company, sync_id))
        unconfirmed: dict[str, set[str]] = {}
        for company, transaction_id in self.store.failed_as_processed_before(company_id):
            unconfirmed.setdefault(company, set()).add(transaction_id)
        for company, ids in unconfirmed.items():
            settle_processed_before(self.client, self.store, company, ids)
        if self.upload_receipts:
            self.upload_pending(company_id)
        return len(half)


def oldest_of_each_company(
    syncs: list[Sync], listed: set[str] = frozenset()
) -> tuple[list[Sync], list[Sync]]:
    """(the first sync of each company, the rest), in the order given (the order they were
    opened). Codat runs a company's syncs one after another, so while its oldest runs the others
    wait: asking about them too would spend scarce quota on answers known in advance. A company
    in `listed` keeps all its syncs: its one list answers them for the price of one request."""
    first: dict[str, Sync] = {}
    for sync in syncs:
        first.setdefault(sync[0], sync)
    asked = set(first.values()) | {sync for sync in syncs if sync[0] in listed}
    return [s for s in syncs if s in asked], [s for s in syncs if s not in asked]
