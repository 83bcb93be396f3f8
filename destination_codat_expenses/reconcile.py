"""Asking Codat what became of ids whose fate the store cannot tell on its own.

After a crash: a ledger row still `sending` means its push may or may not have reached Codat.
Codat's own list of the company's syncs says which: every sync this store has not recorded is
read, and an id found in one is marked `sent` with that sync (so it is followed, not pushed
again). An id found nowhere stays `sending` and is pushed again, with the same id, when its
record comes.

After Codat's "processed before" answer (codat/errors.py): the claim is checked id by id
(`find_completions`). Only an id that Codat itself lists as `Completed` in some sync becomes
`completed` in the ledger, with that sync; an id found nowhere is not completed, whatever the
message said.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.store.status_store import StatusStore, parse_utc

logger = logging.getLogger("airbyte")
RECENT_SYNCS = 200  # how far back to look in a company's sync list


def reconcile_in_flight(client: CodatClient, store: StatusStore, run_id: str | None = None) -> int:
    """Returns how many in-flight ids were found in a sync Codat already has."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for company_id, transaction_id, _ in store.in_flight():
        wanted[company_id].add(transaction_id)
    found = 0
    for company_id, ids in wanted.items():
        found += reconcile_company(client, store, company_id, ids, run_id)
    if wanted:
        logger.info(
            "reconciled %d of %d in-flight transactions with Codat",
            found,
            sum(len(ids) for ids in wanted.values()),
        )
    return found


def reconcile_company(
    client: CodatClient,
    store: StatusStore,
    company_id: str,
    ids: set[str],
    run_id: str | None = None,
) -> int:
    carried: dict[str, list[str]] = defaultdict(list)
    started: dict[str, str | None] = {}
    # syncs the store has are not read again, unless the store saw one carry an id left
    # `sending`: the receiver (or another process of a fleet) may settle a sync before the
    # process that pushed it recorded the push, when that process died after Codat's answer
    carriers = {sync for _, sync in store.syncs_that_carried(company_id, sorted(ids))}
    known = store.known_sync_ids(company_id) - carriers
    attributed: set[str] = set()
    for status, item in items_in_recent_syncs(client, company_id, ids, skip=known):
        if item["transactionId"] in attributed:
            continue  # the newest sync that carries an id is the one to follow
        attributed.add(item["transactionId"])
        carried[status["syncId"]].append(item["transactionId"])
        started[status["syncId"]] = status.get("syncUtc")
    for sync_id, found in carried.items():
        # recorded as open: whoever follows open syncs (this run's finish, `status refresh`)
        # then records its status with its items; a final status stored here would hide the
        # sync from them, and its transactions would stay `sent` with no outcome
        store.mark_sent(
            company_id,
            found,
            {
                "sync_id": sync_id,
                "flow": "reconciled",
                "run_id": run_id,
                "initiated_at": parse_utc(started[sync_id]) or datetime.now(UTC),
            },
        )
    return sum(len(found) for found in carried.values())


def settle_processed_before(
    client: CodatClient, store: StatusStore, company_id: str, ids: set[str]
) -> dict[str, str]:
    """Codat called `ids` processed before: each is recorded completed with the sync where
    Codat lists it `Completed`, or failed when Codat lists it completed nowhere."""
    found = find_completions(client, store, company_id, ids) if ids else {}
    store.mark_completed_by(company_id, found)
    store.mark_not_completed(company_id, sorted({i.lower() for i in ids} - found.keys()))
    return found


def find_completions(
    client: CodatClient, store: StatusStore, company_id: str, ids: set[str]
) -> dict[str, str]:
    """Transaction id -> a sync in which Codat lists it `Completed`, for each of `ids` that has
    one. The syncs the store saw carry an id are asked first (one call each), then the
    company's recent syncs."""
    wanted = {i.lower() for i in ids}
    found: dict[str, str] = {}
    asked: set[str] = set()
    for transaction_id, sync_id in store.syncs_that_carried(company_id, sorted(wanted)):
        asked.add(sync_id)
        if transaction_id in found:
            continue
        item = client.get_sync_transaction(company_id, sync_id, transaction_id)
        if item is not None and is_completed(item):
            found[transaction_id] = sync_id
    rest = wanted - found.keys()
    if rest:
        scan = items_in_recent_syncs(client, company_id, rest, asked, is_completed)
        for status, item in scan:
            if is_completed(item):
                found.setdefault(item["transactionId"].lower(), status["syncId"])
    return found


def items_in_recent_syncs(
    client: CodatClient,
    company_id: str,
    ids: set[str],
    skip: set[str],
    found_when: Callable[[dict], bool] = lambda item: True,
) -> Iterator[tuple[dict, dict]]:
    """(sync status, transaction) for each of `ids` in the company's recent syncs, newest
    first, leaving out the syncs in `skip`; an id is looked for until an item of it passes
    `found_when`, and the scan stops once every id is found."""
    left = {i.lower() for i in ids}
    for status in client.list_sync_statuses(company_id)[:RECENT_SYNCS]:
        if not left:
            return
        sync_id = status.get("syncId")
        if not sync_id or sync_id in skip:
            continue
        for item in client.iter_sync_transactions(company_id, sync_id):
            transaction_id = (item.get("transactionId") or "").lower()
            if transaction_id in left:
                yield status, item
                if found_when(item):
                    left.discard(transaction_id)


def is_completed(item: dict) -> bool:
    return item.get("status") == "Completed"
