"""Retry a sync's failed items: the same transaction ids, in a new push, recorded as a retry of
the old sync and followed to its end. Completed ids are never pushed again (Codat's rule and
ours), so retrying can never write an expense twice. The push is the one push path
(pushes.Pusher), which claims, marks, keys and settles a retry as it does a run's records.
The report's button calls this too."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.companies import Companies
from destination_codat_expenses.company_names import remember_company
from destination_codat_expenses.errors import NothingToRetry
from destination_codat_expenses.follow import SyncFollower
from destination_codat_expenses.outcomes import Outcomes
from destination_codat_expenses.pushes import Batch, LedgerItem, Pusher, PushSettings
from destination_codat_expenses.store import queries
from destination_codat_expenses.store.status_store import StatusStore

BATCH = 50


@dataclass
class RetryPlan:
    sync_id: str
    company_id: str
    items: list[dict] = field(default_factory=list)  # {transaction_id, payload, message, ...}


@dataclass
class RetryResult:
    plan: RetryPlan
    new_sync_ids: list[str] = field(default_factory=list)
    still_open: list[str] = field(default_factory=list)


def plan_retry(store: StatusStore, sync_id: str, only: list[str] | None = None) -> RetryPlan:
    details = queries.sync_details(store.path, sync_id)
    if details is None:
        raise NothingToRetry(f"Sync {sync_id} is not in the status store.")
    items = queries.retryable_items(store.path, sync_id)
    if only:
        wanted = {t.lower() for t in only}
        unknown = wanted - {i["transaction_id"] for i in items}
        if unknown:
            raise NothingToRetry(
                f"Sync {sync_id} has no failed item {', '.join(sorted(unknown))}"
                " that may be retried (completed or not in this sync)."
            )
        items = [i for i in items if i["transaction_id"] in wanted]
    if not items:
        raise NothingToRetry(
            f"Sync {sync_id} has no failed items to retry: every item completed "
            "or was already completed by a later sync."
        )
    return RetryPlan(sync_id, details["company_id"], items)


def run_retry(
    client: CodatClient, store: StatusStore, plan: RetryPlan, wait_s: float = 600
) -> RetryResult:
    """Push the plan's items again (same ids), record each new sync as a retry, follow them."""
    companies = Companies(client, lambda info: remember_company(client, store, info))
    try:
        companies.info(plan.company_id)  # a refused key or address fails here, before any push
        settings = PushSettings.retry(plan.sync_id)
        pusher = Pusher(client, store, settings, companies, Outcomes(), run_id=None)
        batch = ledger_items(store, plan)
        for start in range(0, len(batch), BATCH):
            pusher.push(plan.company_id, batch[start : start + BATCH])
        companies.finish()
    finally:
        companies.close()
    result = RetryResult(plan, new_sync_ids=list(pusher.opened_syncs))
    follower = SyncFollower(client, store, upload_receipts=True)
    open_syncs = follower.follow([(plan.company_id, s) for s in result.new_sync_ids], wait_s)
    result.still_open = [s for _, s in open_syncs]
    return result


def ledger_items(store: StatusStore, plan: RetryPlan) -> Batch:
    """The plan's items as the ledger holds them: payload as first pushed, and its hash."""
    ids = [i["transaction_id"] for i in plan.items]
    hashes = {tid: digest for tid, (_, digest) in store.ledger(plan.company_id, ids).items()}
    return [
        (
            item["source_stream"],
            LedgerItem(
                item["transaction_id"],
                item["source_key"],
                item["payload"],
                hashes[item["transaction_id"]],
                payload_date(item["payload"]),
            ),
        )
        for item in plan.items
    ]


def payload_date(payload: dict) -> date:
    """An expense or reimbursable carries `issueDate`; a transfer or adjustment `date`."""
    return datetime.fromisoformat(payload.get("issueDate") or payload["date"]).date()
