"""After a crash: find out from Codat what happened to pushes whose answer was never recorded.

A ledger row still `sending` means its push may or may not have reached Codat. Codat's own
list of the company's syncs says which: every sync this store has not recorded is read, and
an id found in one is marked `sent` with that sync (so it is followed, not pushed again). An id
found nowhere stays `sending` and is pushed again, with the same id, when its record comes.
"""

from __future__ import annotations

import logging
from collections import defaultdict
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
    known = store.known_sync_ids(company_id)
    statuses = [
        s
        for s in client.list_sync_statuses(company_id)[:RECENT_SYNCS]
        if s.get("syncId") and s["syncId"] not in known
    ]
    found = 0
    for status in statuses:
        carried = [
            t["transactionId"]
            for t in client.iter_sync_transactions(company_id, status["syncId"])
            if t.get("transactionId") in ids
        ]
        if not carried:
            continue
        # recorded as open: whoever follows open syncs (this run's finish, `status refresh`)
        # then records its status with its items; a final status stored here would hide the
        # sync from them, and its transactions would stay `sent` with no outcome
        store.mark_sent(
            company_id,
            carried,
            {
                "sync_id": status["syncId"],
                "flow": "reconciled",
                "run_id": run_id,
                "initiated_at": parse_utc(status.get("syncUtc")) or datetime.now(UTC),
            },
        )
        ids -= set(carried)
        found += len(carried)
    return found
