"""Status stores for the report's tests and benchmark, written with plain SQL into the tables.

`seed_story(path)` writes a small store that tells every story the report must show: successes,
5120/5130 failures with push items, 5080, a 4040 with no items, a long-running 1010, a stuck
sync with no status, a retry lineage of three syncs, five currencies (0, 2 and 3 decimal places:
JPY, GBP/USD/EUR, KWD) over seven days, runs (one failed with rejected records, one running),
receipts (uploaded, refused, pending) and webhook deliveries (verified, not). The ids
are readable so tests can search for parts of them. `seed_bulk(path, syncs, transactions)`
writes a large store (100,000 syncs and 1,000,000 transactions in seconds) for `make bench`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import duckdb

from destination_codat_expenses.store.db import migrate, release

GB = "1a2b3c4d-aaaa-4000-8000-000000000001"  # Xero, GBP
US = "1a2b3c4d-bbbb-4000-8000-000000000002"  # QuickBooks Online, USD
EU = "1a2b3c4d-cccc-4000-8000-000000000003"  # Dynamics 365 Business Central, EUR
GONE = "1a2b3c4d-dddd-4000-8000-000000000004"  # Zoho Books, de-authorized
# the names Codat gave (v8's companies table); the de-authorized company's could not be read
COMPANY_NAMES = {
    GB: ("Acme Widgets Ltd", "Xero"),
    US: ("Globex Corporation", "QuickBooks Online"),
    EU: ("Initech GmbH", "Dynamics 365 Business Central"),
    GONE: (None, "Zoho Books"),
}

S_OK_GB, S_DUP_GB, S_OK_US = "sync-2000-gb", "sync-5080-gb", "sync-2000-us"
S_NODATA_EU, S_CLOSED_GB = "sync-2040-eu", "sync-5130-gb"
S_RETRY1, S_RETRY2 = "sync-5130-gb-retry1", "sync-2000-gb-retry2"
S_INVALID_US, S_DEAUTH = "sync-5120-us", "sync-4040-zoho"
S_LONG_EU, S_STUCK_US = "sync-1010-eu", "sync-none-us"

CONFIG_GB = {
    "bankAccount": {"id": "090"},
    "supplier": {"id": "SUP-CARD"},
    "customer": {"id": "CUST-1"},
}
CLOSED = (
    "The transaction date {day} is in a closed period: Xero is locked for entries on or before "
    "2023-12-31."
)
UNKNOWN_ACCOUNT = "Line 1: account '999' was not found in the chart of accounts."
UNKNOWN_TAX = "Line 1: tax rate 'ZZZ' was not found."
NO_RATE = (
    "The transaction is in EUR but the company's base currency is USD; a currencyRate is "
    "required for foreign currency."
)
DUPLICATE = "One or more transactions have previously been processed: txn-gb-0001"
DEAUTHORIZED = (
    "The Zoho Books connection is Deauthorized; the customer must re-link it before expenses "
    "can sync."
)
EXPECTED = {  # what the story adds up to, for the tests
    "syncs": 11,
    "succeeded": 4,
    "failed": 5,
    "in progress": 2,
    "days": 7,
    # written / failed / pending expenses per currency
    "currencies": {
        "EUR": (1, 1, 1),
        "GBP": (5, 0, 0),
        "JPY": (0, 0, 1),
        "KWD": (1, 0, 0),
        "USD": (2, 2, 1),
    },
    # how the report must show the amounts (ISO 4217 minor units, grouping)
    "amounts": {
        "txn-us-0001": "1,234,567.89 USD",
        "txn-us-0003": "1,234.567 KWD",
        "txn-zo-0001": "125,000 JPY",
    },
    "runs": 11,
    "failed_runs": 1,
    "rejects": 4,
    "receipts": 3,
    "webhook_events": 2,
}
FAILED_RUN = f"run-{S_INVALID_US}"
RUN_ERROR = (
    "Too many rejected records: 3 of 6 (50%) is over the 10% limit. See the rejects (the report's "
    "Rejects page, or `codat-expenses rejects list`)."
)
REJECTS = [  # run, stream, record key, field, reason
    (FAILED_RUN, "card_spend", "src-us-9001", "amount", "'12,5O' is not a decimal number."),
    (FAILED_RUN, "card_spend", "src-us-9002", "currency", "'ZZZ' is not an ISO 4217 currency."),
    (FAILED_RUN, "card_spend", "src-us-9003", "issue_date", "A date is required."),
    (f"run-{S_OK_GB}", "reimbursements", "src-gb-9004", "amount", "JPY allows no decimals."),
]
RECEIPTS = [  # transaction, sync, company, file, status, message
    ("txn-gb-0002", S_OK_GB, GB, "receipt-0002.pdf", "uploaded", None),
    (
        "txn-us-0004",
        S_INVALID_US,
        US,
        "receipt-0004.tiff",
        "refused",
        "Codat refused the file: image/tiff is not a supported attachment type.",
    ),
    ("txn-us-0001", S_OK_US, US, "receipt-0001.pdf", "pending", "Codat answered 429; tried again."),
]


@dataclass
class Item:
    transaction_id: str
    status: str  # Completed | ValidationError | PushError
    message: str = ""
    data_type: str | None = None
    record_id: str | None = None


@dataclass
class Txn:
    transaction_id: str
    company_id: str
    currency: str
    amount: str
    state: str
    last_sync_id: str
    attempts: int = 1
    issue_date: date = date(2024, 5, 1)


@dataclass
class Sync:
    sync_id: str
    company_id: str
    started: datetime
    code: int | None
    text: str | None = None
    items: list[Item] = field(default_factory=list)
    retry_of: str | None = None
    target: str = "Xero"
    error: str | None = None
    minutes: int = 2  # how long it ran (final codes only)
    config: dict | None = None


def story(now: datetime) -> tuple[list[Sync], list[Txn]]:
    """The seeded store's syncs and expenses, relative to `now`."""

    def ago(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
        return now - timedelta(days=days, hours=hours, minutes=minutes)

    written = [
        Item(
            "txn-gb-0001",
            "Completed",
            "Created directCosts XERO-1 in Xero",
            "directCosts",
            "XERO-1",
        ),
        Item(
            "txn-gb-0002",
            "Completed",
            "Created directCosts XERO-2 in Xero",
            "directCosts",
            "XERO-2",
        ),
    ]
    syncs = [
        Sync(S_OK_GB, GB, ago(days=6), 2000, "Completed", written, config=CONFIG_GB),
        Sync(
            S_DUP_GB,
            GB,
            ago(days=5, hours=2),
            5080,
            "ValidationError",
            [Item("txn-gb-0001", "ValidationError", DUPLICATE)],
            error=DUPLICATE,
        ),
        Sync(
            S_OK_US,
            US,
            ago(days=5),
            2000,
            "Completed",
            [
                Item(
                    "txn-us-0001",
                    "Completed",
                    "Created directCosts QBO-1 in QuickBooks Online",
                    "directCosts",
                    "QBO-1",
                ),
                Item(
                    "txn-us-0002",
                    "Completed",
                    "Created directCosts QBO-2 in QuickBooks Online",
                    "directCosts",
                    "QBO-2",
                ),
                Item(
                    "txn-us-0003",
                    "Completed",
                    "Created directIncomes QBO-3 in QuickBooks Online",
                    "directIncomes",
                    "QBO-3",
                ),
            ],
            target="QuickBooks Online",
        ),
        Sync(
            S_NODATA_EU,
            EU,
            ago(days=4),
            2040,
            "Completed",
            [Item("txn-eu-0001", "Completed", "Nothing written: the transaction's total is zero.")],
            target="Dynamics 365 Business Central",
        ),
        Sync(
            S_CLOSED_GB,
            GB,
            ago(days=3),
            5130,
            "PushError",
            [
                Item(
                    "txn-gb-0003",
                    "Completed",
                    "Created directCosts XERO-3 in Xero",
                    "directCosts",
                    "XERO-3",
                ),
                Item("txn-gb-0004", "PushError", CLOSED.format(day="2023-06-01")),
                Item("txn-gb-0005", "PushError", CLOSED.format(day="2023-07-01")),
            ],
            error="2 of 3 transactions failed: " + CLOSED.format(day="2023-06-01"),
            config=CONFIG_GB,
        ),
        Sync(
            S_RETRY1,
            GB,
            ago(days=2, hours=3),
            5130,
            "PushError",
            [
                Item(
                    "txn-gb-0004",
                    "Completed",
                    "Created directCosts XERO-4 in Xero",
                    "directCosts",
                    "XERO-4",
                ),
                Item("txn-gb-0005", "PushError", CLOSED.format(day="2023-07-01")),
            ],
            retry_of=S_CLOSED_GB,
            error="1 of 2 transactions failed",
            config=CONFIG_GB,
        ),
        Sync(
            S_RETRY2,
            GB,
            ago(days=1, hours=3),
            2000,
            "Completed",
            [
                Item(
                    "txn-gb-0005",
                    "Completed",
                    "Created directCosts XERO-5 in Xero",
                    "directCosts",
                    "XERO-5",
                ),
            ],
            retry_of=S_RETRY1,
            config=CONFIG_GB,
        ),
        Sync(
            S_INVALID_US,
            US,
            ago(days=2),
            5120,
            "ValidationError",
            [
                Item("txn-us-0004", "ValidationError", UNKNOWN_ACCOUNT),
                Item("txn-us-0005", "ValidationError", UNKNOWN_TAX),
                Item("txn-us-0006", "ValidationError", NO_RATE),
            ],
            target="QuickBooks Online",
            error="3 of 3 transactions failed validation",
            config={"bankAccount": {"id": "BANK-USD"}, "supplier": {"id": "V-1"}},
        ),
        Sync(
            S_DEAUTH, GONE, ago(days=1), 4040, "Failed", [], target="Zoho Books", error=DEAUTHORIZED
        ),
        Sync(
            S_LONG_EU,
            EU,
            ago(minutes=10),
            1010,
            "InProgress",
            [],
            target="Dynamics 365 Business Central",
        ),
        Sync(S_STUCK_US, US, ago(hours=3), None, None, [], target="QuickBooks Online"),
    ]
    txns = [
        Txn("txn-gb-0001", GB, "GBP", "12.00", "completed", S_DUP_GB, 2),
        Txn("txn-gb-0002", GB, "GBP", "30.50", "completed", S_OK_GB),
        Txn("txn-gb-0003", GB, "GBP", "20.00", "completed", S_CLOSED_GB),
        Txn("txn-gb-0004", GB, "GBP", "55.10", "completed", S_RETRY1, 2, date(2023, 6, 1)),
        Txn("txn-gb-0005", GB, "GBP", "8.25", "completed", S_RETRY2, 3, date(2023, 7, 1)),
        Txn("txn-us-0001", US, "USD", "1234567.89", "completed", S_OK_US),
        Txn("txn-us-0002", US, "USD", "45.99", "completed", S_OK_US),
        Txn("txn-us-0003", US, "KWD", "1234.567", "completed", S_OK_US),
        Txn("txn-eu-0001", EU, "EUR", "0.00", "completed", S_NODATA_EU),
        Txn("txn-us-0004", US, "USD", "15.00", "failed", S_INVALID_US),
        Txn("txn-us-0005", US, "USD", "22.40", "failed", S_INVALID_US),
        Txn("txn-us-0006", US, "EUR", "70.00", "failed", S_INVALID_US),
        Txn("txn-zo-0001", GONE, "JPY", "125000", "sent", S_DEAUTH),
        Txn("txn-eu-0002", EU, "EUR", "99.00", "sent", S_LONG_EU),
        Txn("txn-us-0007", US, "USD", "5.00", "sent", S_STUCK_US),
    ]
    return syncs, txns


def seed_story(path: str, now: datetime | None = None) -> str:
    """Migrate `path` and write the story into it; returns the path."""
    empty_store(path)
    syncs, txns = story(now or datetime.now(UTC))
    by_id = {t.transaction_id: t for t in txns}
    with duckdb.connect(path) as db:
        for txn in txns:
            insert_transaction(db, txn, syncs)
        for sync in syncs:
            insert_sync(db, sync, [by_id[i.transaction_id] for i in sync.items])
            for item in sync.items:
                insert_item(db, sync, item, by_id[item.transaction_id])
            insert_run(db, sync)
        insert_extras(db, {s.sync_id: s.started for s in syncs})
        insert_companies(db, {c: (name, "Airbyte", t) for c, (name, t) in COMPANY_NAMES.items()})
    return path


def insert_companies(db: duckdb.DuckDBPyConnection, named: dict[str, tuple]) -> None:
    """company id -> (name, source platform, target platform), as the destination records."""
    for company_id, (name, source, target) in named.items():
        db.execute(
            "INSERT INTO companies VALUES (?, ?, ?, ?, now())", [company_id, name, source, target]
        )


def insert_run(db: duckdb.DuckDBPyConnection, sync: Sync) -> None:
    """The run that opened the sync: the 5120 sync's run failed on its rejects, the 1010
    sync's run is still running."""
    run_id = f"run-{sync.sync_id}"
    failed, running = run_id == FAILED_RUN, sync.sync_id == S_LONG_EU
    rejected = sum(1 for r in REJECTS if r[0] == run_id)
    db.execute(
        "INSERT INTO runs (run_id, started_at, finished_at, records_in, records_accepted, "
        "records_rejected, checkpoints, outcome, error) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
        [
            run_id,
            sync.started - timedelta(minutes=1),
            None if running else sync.started + timedelta(minutes=sync.minutes + 1),
            len(sync.items) + rejected,
            len(sync.items),
            rejected,
            "failed" if failed else "running" if running else "succeeded",
            RUN_ERROR if failed else None,
        ],
    )


def insert_extras(db: duckdb.DuckDBPyConnection, started: dict[str, datetime]) -> None:
    """Rejects, receipts and webhook deliveries."""
    for run_id, stream, key, field_name, reason in REJECTS:
        at = started[run_id.removeprefix("run-")]
        db.execute(
            "INSERT INTO rejects VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, stream, key, field_name, reason, at],
        )
    for txn, sync_id, company, name, status, message in RECEIPTS:
        db.execute(
            "INSERT INTO attachments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                company,
                txn,
                sync_id,
                name,
                48_213,
                status,
                message,
                "att-0002" if status == "uploaded" else None,
                started[sync_id] + timedelta(minutes=3),
            ],
        )
    for webhook_id, sync_id, company, verified in (
        ("msg-0001", S_OK_US, US, True),
        ("msg-0002", S_DEAUTH, GONE, False),
    ):
        db.execute(
            "INSERT INTO webhook_events VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                webhook_id,
                "sync.completed" if verified else "sync.failed",
                started[sync_id] + timedelta(minutes=2),
                verified,
                verified,
                sync_id,
                company,
            ],
        )


def empty_store(path: str) -> str:
    """A migrated store with nothing in it, and this process's hold on the file given up (so
    the report, a read-only reader, can open it in this same process)."""
    migrate(path)
    release(path)
    return path


def insert_sync(db: duckdb.DuckDBPyConnection, sync: Sync, txns: list[Txn]) -> None:
    final = sync.code is not None and sync.code not in (1000, 1010)
    dates = [t.issue_date for t in txns] or [None]
    failed = sum(1 for i in sync.items if i.status != "Completed")
    db.execute(
        "INSERT INTO syncs (sync_id, company_id, run_id, retry_of, flow, initiated_at, "
        "completed_at, status_code, status_text, error_message, exception_message, data_pushed, "
        "source_platform, target_platform, expenses_from, expenses_to, item_count, failed_count, "
        "config_snapshot, updated_at, status_source) VALUES (?, ?, ?, ?, 'direct', ?, ?, ?, ?, "
        "?, ?, ?, 'Airbyte', ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            sync.sync_id,
            sync.company_id,
            f"run-{sync.sync_id}",
            sync.retry_of,
            sync.started,
            sync.started + timedelta(minutes=sync.minutes) if final else None,
            sync.code,
            sync.text,
            sync.error,
            f"{sync.text}: {sync.error}" if sync.error else None,
            bool(sync.items) if final else None,
            sync.target,
            min(d for d in dates if d) if txns else None,
            max(d for d in dates if d) if txns else None,
            len(sync.items) or len(txns) or 1,
            failed if final else None,
            json.dumps(sync.config) if sync.config else None,
            sync.started,
            "codat" if sync.code is not None else None,  # the story's codes are Codat's
        ],
    )


def insert_item(db: duckdb.DuckDBPyConnection, sync: Sync, item: Item, txn: Txn) -> None:
    stamp = sync.started + timedelta(minutes=sync.minutes)
    db.execute(
        "INSERT INTO push_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            sync.sync_id,
            sync.company_id,
            item.transaction_id,
            item.data_type,
            item.record_id,
            item.status,
            item.message or None,
            Decimal(txn.amount),
            txn.currency,
            stamp,
        ],
    )
    db.execute(
        "INSERT INTO transaction_attempts VALUES (?, ?, ?, ?, ?, ?)",
        [sync.company_id, item.transaction_id, sync.sync_id, item.status, item.message, stamp],
    )


def insert_transaction(db: duckdb.DuckDBPyConnection, txn: Txn, syncs: list[Sync]) -> None:
    last = next(s for s in syncs if s.sync_id == txn.last_sync_id)
    item = next((i for i in last.items if i.transaction_id == txn.transaction_id), None)
    payload = {
        "id": txn.transaction_id,
        "type": "Payment",
        "issueDate": txn.issue_date.isoformat(),
        "currency": txn.currency,
        "lines": [{"netAmount": txn.amount, "accountRef": {"id": "402"}}],
    }
    db.execute(
        "INSERT INTO transactions (company_id, transaction_id, source_stream, source_key, state, "
        "codat_status, message, last_sync_id, attempts, payload, payload_hash, issue_date, "
        "currency, total_amount, updated_at) VALUES (?, ?, 'card_spend', ?, ?, ?, ?, ?, ?, ?, "
        "'hash', ?, ?, ?, ?)",
        [
            txn.company_id,
            txn.transaction_id,
            "src-" + txn.transaction_id.removeprefix("txn-"),
            txn.state,
            item.status if item else "Pending",
            item.message if item else None,
            txn.last_sync_id,
            txn.attempts,
            json.dumps(payload),
            txn.issue_date,
            txn.currency,
            Decimal(txn.amount),
            last.started,
        ],
    )


# -- a large store for the benchmark -------------------------------------------------------------
BULK_CODES = "[2000, 2000, 2000, 2000, 2000, 2000, 2000, 2000, 2040, 5130, 5120, 4040, 1010]"


def seed_bulk(path: str, syncs: int = 100_000, transactions: int = 1_000_000, days: int = 90):
    """`syncs` syncs over `days` days and `transactions` expenses spread across them, by SQL.
    The expenses' ids are random UUIDs, as a source's ids are: an index of them takes the
    memory and the lookups a real ledger's does (sequential ids share prefixes and would not)."""
    empty_store(path)
    per_sync = max(1, transactions // syncs)
    with duckdb.connect(path) as db:
        db.execute(BULK_SYNCS, [BULK_CODES_LIST, days * 86_400 / syncs, syncs])
        db.execute(BULK_TRANSACTIONS, [per_sync, transactions])
        db.execute(BULK_ITEMS)
        db.execute(BULK_ATTEMPTS)
        db.execute(BULK_COMPANIES)
    return path


BULK_CODES_LIST = json.loads(BULK_CODES)
BULK_SYNCS = """
INSERT INTO syncs (sync_id, company_id, run_id, retry_of, flow, initiated_at, completed_at,
    status_code, status_text, error_message, exception_message, data_pushed, source_platform,
    target_platform, expenses_from, expenses_to, item_count, failed_count, config_snapshot,
    updated_at)
SELECT 'bulk-' || lpad(i::VARCHAR, 8, '0'), 'company-' || lpad((i % 500)::VARCHAR, 4, '0'),
    'run-' || (i // 100), NULL, 'direct', t, CASE WHEN c IN (1010) THEN NULL
    ELSE t + INTERVAL 90 SECOND END, c, CASE WHEN c >= 4000 THEN 'Failed' ELSE 'Completed' END,
    CASE WHEN c >= 4000 THEN 'Some transactions failed' END, NULL, c < 4000, 'Airbyte', 'Xero',
    DATE '2024-05-01', DATE '2024-05-02', 10, CASE WHEN c >= 4000 THEN 1 ELSE 0 END,
    '{"bankAccount": {"id": "090"}}', t
FROM (SELECT i, list_extract($1::INTEGER[], 1 + (i % 13)::INTEGER) AS c,
             now() - to_microseconds(CAST(i * $2 * 1000000 AS BIGINT)) AS t
      FROM range($3) r(i))
"""
BULK_TRANSACTIONS = """
INSERT INTO transactions (company_id, transaction_id, source_stream, source_key, state,
    codat_status, message, last_sync_id, attempts, payload, payload_hash, issue_date, currency,
    total_amount, updated_at)
SELECT s.company_id, uuid()::VARCHAR, 'card_spend', 'src-' || j,
    CASE WHEN s.status_code >= 4000 AND j % $1 = 0 THEN 'failed'
         WHEN s.status_code IN (1010) THEN 'sent' ELSE 'completed' END,
    CASE WHEN s.status_code >= 4000 AND j % $1 = 0 THEN 'PushError' ELSE 'Completed' END,
    NULL, s.sync_id, 1, NULL, NULL, DATE '2024-05-01',
    list_extract(['GBP', 'USD', 'EUR'], 1 + (j % 3)::INTEGER), (j % 10000) / 100.0, s.updated_at
FROM range($2) r(j)
JOIN syncs s ON s.sync_id = 'bulk-' || lpad((j // $1)::VARCHAR, 8, '0')
"""
BULK_ITEMS = """
INSERT INTO push_items SELECT last_sync_id, company_id, transaction_id,
    CASE WHEN state = 'completed' THEN 'directCosts' END, NULL,
    CASE WHEN state = 'failed' THEN 'PushError' ELSE 'Completed' END,
    CASE WHEN state = 'failed' THEN 'The transaction date is in a closed period.' END,
    total_amount, currency, updated_at
FROM transactions WHERE source_key LIKE 'src-%'
"""
BULK_COMPANIES = """
INSERT INTO companies SELECT DISTINCT company_id, 'Company ' || company_id[9:] || ' Ltd',
    'Airbyte', 'Xero', now() FROM syncs
"""
BULK_ATTEMPTS = """
INSERT INTO transaction_attempts SELECT company_id, transaction_id, sync_id, status, message,
    updated_at FROM push_items WHERE sync_id LIKE 'bulk-%'
"""
