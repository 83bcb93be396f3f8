"""Retry a sync's failed items: the same transaction ids, in a new push, recorded as a retry of
the old sync and followed to its end. Completed ids are never pushed again (Codat's rule and
ours), so retrying can never write an expense twice. The report's button calls this too."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.companies import learn_company
from destination_codat_expenses.errors import AlreadyProcessed, CodatExpensesError, FatalAPIError
from destination_codat_expenses.pushes import idempotency_key, sync_record
from destination_codat_expenses.reconcile import settle_processed_before
from destination_codat_expenses.store import queries
from destination_codat_expenses.store.status_store import StatusStore
from destination_codat_expenses.syncs import SyncFollower

BATCH = 50


class NothingToRetry(CodatExpensesError):
    """The sync has no failed item that may be pushed again; the message says why."""


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
    result = RetryResult(plan)
    info = learn_company(client, plan.company_id)
    for start in range(0, len(plan.items), BATCH):
        sync_id = push_again(client, store, plan, plan.items[start : start + BATCH], info)
        if sync_id:
            result.new_sync_ids.append(sync_id)
    follower = SyncFollower(client, store, upload_receipts=True)
    open_syncs = follower.follow([(plan.company_id, s) for s in result.new_sync_ids], wait_s)
    result.still_open = [s for _, s in open_syncs]
    return result


def push_again(
    client: CodatClient, store: StatusStore, plan: RetryPlan, items: list[dict], info
) -> str | None:
    ids = [i["transaction_id"] for i in items]
    store.mark_retrying(plan.company_id, ids)
    key = idempotency_key(plan.company_id, f"retry:{plan.sync_id}", ids)
    try:
        sync_id = client.create_expense_transactions(
            plan.company_id, [i["payload"] for i in items], key
        )
    except AlreadyProcessed as error:
        return push_unprocessed(client, store, plan, items, info, error.ids)
    except FatalAPIError as error:
        for transaction_id in ids:  # Codat refused for good: failed again, not in flight
            store.mark_refused(plan.company_id, transaction_id, error.detail or str(error))
        raise
    record_retry_sync(store, plan, items, info, sync_id)
    return sync_id


def push_unprocessed(
    client: CodatClient, store: StatusStore, plan: RetryPlan, items: list[dict], info, named
) -> str | None:
    """Codat says some of these ids were processed before: each is completed only where Codat
    lists it so; the others of the batch are pushed again without them."""
    named = {i["transaction_id"] for i in items if i["transaction_id"] in named}
    if not named:
        raise NothingToRetry("Codat refused the retry as processed before, naming no item of it.")
    settle_processed_before(client, store, plan.company_id, named)
    rest = [i for i in items if i["transaction_id"] not in named]
    return push_again(client, store, plan, rest, info) if rest else None


def record_retry_sync(store: StatusStore, plan: RetryPlan, items: list[dict], info, sync_id):
    ids = [i["transaction_id"] for i in items]
    dates = [datetime.fromisoformat(i["payload"]["issueDate"]).date() for i in items]
    record = sync_record(sync_id, info, dates, flow="direct", retry_of=plan.sync_id)
    store.mark_sent(plan.company_id, ids, record)
