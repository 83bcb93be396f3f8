"""`codat-expenses status refresh`: bring the store up to date through the API, so the report
is right even when no webhook arrived and no run waited for its syncs."""

from __future__ import annotations

from dataclasses import dataclass

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.errors import FatalAPIError
from destination_codat_expenses.store import queries
from destination_codat_expenses.store.status_store import StatusStore, record_discovered_sync
from destination_codat_expenses.syncs import SyncFollower


@dataclass
class RefreshReport:
    checked: int = 0
    finished: int = 0
    discovered: int = 0


def refresh(
    client: CodatClient,
    store: StatusStore,
    company_id: str | None = None,
    sync_id: str | None = None,
) -> RefreshReport:
    store.prepare()
    follower = SyncFollower(client, store, upload_receipts=True)
    report = RefreshReport()
    if sync_id:
        details = queries.sync_details(store.path, sync_id)
        if details is None:
            raise LookupError(f"Sync {sync_id} is not in the status store {store.path}.")
        targets = [(details["company_id"], sync_id)]
    else:
        # open syncs, and syncs only a webhook has settled: the API confirms both
        targets = store.open_syncs(company_id) + store.webhook_settled_syncs(company_id)
        companies = [company_id] if company_id else queries.known_companies(store.path)
        report.discovered = sum(discover(client, store, c) for c in companies)
    for company, sync in targets:
        report.checked += 1
        report.finished += follower.settle(company, sync)
    if not sync_id:
        report.finished += follower.complete_unfinished(company_id)
    return report


def discover(client: CodatClient, store: StatusStore, company_id: str) -> int:
    """Record the company's syncs that Codat has and the store does not; returns how many."""
    try:
        statuses = client.list_sync_statuses(company_id)
    except FatalAPIError as error:
        if error.status == 404:
            return 0
        raise
    known = store.known_sync_ids(company_id)
    follower = SyncFollower(client, store, upload_receipts=True)
    fresh = [s for s in statuses if s.get("syncId") and s["syncId"] not in known]
    for status in fresh:
        record_discovered_sync(store, company_id, status)
        if status.get("syncStatusCode") in (1000, 1010):
            store.record_sync_status(status)
        else:
            follower.record_final(company_id, status)
    return len(fresh)
