"""One push: ledger first, then Codat, then the ledger again.

Direct flow: one create queues one sync. Datasets flow: each push makes a dataset, and once a
company has `sync_size` transactions in datasets (or at a checkpoint) one sync is initiated for
all of them. "Previously processed" answers are reconciled as completed, never re-sent.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from datetime import UTC, datetime

from destination_codat_expenses.crashpoints import crash_point
from destination_codat_expenses.errors import FatalAPIError
from destination_codat_expenses.mapping import ID_NAMESPACE, MappedTransaction

logger = logging.getLogger("airbyte")
PREVIOUSLY_PROCESSED = "previously been processed"
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
        self.lock = threading.Lock()
        self.pending_datasets: dict[str, list[tuple[str, Batch]]] = defaultdict(list)
        self.syncs_opened = 0

    def push(self, company_id: str, batch: Batch) -> None:
        fresh = self.not_yet_recorded(company_id, batch)
        if not fresh:
            return
        for stream in {s for s, _ in fresh}:
            self.store.mark_sending(company_id, stream, [m for s, m in fresh if s == stream])
        crash_point("before_push")
        if self.config.push_flow == "direct":
            self.push_direct(company_id, fresh)
        else:
            self.push_dataset(company_id, fresh)

    def not_yet_recorded(self, company_id: str, batch: Batch) -> Batch:
        """Completed ids are never pushed again; ids a sync is still carrying wait for it."""
        ledger = self.store.ledger(company_id, [m.transaction_id for _, m in batch])
        keep = []
        for stream, mapped in batch:
            state, recorded_hash = ledger.get(mapped.transaction_id, ("new", None))
            if state in ("completed", "sent"):
                self.pipeline.repeated(stream, mapped, recorded_hash)
            else:
                keep.append((stream, mapped))
        return keep

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
        named = {v.get("itemId") for v in error.validation if v.get("itemId")}
        if PREVIOUSLY_PROCESSED in (error.detail or ""):
            named |= {m.transaction_id for _, m in batch if m.transaction_id in error.detail}
            self.store.mark_completed_elsewhere(
                company_id,
                sorted(named),
                "Codat had already processed this transaction id; "
                "it was recorded by an earlier sync and was not sent again.",
            )
            return [(s, m) for s, m in batch if m.transaction_id not in named]
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
        sync_id = self.client.initiate_sync(
            company_id, dataset_ids, idempotency_key(company_id, "sync", dataset_ids)
        )
        self.opened(company_id, sync_id, batch, "datasets")
        self.store.link_datasets(dataset_ids, sync_id)

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
