"""Records in, expenses recorded once: route by company, batch, push, checkpoint.

    accept(stream, data)   map one record (or store why not) and buffer it for its company
    mark()                 a STATE came: push every buffer without waiting; its ticket
    covered(ticket)        every push before that STATE is in the ledger: it may be echoed
    checkpoint()           push every buffer and wait until Codat accepted each push and the
                           store committed it
    finish()               checkpoint, then follow this run's own syncs to their end (those it
                           opened or reconciled, and those a killed run left open), not those
                           of other runs that ended

With `wait_for_syncs`, syncs are followed from the moment they open, while pushing goes on
(follow.py); `finish` waits, within `sync_wait_timeout_seconds`, for those still open.

Pushes go out per company: up to `concurrency` in flight for each company (Codat allows 10
concurrent requests per company; the client narrows a company's share after a 429, see
codat/client.py), and at most MAX_IN_FLIGHT in all. The reading thread never waits for the
store: it reserves a batch's ids from memory (Pusher.reserve, in the order records came) and
queues it on its company's lane; a push thread reads the ledger for it (Pusher.confirm), marks
it `sending` and pushes it.

The ledger makes pushes safe to repeat: ids are committed as `sending` before a push leaves,
pushes carry a deterministic Idempotency-Key, completed ids are never pushed again, failed ids
are pushed again under the same id, and rows a crash left `sending` are looked up in Codat
before anything is pushed (see reconcile.py). The pushing itself is pushes.py; what became of
each record (accepted, rejected, repeated) is counted in outcomes.py, which the push threads
report to as well.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace

from destination_codat_expenses import stopping
from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.companies import Companies
from destination_codat_expenses.company_names import remember_company
from destination_codat_expenses.config import Config
from destination_codat_expenses.errors import RecordError, TooManyRejectsError
from destination_codat_expenses.follow import SyncFollower
from destination_codat_expenses.mapping import MappedTransaction, map_record, receipt_field
from destination_codat_expenses.outcomes import Outcomes
from destination_codat_expenses.pushes import Batch, Pusher, PushSettings
from destination_codat_expenses.receipts import ReceiptProblem, resolve_receipt_path
from destination_codat_expenses.reconcile import reconcile_in_flight
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.streams import kind_of, map_family
from destination_codat_expenses.values import canonical_uuid

logger = logging.getLogger("airbyte")
PROGRESS_EVERY_S = 10.0
MAX_IN_FLIGHT = 40  # pushes in flight across all companies: 4 companies at Codat's 10 each
QUEUED_PER_PUSH = 2  # batches read ahead per push in flight: bounded memory
FOLLOW_WORKERS = MAX_IN_FLIGHT  # syncs asked about at once: at Codat's latency, many


@dataclass
class Lane:
    """One company's pushes: its batches waiting, in the order they were reserved, and how many
    push threads drain them (at most `concurrency`)."""

    waiting: deque[tuple[int, Batch]] = field(default_factory=deque)  # (batch number, batch)
    running: int = 0


class Pipeline:
    def __init__(
        self, config: Config, client: CodatClient, store: StatusStore, run_id: str | None = None
    ) -> None:
        self.config, self.client, self.store = config, client, store
        self.run_id = run_id or str(uuid.uuid4())
        self.started = time.monotonic()
        self.outcomes = Outcomes()
        self.companies = Companies(client, lambda info: remember_company(client, store, info))
        self.buffers: dict[str, Batch] = defaultdict(list)
        self.pool = ThreadPoolExecutor(MAX_IN_FLIGHT, thread_name_prefix="push")
        self.in_flight: list[Future] = []  # the lanes' push threads
        self.batches_queued = 0  # batches put on a lane so far: the last one's number
        self.batches_open: set[int] = set()  # numbers of the batches not yet in the ledger
        self.push_failure: BaseException | None = None  # the first a push thread met
        self.lanes: dict[str, Lane] = defaultdict(Lane)
        self.lanes_lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_IN_FLIGHT * QUEUED_PER_PUSH)
        self.follower = SyncFollower(
            client,
            store,
            config.upload_receipts,
            FOLLOW_WORKERS,
            config.receipts_root,
            on_wait=lambda still_open: self.maybe_log_progress(),
        )
        self.pusher = Pusher(
            client,
            store,
            PushSettings.of(config),
            self.companies,
            self.outcomes,
            self.run_id,
            on_opened=self.follower.add if config.wait_for_syncs else lambda c, s, r: None,
        )
        self.last_progress = time.monotonic()
        self.settled_before = 0  # this run's syncs already final when it began following them

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.prepare()
        self.store.start_run(self.run_id, self.config.redacted())
        reconcile_in_flight(self.client, self.store, self.run_id)
        # rows a dead process of a fleet left `sending` that Codat does not have: taken over by
        # this run (shared store only), so pushing them is its job, whatever its records are
        for company_id, stream, mapped in self.store.taken_over():
            self.buffer(company_id, stream, mapped)
        self.follower.complete_unfinished()
        if self.config.wait_for_syncs:
            self.follower.start_following()
        self.pusher.versions.release_held()  # changes held behind a push that has ended since

    def accept(self, stream: str, data: dict) -> None:
        try:
            mapped, company_id = self.mapped(stream, data)
        except RecordError as error:
            self.outcomes.rejected(stream, error)
            return
        self.outcomes.accepted()
        self.buffer(company_id, stream, mapped)
        self.maybe_log_progress()

    def refuse(self, stream: str, error: RecordError) -> None:
        """Input refused before mapping (a line that could not be read, a stream not in the
        catalog): read and rejected like a bad record, and counted toward max_rejected_share."""
        self.outcomes.rejected(stream, error)

    def checkpoint(self) -> None:
        """Push everything read so far, wait until it is all in the ledger, count a checkpoint."""
        self.push_all()
        self.checkpointed()

    def push_all(self) -> None:
        """Push everything read so far and wait until it is all in the ledger."""
        self.push_buffers()
        self.drain()
        self.pusher.initiate_pending_datasets()

    def mark(self) -> int:
        """A STATE came: push every buffer, without waiting; returns the STATE's ticket (the
        last batch it covers) for `covered`. Reading goes on while those pushes are made: a
        source that sends a STATE every few records no longer waits for a round trip to Codat
        at each one. (The datasets flow initiates its syncs at a checkpoint: it waits.)"""
        if self.config.push_flow == "direct":
            self.push_buffers()
        else:
            self.push_all()  # the STATE's echo counts the checkpoint (`checkpointed`)
        return self.batches_queued

    def covered(self, ticket: int) -> bool:
        """Whether every batch up to `ticket` is in the ledger as sent (or needed no push);
        raises what a push met that the run cannot go on from."""
        with self.lanes_lock:
            if self.push_failure is not None:
                raise self.push_failure
            return all(batch > ticket for batch in self.batches_open)

    def checkpointed(self) -> None:
        """A STATE is about to be echoed: the rejects of the records it covers are stored."""
        self.store_rejects()
        self.outcomes.checkpointed()

    def push_buffers(self) -> None:
        for company_id in list(self.buffers):
            self.submit(company_id)

    def finish(self) -> None:
        self.checkpoint()
        self.companies.finish()  # every company's name recorded for the report
        if self.config.wait_for_syncs:
            self.follower.stop_following()  # what it has not settled is open in the store
            # its own syncs, and those a killed run left open (nobody else waits for them); a
            # finished run's sync (another company's long one, say) is not this run's to wait for
            own = self.store.open_syncs(run_id=self.run_id)
            own += self.store.left_open_by_unfinished_runs(self.run_id)
            settled = self.store.settled_count(self.run_id)
            self.settled_before = max(settled - self.follower.finished, 0)
            self.follower.follow(own, self.config.sync_wait_timeout_seconds)
            if self.pusher.versions.release_held():  # changes held behind the syncs just ended
                own = self.store.open_syncs(run_id=self.run_id)
                self.follower.follow(own, self.config.sync_wait_timeout_seconds)
        self.follower.upload_pending()  # every completed transaction's receipt, however it ended
        self.check_reject_share()
        self.close("succeeded")

    def follow_opened(self) -> None:
        """Pushing stopped for want of Codat's quota (codat/quota.py): once no push is left in
        flight, the syncs this run opened are followed, with the quota kept for them and within
        the run's timeout, so the store says how each of them ended."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        if not self.config.wait_for_syncs:
            return
        self.follower.stop_following()
        own = self.store.open_syncs(run_id=self.run_id)
        self.follower.follow(own, self.config.sync_wait_timeout_seconds)

    def close(self, outcome: str, error: str | None = None) -> None:
        """Record how the run ended (`error` says why a failed run failed, in words without
        secrets), with the rejects not yet stored, whatever else goes wrong."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.companies.close()
        self.follower.stop_following()
        try:
            self.store_rejects()
        finally:
            tally = self.outcomes.snapshot()
            counts = {
                "in": tally.read,
                "accepted": tally.accepted,
                "rejected": tally.rejected,
                "checkpoints": tally.checkpoints,
            }
            self.store.finish_run(self.run_id, counts, outcome, error)
        logger.info("run %s %s: %s", self.run_id, outcome, self.progress_line())

    def store_rejects(self) -> None:
        self.outcomes.store_rejects(lambda rejects: self.store.record_rejects(self.run_id, rejects))

    # -- records --------------------------------------------------------------------------------
    def mapped(self, stream: str, data: dict) -> tuple[MappedTransaction, str]:
        kind = kind_of(stream)  # streams.py: which kind of transaction the stream carries
        if kind.mapper is not None:
            mapped = map_family(kind, data, stream, self.config.mapping)
        else:
            mapped = self.receipt_checked(map_record(data, stream, self.config.mapping))
        company_id = self.company_of(data, mapped.source_key)
        return mapped, company_id

    def receipt_checked(self, mapped: MappedTransaction) -> MappedTransaction:
        """A receipt path must name a file inside receipts_root now (the upload checks again).
        With uploads off no receipt is kept, so nothing is ever read."""
        receipt = mapped.receipt
        if receipt is None:
            return mapped
        if not self.config.upload_receipts:
            return replace(mapped, receipt=None)
        if receipt.path is not None:
            try:
                resolve_receipt_path(self.config.receipts_root, receipt.path)
            except ReceiptProblem as problem:
                field_name = f"{receipt_field(self.config.mapping)}.{problem.part}"
                raise RecordError(mapped.source_key, field_name, str(problem)) from None
        return mapped

    def company_of(self, data: dict, record_key: str) -> str:
        """The record's company; Codat is asked about it in the background (its first push
        waits for the answer: `submit`). A company Codat said it does not have is refused here."""
        if self.config.company_id:
            company_id = self.config.company_id
        else:
            field_name = self.config.company_id_field
            raw = data.get(field_name)
            company_id = canonical_uuid(str(raw)) if raw else None
            if company_id is None:
                raise RecordError(record_key, field_name, "must hold a Codat company id (UUID)")
        info = self.companies.known(company_id)
        if info is not None and not info.exists:
            raise self.missing(record_key, company_id)
        self.companies.learn(company_id)
        return company_id

    def missing(self, record_key: str, company_id: str) -> RecordError:
        return RecordError(
            record_key,
            self.config.company_id_field or "company_id",
            f"names company {company_id}, which does not exist in Codat",
        )

    def buffer(self, company_id: str, stream: str, mapped: MappedTransaction) -> None:
        """Queue for the company's next push. Repeats are judged when the batch is claimed
        (Pusher.claim), each against the content recorded first for its id."""
        batch = self.buffers[company_id]
        batch.append((stream, mapped))
        if len(batch) >= self.config.batch_size:
            self.submit(company_id)

    # -- pushing --------------------------------------------------------------------------------
    def submit(self, company_id: str) -> None:
        """Reserve the company's buffer (memory only: the reading thread never waits for the
        store) and queue it on the company's lane, which a push thread drains."""
        batch = self.buffers.pop(company_id, [])
        if not batch or not self.exists(company_id, batch):
            return
        while not self.slots.acquire(timeout=stopping.POLL_S):  # bounded memory: reading
            stopping.check()  # waits while pushes are behind
        reserved = self.pusher.reserve(company_id, batch)
        if not reserved:
            self.slots.release()
            return
        with self.lanes_lock:
            self.batches_queued += 1
            self.batches_open.add(self.batches_queued)
            lane = self.lanes[company_id]
            lane.waiting.append((self.batches_queued, reserved))
            if lane.running >= self.config.concurrency:
                return  # a push thread of the company takes it when its push is done
            lane.running += 1
        self.in_flight = [f for f in self.in_flight if not f.done() or f.exception()]
        self.in_flight.append(self.pool.submit(self.push_lane, company_id, lane))

    def exists(self, company_id: str, batch: Batch) -> bool:
        """Whether Codat has the company (waits for its answer); if not, the batch's records,
        accepted when the answer was not in yet, are rejects."""
        if self.companies.info(company_id).exists:
            return True
        for stream, mapped in batch:
            self.outcomes.withdrawn(stream, self.missing(mapped.source_key, company_id))
        return False

    def push_lane(self, company_id: str, lane: Lane) -> None:
        """Push the lane's batches one after another until none waits (a push thread)."""
        try:
            while True:
                with self.lanes_lock:
                    if not lane.waiting:
                        lane.running -= 1
                        return
                    batch, reserved = lane.waiting.popleft()
                try:
                    self.pusher.send(company_id, self.pusher.confirm(company_id, reserved))
                finally:
                    self.slots.release()
                with self.lanes_lock:
                    self.batches_open.discard(batch)
        except BaseException as error:
            with self.lanes_lock:
                lane.running -= 1
                self.push_failure = self.push_failure or error
            raise

    def drain(self) -> None:
        pending, self.in_flight = self.in_flight, []
        for future in pending:
            while not future.done():
                wait([future], timeout=stopping.POLL_S)
                stopping.check()
            future.result()  # re-raises the first push that could not be made

    # -- reporting ------------------------------------------------------------------------------
    def maybe_log_progress(self) -> None:
        if time.monotonic() - self.last_progress >= PROGRESS_EVERY_S:
            self.last_progress = time.monotonic()
            logger.info("progress: %s", self.progress_line())

    def progress_line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        tally = self.outcomes.snapshot()
        return (
            f"{tally.read} read, {tally.accepted} accepted, {tally.rejected} rejected, "
            f"{tally.repeated} repeated, {self.pusher.syncs_opened} syncs opened, "
            f"{self.settled_before + self.follower.finished} finished, "
            f"{tally.read / elapsed:.0f} records/s{self.client.quota.said()}"
        )

    def check_reject_share(self) -> None:
        tally = self.outcomes.snapshot()
        if tally.rejected_share > self.config.max_rejected_share:
            raise TooManyRejectsError(
                f"{tally.rejected} of {tally.read} records were rejected as bad "
                f"input ({tally.rejected_share:.1%}), more than the allowed "
                f"{self.config.max_rejected_share:.1%}; see the rejects table in the status "
                "store for each record's reason."
            )
