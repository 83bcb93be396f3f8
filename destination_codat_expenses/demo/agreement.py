"""Before the demo prints its summary, the store must agree with the sandbox, which plays Codat.

Codat's side is read once, after the run: every sync of the demo's companies and its status
code (Codat's API), every transaction's status in every sync (Codat's API), the books and the
receipts attached to them (the sandbox's ground truth), and the webhooks the sandbox delivered.
The store's side is read until it agrees or the time is up: the webhook receiver may still be
recording what it was sent when the destination ends.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.codat.http import http_client
from destination_codat_expenses.codat.sandbox_admin import SandboxAdmin
from destination_codat_expenses.demo.records import COMPANIES
from destination_codat_expenses.models import COMPLETED, COMPLETED_ITEM
from destination_codat_expenses.store.queries import StoreCounts, outcome_counts

logger = logging.getLogger("codat_expenses.demo")
SHOWN_DISAGREEMENTS = 10
COMPANY_NAMES = {company.id: company.name for company in COMPANIES}


@dataclass(frozen=True)
class CodatSide:
    """What the sandbox says happened: the facts the store is checked against."""

    sync_codes: dict[str, int]  # sync id -> status code
    sync_companies: dict[str, str]  # sync id -> company id
    item_statuses: dict[tuple[str, str], str]  # (sync id, transaction id) -> status
    written: int  # transactions in the books
    written_twice: int  # transactions written more than once (never expected)
    receipts_attached: int  # receipts the books hold
    webhooks_delivered: int  # webhook messages the receiver acknowledged

    @property
    def completed(self) -> int:
        """Transactions Codat completed (in any sync)."""
        return len({tid for (_, tid), s in self.item_statuses.items() if s == COMPLETED_ITEM})


def ask_codat(sandbox: SandboxAdmin, api_key: str, company_ids: list[str]) -> CodatSide:
    with http_client(sandbox.base_url) as http:
        client = CodatClient(http, api_key)
        codes, companies, items = {}, {}, {}
        for company_id in company_ids:
            for status in client.list_sync_statuses(company_id):
                sync_id = status["syncId"]
                codes[sync_id], companies[sync_id] = status["syncStatusCode"], company_id
                for item in client.iter_sync_transactions(company_id, sync_id):
                    items[(sync_id, item["transactionId"])] = item["status"]
    books = [entry for entries in sandbox.ground_truth().values() for entry in entries]
    delivered = {d["messageId"] for d in sandbox.webhook_deliveries() if d["delivered"]}
    return CodatSide(
        sync_codes=codes,
        sync_companies=companies,
        item_statuses=items,
        written=len(books),
        written_twice=sum(1 for entry in books if entry["writes"] != 1),
        receipts_attached=sum(len(entry["attachments"]) for entry in books),
        webhooks_delivered=len(delivered),
    )


def disagreements(store: StoreCounts, codat: CodatSide) -> list[str]:
    """Every fact on which the store and Codat differ, in words; empty when they agree."""
    found = [
        f"sync {sync_id} ({company_name(codat, sync_id)}): the store has "
        f"{store.sync_codes.get(sync_id, 'no such sync')}, Codat has {code}"
        for sync_id, code in sorted(codat.sync_codes.items())
        if store.sync_codes.get(sync_id) != code
    ]
    found += [
        f"sync {sync_id}: in the store, not at Codat"
        for sync_id in sorted(set(store.sync_codes) - set(codat.sync_codes))
    ]
    wrong_items = Counter(
        (store.item_statuses.get(key, "nothing"), status)
        for key, status in codat.item_statuses.items()
        if store.item_statuses.get(key) != status
    )
    found += [
        f"{n} transaction status(es): the store has {ours}, Codat has {theirs}"
        for (ours, theirs), n in sorted(wrong_items.items())
    ]
    found += compare(store.states.get(COMPLETED, 0), codat.completed, "completed transactions")
    found += compare(store.receipts["uploaded"], codat.receipts_attached, "receipts uploaded")
    found += compare(store.webhooks, codat.webhooks_delivered, "webhook events")
    return found


def company_name(codat: CodatSide, sync_id: str) -> str:
    company_id = codat.sync_companies[sync_id]
    return COMPANY_NAMES.get(company_id, company_id)


def compare(ours: int, theirs: int, what: str) -> list[str]:
    return [] if ours == theirs else [f"{what}: the store has {ours}, Codat has {theirs}"]


def agreed_counts(
    store: str, codat: CodatSide, timeout_s: float = 30.0
) -> tuple[StoreCounts, list[str]]:
    """The store's counts once they agree with Codat, or, when the time is up first, the last
    counts read and what still differs."""
    deadline = time.monotonic() + timeout_s
    while True:
        counts = outcome_counts(store)
        problems = disagreements(counts, codat)
        if not problems or time.monotonic() >= deadline:
            return counts, problems
        time.sleep(0.5)


def report_disagreements(problems: list[str]) -> None:
    logger.info("")
    logger.info(
        "The status store disagrees with the sandbox (Codat) on %d fact(s), so the demo prints "
        "no summary:",
        len(problems),
    )
    for problem in problems[:SHOWN_DISAGREEMENTS]:
        logger.info("  %s", problem)
    if len(problems) > SHOWN_DISAGREEMENTS:
        logger.info("  ... and %d more", len(problems) - SHOWN_DISAGREEMENTS)
