"""One push: claim, ledger first, then Codat, then the ledger again.

An id is claimed before its push: an id this run is still pushing (its answer not yet in the
ledger) is a repeat, like one the ledger has as sent or completed, so two pushes in flight never
carry one id (Codat would refuse the second as processed before, with every other item of its
sync). Direct flow: one create queues one sync. Datasets flow: each push makes a dataset, and
once a company has `sync_size` transactions in datasets (or at a checkpoint) one sync is
initiated for all of them; their claims last until then. A "previously processed" refusal is
checked id by id against Codat's transaction statuses (reconcile.find_completions).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime

from destination_codat_expenses.crashpoints import crash_point
from destination_codat_expenses.errors import AlreadyProcessed, FatalAPIError
from destination_codat_expenses.mapping import ID_NAMESPACE, MappedTransaction
from destination_codat_expenses.reconcile import settle_processed_before

logger = logging.getLogger("airbyte")
Batch = list[tuple[str, MappedTransaction]]


def idempotency_key(company_id: str, purpose: str, parts: list[str]) -> str:
    """The same push always carries the same key, so a repeat within 90 minutes is replayed."""
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join([company_id, purpose, *parts])))


def sync_record(sync_id: str, info, dates: list, **extra) -> dict:
    """What the store keeps about a sync this process opened (run, retry_of, flow in extra)."""
    return {
        "sync_id": sync_id,
        "initiated_at": datetime.now(UTC),
        "source_platform": info.source_platform,
        "target_platform": info.target_platform,
        "expenses_from": min(dates),
        "expenses_to": max(dates),
        "config_snapshot": info.config,
        **extra,
    }


class Pusher:
    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.client, self.store = pipeline.client, pipeline.store
        self.config = pipeline.config
        self.lock = threading.RLock()  # claim() reports repeats to the pipeline, which takes it
        self.in_flight: dict[tuple[str, str], str] = {}  # (company, id) -> payload hash
        self.pending_datasets: dict[str, list[tuple[str, Batch]]] = defaultdict(list)
        self.syncs_opened = 0

    def push(self, company_id: str, batch: Batch) -> None:
        fresh = self.claim(company_id, batch)
        if not fresh:
            return
        try:
            for stream in {s for s, _ in fresh}:
                self.store.mark_sending(company_id, stream, [m for s, m in fresh if s == stream])
            crash_point("before_push")
            if self.config.push_flow == "direct":
                self.push_direct(company_id, fresh)
            else:
                self.push_dataset(company_id, fresh)
        except BaseException:
            self.release(company_id, fresh)
            raise
        if self.config.push_flow == "direct":
            self.release(company_id, fresh)

    def claim(self, company_id: str, batch: Batch) -> Batch:
        """The ids of `batch` this push may carry: not in flight in this run, not sent or
        completed in the ledger, first in the batch. Every other occurrence is a repeat, judged
        against the content recorded first for its id (same: skipped; other: a conflict)."""
        with self.lock:
            ledger = self.store.ledger(company_id, [m.transaction_id for _, m in batch])
            first: dict[str, str] = {}  # id -> the payload hash every repeat is judged by
            keep = []
            for stream, mapped in batch:
                tid = mapped.transaction_id
                if tid not in first:
                    first[tid] = self.recorded_hash(company_id, tid, ledger)
                    if first[tid] is None:
                        first[tid] = self.in_flight[(company_id, tid)] = mapped.payload_hash
                        keep.append((stream, mapped))
                        continue
                self.pipeline.repeated(stream, mapped, first[tid])
            return keep

    def recorded_hash(self, company_id: str, tid: str, ledger: dict) -> str | None:
        """The content already on its way to Codat for this id, if any: in flight in this run,
        or sent or completed in the ledger. None: the id may be pushed."""
        if (company_id, tid) in self.in_flight:
            return self.in_flight[(company_id, tid)]
        state, recorded = ledger.get(tid, ("new", None))
        return recorded if state in ("completed", "sent") else None

    def release(self, company_id: str, batch: Batch) -> None:
        """The push's outcome is in the ledger now (or it failed): the ledger judges repeats."""
        with self.lock:
            for _, mapped in batch:
                self.in_flight.pop((company_id, mapped.transaction_id), None)

    # -- direct flow ----------------------------------------------------------------------------
    def push_direct(self, company_id: str, batch: Batch) -> None:
        items = [m.body for _, m in batch]
        key = idempotency_key(company_id, "create", [m.payload_hash for _, m in batch])
        try:
            sync_id = self.client.create_expense_transactions(company_id, items, key)
        except FatalAPIError as error:
            remaining = self.settle_refusal(company_id, batch, error)
            if remaining and len(remaining) < len(batch):
                self.push_direct(company_id, remaining)
            return
        crash_point("after_response")
        self.opened(company_id, sync_id, batch, "direct")

    def settle_refusal(self, company_id: str, batch: Batch, error: FatalAPIError) -> Batch:
        """Resolve what Codat refused item by item; return what may still be pushed."""
        if error.status != 400:
            raise error
        if isinstance(error, AlreadyProcessed):
            named = {m.transaction_id for _, m in batch if m.transaction_id in error.ids}
            if not named:
                raise error
            settle_processed_before(self.client, self.store, company_id, named)
            return [(s, m) for s, m in batch if m.transaction_id not in named]
        named = {v.get("itemId") for v in error.validation if v.get("itemId")}
        refused = [(s, m) for s, m in batch if m.transaction_id in named]
        if not refused:
            raise error
        for stream, mapped in refused:
            reasons = "; ".join(
                v.get("message") or ""
                for v in error.validation
                if v.get("itemId") == mapped.transaction_id
            )
            self.pipeline.reject_refused(stream, mapped, company_id, reasons)
        return [(s, m) for s, m in batch if m.transaction_id not in named]

    # -- datasets flow --------------------------------------------------------------------------
    def push_dataset(self, company_id: str, batch: Batch) -> None:
        items = [m.body for _, m in batch]
        key = idempotency_key(company_id, "dataset", [m.payload_hash for _, m in batch])
        dataset_id = self.client.create_expense_dataset(company_id, items, key)
        crash_point("after_response")
        self.store.mark_dataset(company_id, dataset_id, self.pipeline.run_id, len(batch))
        with self.lock:
            self.pending_datasets[company_id].append((dataset_id, batch))
            waiting = sum(len(b) for _, b in self.pending_datasets[company_id])
        if waiting >= self.config.sync_size:
            self.initiate(company_id)

    def initiate_pending_datasets(self) -> None:
        for company_id in list(self.pending_datasets):
            self.initiate(company_id)

    def initiate(self, company_id: str) -> None:
        with self.lock:
            pending = self.pending_datasets.pop(company_id, [])
        if not pending:
            return
        dataset_ids = [d for d, _ in pending]
        batch = [item for _, b in pending for item in b]
        try:
            sync_id = self.client.initiate_sync(
                company_id, dataset_ids, idempotency_key(company_id, "sync", dataset_ids)
            )
            self.opened(company_id, sync_id, batch, "datasets")
            self.store.link_datasets(dataset_ids, sync_id)
        finally:
            self.release(company_id, batch)

    # -- bookkeeping ----------------------------------------------------------------------------
    def opened(self, company_id: str, sync_id: str, batch: Batch, flow: str) -> None:
        info = self.pipeline.company(company_id)
        record = sync_record(
            sync_id, info, [m.issue_date for _, m in batch], flow=flow, run_id=self.pipeline.run_id
        )
        self.store.mark_sent(company_id, [m.transaction_id for _, m in batch], record)
        with self.lock:
            self.syncs_opened += 1
        logger.info(
            "sync %s opened for company %s with %d transactions (%s flow)",
            sync_id,
            company_id,
            len(batch),
            flow,
        )
