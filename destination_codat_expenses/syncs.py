"""Following syncs to their end: status with backoff, then every transaction's outcome, then
receipts for the transactions that completed."""

from __future__ import annotations

import logging
import mimetypes
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.errors import CodatAPIError
from destination_codat_expenses.mapping import ID_NAMESPACE, Receipt
from destination_codat_expenses.receipts import read_receipt, why_unread
from destination_codat_expenses.store.status_store import StatusStore

logger = logging.getLogger("airbyte")
IN_PROGRESS = (1000, 1010)
PREVIOUSLY_PROCESSED = "previously been processed"
FIRST_PAUSE_S, MAX_PAUSE_S, WEBHOOK_CHECK_S = 0.2, 5.0, 0.25


class SyncFollower:
    def __init__(
        self,
        client: CodatClient,
        store: StatusStore,
        upload_receipts: bool,
        workers: int = 4,
        receipts_root: str | None = None,
    ) -> None:
        self.client, self.store = client, store
        self.workers = workers
        self.upload_receipts = upload_receipts
        self.receipts_root = receipts_root  # the only folder a receipt path may be read from
        self.finished = 0
        self.lock = threading.Lock()
        self.on_wait = lambda still_open: None  # the pipeline logs progress while syncs run

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
        """Sleep until the next poll, or less: a sync the webhook receiver has already recorded
        as final is picked up at once (its items still come from the API)."""
        until = time.monotonic() + pause
        while time.monotonic() < until:
            time.sleep(min(WEBHOOK_CHECK_S, max(until - time.monotonic(), 0)))
            if self.store.any_final([sync_id for _, sync_id in open_syncs]):
                return

    def settle_round(self, syncs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Ask about every open sync, several at once (each a few requests); the still open."""
        with ThreadPoolExecutor(self.workers, thread_name_prefix="follow") as pool:
            final = list(pool.map(lambda sync: self.settle(*sync), syncs))
        return [sync for sync, done in zip(syncs, final, strict=True) if not done]

    def settle(self, company_id: str, sync_id: str) -> bool:
        """Record the sync's current status; if final, its items too. True when final."""
        status = self.client.get_sync_status(company_id, sync_id)
        self.store.record_sync_status(status)
        if status.get("syncStatusCode") in IN_PROGRESS:
            return False
        self.record_items(company_id, sync_id)
        with self.lock:
            self.finished += 1
        return True

    def record_items(self, company_id: str, sync_id: str) -> None:
        items = list(self.client.iter_sync_transactions(company_id, sync_id))
        self.store.record_sync_items(company_id, sync_id, items)
        done_before = [
            i["transactionId"] for i in items if PREVIOUSLY_PROCESSED in (i.get("message") or "")
        ]
        if done_before:
            self.store.mark_completed_elsewhere(
                company_id,
                done_before,
                "Codat had already processed this transaction id in "
                "an earlier sync (duplication protection); it was not written again.",
            )
        if self.upload_receipts:
            for transaction_id, receipt in self.store.receipts_of(company_id, sync_id).items():
                self.upload(company_id, sync_id, transaction_id, receipt)

    def upload(self, company_id: str, sync_id: str, transaction_id: str, receipt: Receipt) -> None:
        try:
            content = read_receipt(receipt, self.receipts_root)  # checked again: files change
        except (OSError, ValueError) as error:
            self.store.record_attachment(
                company_id,
                transaction_id,
                sync_id,
                receipt.file_name,
                0,
                "rejected",
                f"Receipt could not be read: {why_unread(error)}",
                None,
            )
            return
        content_type = mimetypes.guess_type(receipt.file_name)[0] or "application/octet-stream"
        key = str(
            uuid.uuid5(ID_NAMESPACE, f"{company_id}\x1f{transaction_id}\x1f{receipt.file_name}")
        )
        try:
            answer = self.client.upload_attachment(
                company_id, sync_id, transaction_id, receipt.file_name, content, content_type, key
            )
        except CodatAPIError as error:
            self.store.record_attachment(
                company_id,
                transaction_id,
                sync_id,
                receipt.file_name,
                len(content),
                "failed",
                error.detail or str(error),
                None,
            )
            return
        self.store.record_attachment(
            company_id,
            transaction_id,
            sync_id,
            receipt.file_name,
            len(content),
            "uploaded",
            None,
            answer.get("id"),
        )
