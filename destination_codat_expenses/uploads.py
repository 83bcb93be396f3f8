"""Receipts are durable work: each receipt of a completed transaction ends uploaded, refused
for good with the reason, or pending in the ledger until it can be uploaded; none is dropped.

- uploaded: Codat took it (its attachment id is recorded); the ledger's copy is cleared.
- refused: Codat refused it for good (a FatalAPIError: too large, the platform takes no
  attachments, the transaction is not completed in that sync...), recorded with Codat's reason.
- rejected: it could not be read here (the file changed since it was accepted), with why.
- pending: Codat could not take it now (429 or 5xx once the client's attempts are spent, no
  connection, or an answer about the key or an upload still in flight rather than about the
  receipt: 401, 403, 409). The receipt stays in the ledger, its attachment row says why, and it
  is tried again: a few more rounds with growing pauses before the run ends, then by the next
  run and by `codat-expenses status refresh`.

Every upload of one receipt carries the same Idempotency-Key, so an upload whose answer was
lost and is sent again gets Codat's first answer back instead of a second attachment.
"""

from __future__ import annotations

import logging
import mimetypes
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.errors import CodatAPIError, FatalAPIError
from destination_codat_expenses.mapping import ID_NAMESPACE, Receipt
from destination_codat_expenses.models import PENDING, REFUSED, REJECTED, UPLOADED
from destination_codat_expenses.receipts import read_receipt, why_unread
from destination_codat_expenses.store.status_store import StatusStore

logger = logging.getLogger("airbyte")
PAUSES_S = (1.0, 2.0, 4.0)  # between the rounds for receipts left pending, within one run
NOT_ABOUT_THE_RECEIPT = frozenset({401, 403, 409})  # the key, or the same upload in flight


@dataclass(frozen=True)
class Waiting:
    """A completed transaction's receipt, waiting in the ledger for its upload."""

    company_id: str
    transaction_id: str
    sync_id: str  # the sync that completed the transaction: the upload goes under it
    receipt: Receipt


def is_for_good(error: CodatAPIError) -> bool:
    """Whether Codat refused the upload itself (not: it could not take it now)."""
    return isinstance(error, FatalAPIError) and error.status not in NOT_ABOUT_THE_RECEIPT


def upload_key(company_id: str, transaction_id: str, file_name: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{company_id}\x1f{transaction_id}\x1f{file_name}"))


class ReceiptUploader:
    def __init__(
        self,
        client: CodatClient,
        store: StatusStore,
        receipts_root: str | None = None,
        workers: int = 4,
        pauses_s: tuple[float, ...] = PAUSES_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client, self.store = client, store
        self.receipts_root = receipts_root  # the only folder a receipt path may be read from
        self.workers = workers
        self.pauses_s, self.sleep = pauses_s, sleep

    def waiting(self, company_id: str | None = None, sync_id: str | None = None) -> list[Waiting]:
        """What the ledger holds for upload; a receipt path only when this process may read
        the receipts folder (the others stay pending for a process that may)."""
        found = [Waiting(*row) for row in self.store.receipts_waiting(company_id, sync_id)]
        return [w for w in found if w.receipt.path is None or self.receipts_root is not None]

    def upload_waiting(self, company_id: str | None = None, sync_id: str | None = None) -> None:
        """One try for each waiting receipt (one sync's, as its outcome is recorded)."""
        for item in self.waiting(company_id, sync_id):
            self.upload(item)

    def upload_pending(self, company_id: str | None = None) -> int:
        """Every waiting receipt, several at once; those Codat could not take are tried again
        after each pause. Returns how many are still pending (kept for a later try)."""
        tally: Counter[str] = Counter()
        left = self.upload_all(self.waiting(company_id), tally)
        for pause in self.pauses_s:
            if not left:
                break
            self.sleep(pause)
            left = self.upload_all(left, tally)
        tally[PENDING] = len(left)  # a receipt tried in several rounds counts once
        if any(tally.values()):
            said = ", ".join(f"{n} {what}" for what, n in tally.items() if n)
            logger.info("receipts of completed transactions: %s", said)
        if left:
            logger.warning(
                "%d receipts are still pending: Codat could not take them now (the reason is "
                "in each one's attachment row). They stay in the ledger; the next run or "
                "`codat-expenses status refresh` uploads them.",
                len(left),
            )
        return len(left)

    def upload_all(self, items: list[Waiting], tally: Counter[str]) -> list[Waiting]:
        """Upload each, counting the outcomes in `tally`; returns the ones left pending."""
        if not items:
            return []
        with ThreadPoolExecutor(min(self.workers, len(items)), "upload") as pool:
            outcomes = list(pool.map(self.upload, items))
        tally.update(outcome for outcome in outcomes if outcome != PENDING)
        return [item for item, outcome in zip(items, outcomes, strict=True) if outcome == PENDING]

    def upload(self, item: Waiting) -> str:
        """Try once; record and return the outcome (UPLOADED, PENDING, REFUSED or REJECTED)."""
        receipt = item.receipt
        try:
            content = read_receipt(receipt, self.receipts_root)  # checked again: files change
        except (OSError, ValueError) as error:
            self.record(item, 0, REJECTED, f"Receipt could not be read: {why_unread(error)}")
            return REJECTED
        content_type = mimetypes.guess_type(receipt.file_name)[0] or "application/octet-stream"
        key = upload_key(item.company_id, item.transaction_id, receipt.file_name)
        try:
            answer = self.client.upload_attachment(
                item.company_id,
                item.sync_id,
                item.transaction_id,
                receipt.file_name,
                content,
                content_type,
                key,
            )
        except CodatAPIError as error:
            if is_for_good(error):
                self.record(item, len(content), REFUSED, error.detail or str(error))
                return REFUSED
            self.record(item, len(content), PENDING, f"Not uploaded yet, tried again: {error}")
            return PENDING
        self.record(item, len(content), UPLOADED, None, (answer or {}).get("id"))
        return UPLOADED

    def record(
        self,
        item: Waiting,
        size: int,
        status: str,
        message: str | None,
        attachment_id: str | None = None,
    ) -> None:
        self.store.record_attachment(
            item.company_id,
            item.transaction_id,
            item.sync_id,
            item.receipt.file_name,
            size,
            status,
            message,
            attachment_id,
        )
