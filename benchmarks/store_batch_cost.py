"""Per-batch store cost against the size of the ledger, from the store's side: the statements
one 50-record batch costs the destination (look up, claim, record the push, record the outcome),
each timed on a status store pre-seeded with N transactions, through the store's own API.

Seeding is testing/report_seed.seed_bulk: plain SQL into the migrated tables (N transactions
over N/10 syncs, with their push items and attempts), a few seconds for 300k. The batches go to
a company of their own, so a statement that costs O(table) shows as growth with N, and one that
uses the primary key does not. Target (issue 12, reported, never asserted): the cost at 300k rows
within 1.5x of the cost at 0 rows.

`one_batch` is the only code that knows the store's API (main's StatusStore): when the store's
writer changes, it is the adapter to change.

    python -m benchmarks.store_batch_cost [--rows 0,300000] [--batches 40] [--warmup 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.destination_throughput import record_id
from benchmarks.measure import machine_load, print_footer, ratio, verdict
from destination_codat_expenses.mapping import MappingSettings, map_record
from destination_codat_expenses.store.status_store import StatusStore
from testing.report_seed import seed_bulk
from testing.sandbox import BASE_CURRENCY, XERO

STREAM = "card_spend"
ITEMS = 50
STEPS = ("look up", "claim", "record push", "record outcome")


def seeded_store(path: Path, rows: int) -> StatusStore:
    if rows:
        seed_bulk(str(path), syncs=max(1, rows // 10), transactions=rows)
    store = StatusStore(str(path))
    store.prepare()
    return store


def mapped_batch(first: int, settings: MappingSettings) -> list:
    records = [
        {
            "id": record_id(n),
            "date": "2024-05-02",
            "amount": f"{10 + n % 90}.{n % 100:02d}",
            "tax_amount": "1.00",
            "currency": BASE_CURRENCY[XERO],
            "merchant": "Bench Cafe",
            "account_id": "402",
            "tax_rate_id": "STD",
        }
        for n in range(first, first + ITEMS)
    ]
    return [map_record(record, STREAM, settings) for record in records]


def one_batch(store: StatusStore, batch: list) -> dict[str, float]:
    """The store's work for one pushed batch, step by step (seconds)."""
    ids, sync_id = [t.transaction_id for t in batch], str(uuid.uuid4())
    times, started = {}, time.perf_counter()
    store.ledger(XERO, ids)
    times["look up"], started = time.perf_counter() - started, time.perf_counter()
    store.mark_sending(XERO, STREAM, batch)
    times["claim"], started = time.perf_counter() - started, time.perf_counter()
    store.mark_sent(XERO, ids, {"sync_id": sync_id})
    times["record push"], started = time.perf_counter() - started, time.perf_counter()
    status = {"syncId": sync_id, "syncStatusCode": 2000, "syncStatus": "Complete"}
    items = [{"transactionId": i, "status": "Completed", "message": None} for i in ids]
    store.record_sync_outcome(XERO, status, items)
    times["record outcome"] = time.perf_counter() - started
    return times


def cost_at(rows: int, batches: int, warmup: int) -> dict[str, float]:
    """Median seconds per batch, each step and the total, on a store of `rows` rows."""
    settings = MappingSettings()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        started = time.monotonic()
        store = seeded_store(Path(tmp) / "status.duckdb", rows)
        print(f"seeded:  {rows} rows in {time.monotonic() - started:.1f} s")
        samples = [
            one_batch(store, mapped_batch(1 + n * ITEMS, settings)) for n in range(warmup + batches)
        ][warmup:]
    medians = {step: statistics.median(s[step] for s in samples) for step in STEPS}
    medians["total"] = statistics.median(sum(s.values()) for s in samples)
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", default="0,300000", help="ledger sizes, comma-separated")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    print("machine:", machine_load())
    sizes = [int(n) for n in args.rows.split(",")]
    costs = {rows: cost_at(rows, args.batches, args.warmup) for rows in sizes}
    print(f"\n{'rows':>8}  " + "  ".join(f"{s:>14}" for s in (*STEPS, "total")) + "  (ms/batch)")
    for rows, cost in costs.items():
        print(f"{rows:8}  " + "  ".join(f"{cost[s] * 1000:14.1f}" for s in (*STEPS, "total")))
    base, top = costs[sizes[0]]["total"], costs[sizes[-1]]["total"]
    grown = ratio(top, base)
    print(
        f"\nper-batch cost at {sizes[-1]} rows / at {sizes[0]} rows = {grown:.2f}x "
        f"(target <= 1.5x: {verdict(grown, 1.5, higher_is_better=False)})"
    )
    print_footer("benchmarks.store_batch_cost")


if __name__ == "__main__":
    main()
