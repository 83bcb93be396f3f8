"""The ledger's hot statements, each O(batch) on a store of any size.

DuckDB 1.5 uses an ART index for a scan only when the filter is on one indexed column, and it
runs INSERT ... ON CONFLICT on a composite key as a join against the whole table. So the
ledger is reached through the single-column indexes of schema v6 (`transaction_id`, a push
item's `sync_id`): rows are found by id alone, a row of the same id in another company is told
apart here (in Python for reads, by a CASE that leaves it as it was for updates), new rows are
plain INSERTs (a primary-key probe, no scan), and counts come from what is in memory, not from
a recount. Unit tests check the plans (rows scanned) on a big ledger.
"""

from __future__ import annotations

from typing import Any

from destination_codat_expenses.models import FAILED_ITEM
from destination_codat_expenses.store import pg


def by_id(db, table: str, columns: str, ids: list[str]) -> list[tuple]:
    """Rows of `table` with these transaction ids (an index lookup), all companies."""
    return db.execute(
        f"SELECT company_id, transaction_id, {columns} FROM {table} "
        "WHERE transaction_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    ).fetchall()


def ledger_rows(db, company_id: str, ids: list[str]) -> dict[str, tuple]:
    """transaction id -> (state, payload hash, total, currency) of the company's rows."""
    rows = by_id(db, "transactions", "state, payload_hash, total_amount, currency", ids)
    return {row[1]: row[2:] for row in rows if row[0] == company_id}


def guarded(alias: str, match: str, assignments: dict[str, str]) -> str:
    """SET clauses that change only the rows `match` holds for, and keep the others as they
    were (a row found by id that belongs to another company, say)."""
    return ", ".join(
        f"{column} = CASE WHEN {match} THEN {value} ELSE {alias}.{column} END"
        for column, value in assignments.items()
    )


SENDING = {
    "state": "'sending'",
    "payload": "v.payload",
    "payload_hash": "v.hash",
    "issue_date": "v.issued",
    "currency": "v.currency",
    "total_amount": "v.total",
    "updated_at": "v.stamp",
    "receipt": "v.receipt",
    "source_stream": "v.stream",
    "source_key": "v.source_key",
}


def write_sending(db, table: str, params: list, fresh: list[bool]) -> None:
    """Rows `sending` from `table` (tid, co, stream, source_key, payload, hash, issued,
    currency, total, stamp, receipt, fresh): fresh ids inserted, the ids the company's ledger
    holds already updated (found by id)."""
    if any(fresh):
        db.execute(
            "INSERT INTO transactions (company_id, transaction_id, source_stream, source_key, "
            "state, payload, payload_hash, issue_date, currency, total_amount, updated_at, "
            "receipt) SELECT co, tid, stream, source_key, 'sending', payload, hash, issued, "
            f"currency, total, stamp, receipt FROM {table} v WHERE v.fresh",
            params,
        )
    if not all(fresh):
        db.execute(
            f"UPDATE transactions t SET {guarded('t', 't.company_id = v.co', SENDING)} "
            f"FROM {table} v WHERE t.transaction_id = v.tid AND NOT v.fresh",
            params,
        )


# a push Codat accepted: its ids are `sent`, carried by the sync (a table of tid, co, sync, stamp)
SENT = {
    "state": "'sent'",
    "codat_status": "'Pending'",
    "last_sync_id": "v.sync",
    "attempts": "t.attempts + 1",
    "updated_at": "v.stamp",
}


# On a shared (PostgreSQL) store two processes of a fleet may settle one sync at the same
# moment, each having read that it had no items yet: the second to commit writes the same rows
# again instead of failing on them. (A DuckDB file has one writing process.)
PUSH_ITEMS_AGAIN = (
    " ON CONFLICT (sync_id, transaction_id) DO UPDATE SET data_type = excluded.data_type, "
    "record_id = excluded.record_id, status = excluded.status, message = excluded.message, "
    "amount = excluded.amount, currency = excluded.currency, updated_at = excluded.updated_at"
)
ATTEMPTS_AGAIN = (
    " ON CONFLICT (company_id, transaction_id, sync_id) DO UPDATE SET status = "
    "excluded.status, message = excluded.message, recorded_at = excluded.recorded_at"
)


def insert_item_outcomes(db, outcome: tuple[str, list], attempted_any: bool) -> None:
    """Push items, attempts and ledger states from `outcome` (a derived table with tid,
    data_type, record_id, status, message, state, amount, currency, co, sync, stamp, and
    attempted: whether an attempt row for this sync exists already), of one sync or many."""
    table, params = outcome
    shared = pg.is_pg(db)
    db.execute(
        "INSERT INTO push_items (sync_id, company_id, transaction_id, data_type, record_id, "
        "status, message, amount, currency, updated_at) SELECT sync, co, tid, data_type, "
        f"record_id, status, message, amount, currency, stamp FROM {table} v"
        + (PUSH_ITEMS_AGAIN if shared else ""),
        params,
    )
    db.execute(
        "INSERT INTO transaction_attempts SELECT co, tid, sync, status, message, stamp "
        f"FROM {table} v WHERE NOT attempted" + (ATTEMPTS_AGAIN if shared else ""),
        params,
    )
    if attempted_any:  # rare (a refresh); else no statement at all, not even an empty join
        db.execute(
            "UPDATE transaction_attempts a SET "
            + guarded(
                "a",
                "a.company_id = v.co AND a.sync_id = v.sync",
                {"status": "v.status", "message": "v.message", "recorded_at": "v.stamp"},
            )
            + f" FROM {table} v WHERE a.transaction_id = v.tid AND v.attempted",
            params,
        )
    update_ledger_states(db, table, params)


def update_ledger_states(db, table: str, params: list) -> None:
    # only the sync that last carried an id may move it; a completed id never goes back
    db.execute(
        "UPDATE transactions t SET "
        + guarded(
            "t",
            "t.company_id = v.co AND t.last_sync_id = v.sync AND t.state <> 'completed'",
            {
                "state": "v.state",
                "codat_status": "v.status",
                "message": "v.message",
                "updated_at": "v.stamp",
            },
        )
        + f" FROM {table} v WHERE t.transaction_id = v.tid",
        params,
    )


def item_counts(items: list[dict[str, Any]]) -> tuple[int, int]:
    """(items, failed items) of a sync, from Codat's full list of its transactions."""
    return len(items), sum(1 for i in items if i.get("status") in FAILED_ITEM)
