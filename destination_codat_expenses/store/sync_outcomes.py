"""Every sync outcome of one writer flush, recorded by one set of statements.

A follower records a final sync (its status and every item's outcome) as one job; the writer
hands all such jobs of a flush here together (store/writer.py's `Merge`). Whatever the number
of syncs, the flush runs a fixed set of statements, each over one derived table of all their
items: the syncs read, their statuses and counts written, the ledger and attempts read, push
items and attempts inserted, ledger states moved; what they need to know first (which syncs
were settled or had items, the ledger's amounts, the attempts) is one read. Each statement
finds its rows by a single-column index, as ledger.py's do, so the cost stays O(rows written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from destination_codat_expenses.models import (
    FROM_CODAT,
    FROM_WEBHOOK,
    IN_PROGRESS,
    ITEM_LEDGER_STATE,
    SENT,
    is_final,
    sql_list,
)
from destination_codat_expenses.store import ledger as ledger_sql
from destination_codat_expenses.store.writer import Merge, disjoint_parts

OPEN = sql_list(IN_PROGRESS)
# (company, status, items): one sync's final status and Codat's list of its transactions
Outcome = tuple[str, dict[str, Any], list[dict]]


class SyncOutcomes(Merge):
    """`StatusStore.record_sync_outcome`'s jobs; each answers whether it settled its sync."""

    def __init__(self, columns, parse_utc, now, produced_record) -> None:
        # the store's helpers, given rather than imported (status_store.py imports this)
        self.columns, self.parse_utc = columns, parse_utc
        self.now, self.produced_record = now, produced_record

    def parts(self, payloads: list[Outcome]) -> list[list[int]]:
        """Outcomes that share no sync and no transaction id go together (an UPDATE joining two
        rows of its table to one ledger row would pick one of them); the rest go later."""
        return disjoint_parts([outcome_keys(payload) for payload in payloads])

    def run_all(self, db, payloads: list[Outcome]) -> list[bool]:
        stamp = self.now()
        sync_ids = [status["syncId"] for _, status, _ in payloads]
        ids = [item["transactionId"] for _, _, items in payloads for item in items]
        before = read_before(db, sync_ids, ids)
        self.write_statuses(db, payloads, stamp)
        with_items = [p for p in payloads if p[2]]
        if with_items:
            self.write_items(db, with_items, before, stamp)
        # whoever settles a sync uploads its receipts: true when it had no final status before
        return [sync_id not in before.settled for sync_id in sync_ids]

    def write_statuses(self, db, payloads: list[Outcome], stamp: datetime) -> None:
        """Codat's own status of each sync, and its counts from Codat's list of its items (a
        running one stays to confirm if a webhook said it ended: Codat has not caught up)."""
        statuses = [status for _, status, _ in payloads]
        finals = [is_final(s.get("syncStatusCode")) for s in statuses]
        counts = [ledger_sql.item_counts(items) for _, _, items in payloads]
        table, params = self.columns(
            sync=("VARCHAR", [s["syncId"] for s in statuses]),
            code=("INTEGER", [s.get("syncStatusCode") for s in statuses]),
            text=("VARCHAR", [s.get("syncStatus") for s in statuses]),
            error=("VARCHAR", [s.get("errorMessage") or None for s in statuses]),
            exception=("VARCHAR", [s.get("syncExceptionMessage") or None for s in statuses]),
            pushed=("BOOLEAN", [s.get("dataPushed") for s in statuses]),
            done_at=("TIMESTAMPTZ", [self.completed_at(s) for s in statuses]),
            final=("BOOLEAN", finals),
            counted=("BOOLEAN", [bool(items) for _, _, items in payloads]),
            items=("INTEGER", [c[0] for c in counts]),
            failed=("INTEGER", [c[1] for c in counts]),
            stamp=("TIMESTAMPTZ", [stamp] * len(payloads)),
        )
        db.execute(
            "UPDATE syncs s SET status_code = v.code, status_text = v.text, error_message = "
            "v.error, exception_message = v.exception, data_pushed = v.pushed, completed_at = "
            "v.done_at, updated_at = v.stamp, status_source = CASE WHEN v.final OR "
            f"s.status_source IS DISTINCT FROM '{FROM_WEBHOOK}' THEN '{FROM_CODAT}' ELSE "
            "s.status_source END, "
            # Codat's list of the sync's transactions is its item count (a sync a webhook or
            # the company's sync list told of has no count of its own)
            "item_count = CASE WHEN v.counted THEN v.items ELSE s.item_count END, "
            "failed_count = CASE WHEN v.counted THEN v.failed ELSE s.failed_count END "
            f"FROM {table} v WHERE s.sync_id = v.sync",
            params,
        )

    def completed_at(self, status: dict[str, Any]) -> datetime | None:
        final = is_final(status.get("syncStatusCode"))
        return self.parse_utc(status.get("syncUtc")) if final else None

    def write_items(self, db, payloads: list[Outcome], before: Before, stamp: datetime) -> None:
        """Push items, attempts and ledger states of every item, amounts from the ledger."""
        rows = [(co, status["syncId"], item) for co, status, items in payloads for item in items]
        held, attempted = before.amounts, before.attempted
        listed = {status["syncId"] for _, status, _ in payloads}
        # recorded before (a refresh): Codat's new list replaces it; a sync of this flush that
        # came without a list keeps the one it has
        for sync_id in before.with_items & listed:
            db.execute("DELETE FROM push_items WHERE sync_id = ?", [sync_id])
        outcome = self.outcome_table(rows, held, attempted, stamp)
        was_attempted = any((co, item["transactionId"], s) in attempted for co, s, item in rows)
        ledger_sql.insert_item_outcomes(db, outcome, was_attempted)

    def outcome_table(self, rows: list, held: dict, attempted: set, stamp) -> tuple[str, list]:
        none = (None, None)
        keys = [(co, item["transactionId"]) for co, _, item in rows]
        produced = [self.produced_record(item.get("message")) for _, _, item in rows]
        statuses = [item.get("status") for _, _, item in rows]
        return self.columns(
            tid=("VARCHAR", [tid for _, tid in keys]),
            data_type=("VARCHAR", [p[0] for p in produced]),
            record_id=("VARCHAR", [p[1] for p in produced]),
            status=("VARCHAR", [s or "Unknown" for s in statuses]),
            message=("VARCHAR", [item.get("message") for _, _, item in rows]),
            state=("VARCHAR", [ITEM_LEDGER_STATE.get(s, SENT) for s in statuses]),
            amount=("DECIMAL(38,9)", [held.get(key, none)[0] for key in keys]),
            currency=("VARCHAR", [held.get(key, none)[1] for key in keys]),
            co=("VARCHAR", [co for co, _ in keys]),
            sync=("VARCHAR", [sync for _, sync, _ in rows]),
            stamp=("TIMESTAMPTZ", [stamp] * len(rows)),
            attempted=("BOOLEAN", [(co, i["transactionId"], s) in attempted for co, s, i in rows]),
        )


def outcome_keys(payload: Outcome) -> set[str]:
    company_id, status, items = payload
    return {"sync:" + status["syncId"], *("tid:" + i["transactionId"] for i in items)}


@dataclass
class Before:
    """What the store held before a flush's outcomes are written, read in one statement."""

    settled: set[str] = field(default_factory=set)  # syncs with a final status from Codat
    with_items: set[str] = field(default_factory=set)  # syncs whose items are recorded
    amounts: dict[tuple, tuple] = field(default_factory=dict)  # (co, id) -> (total, currency)
    attempted: set[tuple] = field(default_factory=set)  # (co, id, sync) attempts recorded


# Four key lookups as one statement (each branch filters on one indexed column, so each is an
# index lookup: unit_tests/test_store_scans.py): one round trip to the store instead of four.
READ_BEFORE = (
    "SELECT 'settled', sync_id, NULL::VARCHAR, NULL::VARCHAR, NULL::DECIMAL(38,9) FROM syncs "
    "WHERE sync_id IN (SELECT unnest(?::VARCHAR[])) AND "
    f"status_source = '{FROM_CODAT}' AND status_code IS NOT NULL AND status_code NOT IN {OPEN} "
    "UNION ALL SELECT DISTINCT 'items', sync_id, NULL::VARCHAR, NULL::VARCHAR, "
    "NULL::DECIMAL(38,9) FROM push_items WHERE sync_id IN (SELECT unnest(?::VARCHAR[])) "
    "UNION ALL SELECT 'ledger', company_id, transaction_id, currency, total_amount "
    "FROM transactions WHERE transaction_id IN (SELECT unnest(?::VARCHAR[])) "
    "UNION ALL SELECT 'attempt', company_id, transaction_id, sync_id, NULL::DECIMAL(38,9) "
    "FROM transaction_attempts WHERE transaction_id IN (SELECT unnest(?::VARCHAR[]))"
)


def read_before(db, sync_ids: list[str], ids: list[str]) -> Before:
    before = Before()
    for tag, first, second, third, amount in db.execute(
        READ_BEFORE, [sync_ids, sync_ids, ids, ids]
    ).fetchall():
        if tag == "settled":
            before.settled.add(first)
        elif tag == "items":
            before.with_items.add(first)
        elif tag == "ledger":
            before.amounts[(first, second)] = (amount, third)
        else:
            before.attempted.add((first, second, third))
    return before
