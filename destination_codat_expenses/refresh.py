"""`codat-expenses status refresh`: bring the store up to date through the API, so the report
is right even when no webhook arrived, no run waited for its syncs, and the receiver had no key
to confirm what its webhooks reported.

One company's or one sync's error never stops the others: each is tried, and the report names
what could not be refreshed and why. A sync Codat answers 404 for (a validly signed webhook for
a sync Codat does not know, say) is settled as "not found at Codat", so it is not asked about
again. First, one company-list call proves the key and the address work: without that, a
wrong base URL would make every sync look "not found".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.errors import CodatAPIError, CodatExpensesError, FatalAPIError
from destination_codat_expenses.follow import SyncFollower
from destination_codat_expenses.models import IN_PROGRESS
from destination_codat_expenses.store import queries
from destination_codat_expenses.store.status_store import StatusStore, record_discovered_sync

SYNC_STATUS_PATH = "/syncs/{syncId}/status"  # the end of the client's path template


@dataclass
class RefreshReport:
    checked: int = 0
    finished: int = 0
    discovered: int = 0
    not_found: list[tuple[str, str]] = field(default_factory=list)  # (company, sync)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (what, why)


def refresh(
    client: CodatClient,
    store: StatusStore,
    company_id: str | None = None,
    sync_id: str | None = None,
    receipts_root: str | None = None,
) -> RefreshReport:
    store.prepare()
    confirm_codat_answers(client)
    report = RefreshReport()
    if sync_id:
        details = queries.sync_details(store.path, sync_id)
        if details is None:
            raise LookupError(f"Sync {sync_id} is not in the status store {store.path}.")
        targets = [(details["company_id"], sync_id)]
    else:
        # every sync without a final status from Codat: running ones, and those a webhook
        # reported ended (marked to confirm), whose status and items Codat now gives
        targets = store.open_syncs(company_id)
        companies = [company_id] if company_id else queries.known_companies(store.path)
        for company in companies:
            discover_for(client, store, company, report)
    # receipts waiting are uploaded at the end; a receipt path only with the receipts folder
    follower = SyncFollower(client, store, upload_receipts=True, receipts_root=receipts_root)
    for company, sync in targets:
        report.checked += 1
        settle_one(follower, store, company, sync, report)
    if not sync_id:
        finish_unfinished(follower, company_id, report)
    return report


def finish_unfinished(follower: SyncFollower, company_id: str | None, report) -> None:
    """What a crash left half done: final syncs without items, unchecked repeats, receipts."""
    try:
        report.finished += follower.complete_unfinished(company_id)
    except CodatAPIError as error:
        report.failures.append(("syncs, repeats and receipts left unfinished", str(error)))


def confirm_codat_answers(client: CodatClient) -> None:
    """One page of companies: the key and the address work, so a 404 later is about a sync."""
    try:
        client.list_companies(page_size=1)
    except CodatAPIError as error:
        raise CodatExpensesError(
            f"Nothing was refreshed: asking Codat for its company list failed ({error}). "
            "Check $CODAT_API_KEY and the base URL."
        ) from None


def discover_for(
    client: CodatClient, store: StatusStore, company: str, report: RefreshReport
) -> None:
    try:
        report.discovered += discover(client, store, company)
    except CodatAPIError as error:
        report.failures.append((f"company {company} (discovering syncs)", str(error)))


def settle_one(
    follower: SyncFollower, store: StatusStore, company: str, sync: str, report: RefreshReport
) -> None:
    """Record the sync's status from Codat (and its items once final); a 404 to the status
    request settles it as not found; any other error is noted and the next sync goes on."""
    try:
        report.finished += follower.settle(company, sync)
    except FatalAPIError as error:
        if error.status == 404 and error.path.endswith(SYNC_STATUS_PATH):
            store.settle_not_found(sync, not_found_note(company, error))
            report.not_found.append((company, sync))
        else:
            report.failures.append((f"sync {sync} (company {company})", str(error)))
    except CodatAPIError as error:
        report.failures.append((f"sync {sync} (company {company})", str(error)))


def not_found_note(company: str, error: FatalAPIError) -> str:
    return (
        f"Codat does not know this sync for company {company} (it answered 404: "
        f"{error.detail}). `codat-expenses status refresh` settled it so that it is not asked "
        "about again; `status refresh --sync <id>` asks Codat once more."
    )


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
        if status.get("syncStatusCode") in IN_PROGRESS:
            store.record_sync_status(status)
        else:
            follower.record_final(company_id, status)
    return len(fresh)
