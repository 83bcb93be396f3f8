"""Read-side questions the operator tools ask of the store (views, parameters only).

One exception to "views only": whether a receipt still waits in the ledger is read from
`transactions.receipt` (schema v2 added the column, not a view column for it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from destination_codat_expenses import jsonwire
from destination_codat_expenses.errors import StoreError
from destination_codat_expenses.models import (
    FAILED_ITEM,
    NOT_UPLOADED_FOR_GOOD,
    PENDING,
    REFUSED,
    UPLOADED,
    sql_list,
)
from destination_codat_expenses.redaction import shown
from destination_codat_expenses.store.db import reading, store_exists

SYNC_COLUMNS = (
    "sync_id",
    "company_id",
    "outcome",
    "status_code",
    "status_text",
    "flow",
    "initiated_at",
    "completed_at",
    "item_count",
    "failed_count",
    "target_platform",
    "retry_of",
)


@dataclass(frozen=True)
class SyncFilter:
    company: str | None = None
    search: str | None = None  # part of a sync or company id
    status_code: int | None = None
    since: date | None = None
    until: date | None = None
    limit: int = 50


@contextlib.contextmanager
def store_views(path: str, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read connection to an existing, migrated store; a clear error otherwise. read_only:
    a connection of its own, closed at once (db.reading), for a process that only reads."""
    if not store_exists(path):
        raise StoreError(f"There is no status store at {shown(path)}.")
    try:
        with reading(path, read_only=read_only) as db:
            yield db
    except duckdb.CatalogException:
        raise StoreError(
            f"{shown(path)} is not a status store yet (no tables): run the destination "
            "or `codat-expenses status refresh` first."
        ) from None


def rows_as_dicts(cursor) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def list_syncs(path: str, where: SyncFilter) -> list[dict[str, Any]]:
    like = f"%{where.search}%" if where.search else None
    with store_views(path) as db:
        cursor = db.execute(
            f"SELECT {', '.join(SYNC_COLUMNS)} FROM v_syncs "
            "WHERE (? IS NULL OR company_id = ?) "
            "AND (? IS NULL OR sync_id ILIKE ? OR company_id ILIKE ?) "
            "AND (? IS NULL OR status_code = ?) "
            "AND (? IS NULL OR CAST(initiated_at AS DATE) >= ?) "
            "AND (? IS NULL OR CAST(initiated_at AS DATE) <= ?) "
            "ORDER BY initiated_at DESC NULLS LAST LIMIT ?",
            [
                where.company,
                where.company,
                like,
                like,
                like,
                where.status_code,
                where.status_code,
                where.since,
                where.since,
                where.until,
                where.until,
                where.limit,
            ],
        )
        return rows_as_dicts(cursor)


def sync_details(path: str, sync_id: str) -> dict[str, Any] | None:
    with store_views(path) as db:
        rows = rows_as_dicts(db.execute("SELECT * FROM v_syncs WHERE sync_id = ?", [sync_id]))
    return rows[0] if rows else None


def push_items(path: str, sync_id: str) -> list[dict[str, Any]]:
    with store_views(path) as db:
        return rows_as_dicts(
            db.execute(
                "SELECT transaction_id, status, data_type, record_id, amount, currency, message, "
                "source_key FROM v_push_items WHERE sync_id = ? ORDER BY status, transaction_id",
                [sync_id],
            )
        )


def retryable_items(path: str, sync_id: str) -> list[dict[str, Any]]:
    """Items a sync failed that no later sync has completed: id, company, exact payload."""
    with store_views(path) as db:
        rows = rows_as_dicts(
            db.execute(
                "SELECT t.company_id, t.transaction_id, t.source_stream, t.source_key, t.payload, "
                "t.state, p.status, p.message FROM push_items p JOIN transactions t USING "
                "(company_id, transaction_id) WHERE p.sync_id = ? AND p.status IN "
                f"{sql_list(FAILED_ITEM)} AND t.state <> 'completed' "
                "ORDER BY t.transaction_id",
                [sync_id],
            )
        )
    for row in rows:
        row["payload"] = jsonwire.loads(row["payload"]) if row["payload"] else None
    return rows


def known_companies(path: str) -> list[str]:
    with store_views(path) as db:
        rows = db.execute(
            "SELECT DISTINCT company_id FROM v_syncs UNION SELECT DISTINCT "
            "company_id FROM v_transactions ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


@dataclass(frozen=True)
class StoreCounts:
    """What the demo's summary says, and the facts it checks against Codat first."""

    codes: list[tuple[int | None, int]]  # (status code, syncs), by code; None: not known yet
    outcomes: dict[str, int]  # succeeded / failed / in progress -> syncs
    sync_codes: dict[str, int | None]  # sync id -> status code
    item_statuses: dict[tuple[str, str], str]  # (sync id, transaction id) -> Codat's status
    states: dict[str, int]  # ledger state -> transactions
    rejects: list[tuple[str, str]]  # (field, reason), sorted
    receipts: dict[str, int]  # uploaded / pending / refused -> receipts
    webhooks: int  # webhook events recorded


def outcome_counts(path: str) -> StoreCounts:
    """The whole store in a few numbers (the demo's summary), with every sync's code and every
    push item's status. A connection of its own, read only: the reader holds no lock past
    this call."""
    with reading(path, read_only=True) as db:
        return StoreCounts(
            codes=db.execute(
                "SELECT status_code, count(*) FROM v_syncs GROUP BY 1 ORDER BY 1 NULLS FIRST"
            ).fetchall(),
            outcomes=dict(
                db.execute("SELECT outcome, count(*) FROM v_syncs GROUP BY 1").fetchall()
            ),
            sync_codes=dict(db.execute("SELECT sync_id, status_code FROM v_syncs").fetchall()),
            item_statuses={
                (sync, tid): status
                for sync, tid, status in db.execute(
                    "SELECT sync_id, transaction_id, status FROM v_push_items"
                ).fetchall()
            },
            states=dict(
                db.execute("SELECT state, count(*) FROM v_transactions GROUP BY 1").fetchall()
            ),
            rejects=db.execute("SELECT field, reason FROM v_rejects ORDER BY 1, 2").fetchall(),
            receipts=count_receipts(db),
            webhooks=db.execute("SELECT count(*) FROM v_webhook_events").fetchone()[0],
        )


# -- receipts -----------------------------------------------------------------------------------
# One row per receipt of a completed transaction, under the sync that completed it: uploaded or
# refused for good (its attachment row says so), or pending (it still waits in the ledger:
# never tried, or Codat could not take it yet).
RECEIPT_OUTCOMES = (
    f"(SELECT sync_id, company_id, transaction_id, CASE WHEN status = '{UPLOADED}' THEN "
    f"'{UPLOADED}' ELSE '{REFUSED}' END AS outcome FROM v_attachments WHERE status IN "
    f"{sql_list((UPLOADED, *NOT_UPLOADED_FOR_GOOD))} "
    f"UNION ALL SELECT last_sync_id, company_id, transaction_id, '{PENDING}' FROM transactions "
    "WHERE state = 'completed' AND receipt IS NOT NULL) receipts"
)
RECEIPT_OUTCOME_NAMES = (UPLOADED, PENDING, REFUSED)


def receipt_counts(path: str, sync_id: str | None = None) -> dict[str, int]:
    """{"uploaded": n, "pending": n, "refused": n}: the receipts of completed transactions,
    of one sync or (sync_id None) of the whole store. A read-only connection of its own."""
    with store_views(path, read_only=True) as db:
        return count_receipts(db, sync_id)


def count_receipts(db, sync_id: str | None = None) -> dict[str, int]:
    rows = db.execute(
        f"SELECT outcome, count(*) FROM {RECEIPT_OUTCOMES} WHERE (? IS NULL OR "
        "sync_id = ?) GROUP BY 1",
        [sync_id, sync_id],
    ).fetchall()
    return {name: 0 for name in RECEIPT_OUTCOME_NAMES} | dict(rows)


def receipts_by_sync(path: str, sync_ids: list[str]) -> dict[str, dict[str, int]]:
    """receipt_counts for each of these syncs (only those with receipts)."""
    with store_views(path) as db:
        rows = db.execute(
            f"SELECT sync_id, outcome, count(*) FROM {RECEIPT_OUTCOMES} WHERE sync_id IN "
            "(SELECT unnest(?::VARCHAR[])) GROUP BY 1, 2",
            [sync_ids],
        ).fetchall()
    counts: dict[str, dict[str, int]] = {}
    for sync_id, outcome, n in rows:
        counts.setdefault(sync_id, {name: 0 for name in RECEIPT_OUTCOME_NAMES})[outcome] = n
    return counts


def sync_receipts(path: str, sync_id: str) -> list[dict[str, Any]]:
    """Each receipt of the sync's completed transactions: file, status and why (a pending one
    never tried yet has no attachment row, and says so)."""
    with store_views(path) as db:
        return rows_as_dicts(
            db.execute(
                "SELECT transaction_id, file_name, status, message FROM v_attachments WHERE "
                "sync_id = ? UNION ALL SELECT t.transaction_id, "
                f"json_extract_string(t.receipt, '$.file_name'), '{PENDING}', "
                "'waiting for its first upload' FROM transactions t WHERE t.last_sync_id = ? "
                "AND t.state = 'completed' AND t.receipt IS NOT NULL AND NOT EXISTS (SELECT 1 "
                "FROM v_attachments a WHERE a.company_id = t.company_id AND a.transaction_id "
                "= t.transaction_id) ORDER BY status, transaction_id",
                [sync_id, sync_id],
            )
        )


# -- runs, rejects, the ledger --------------------------------------------------------------------
RUN_COLUMNS = (
    "run_id",
    "outcome",
    "started_at",
    "duration_s",
    "records_in",
    "records_accepted",
    "records_rejected",
    "checkpoints",
    "syncs",
    "error",
)
REJECT_COLUMNS = ("rejected_at", "run_id", "stream", "record_key", "field", "reason")


@dataclass(frozen=True)
class RejectFilter:
    run: str | None = None
    stream: str | None = None
    field: str | None = None
    search: str | None = None  # part of the record key or the reason
    limit: int = 50


def list_runs(path: str, outcome: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Runs, newest first: outcome, counts, how long each took (None while running), the
    syncs it opened, and why a failed run failed."""
    with store_views(path) as db:
        return rows_as_dicts(
            db.execute(
                "SELECT r.run_id, r.outcome, r.started_at, date_diff('millisecond', "
                "r.started_at, r.finished_at) / 1000.0 AS duration_s, r.records_in, "
                "r.records_accepted, r.records_rejected, r.checkpoints, (SELECT count(*) FROM "
                "v_syncs s WHERE s.run_id = r.run_id) AS syncs, r.error FROM v_runs r "
                "WHERE (? IS NULL OR r.outcome = ?) ORDER BY r.started_at DESC LIMIT ?",
                [outcome, outcome, limit],
            )
        )


def list_rejects(path: str, where: RejectFilter) -> list[dict[str, Any]]:
    """Bad input records, newest first, with the field and the reason."""
    like = f"%{where.search}%" if where.search else None
    with store_views(path) as db:
        return rows_as_dicts(
            db.execute(
                f"SELECT {', '.join(REJECT_COLUMNS)} FROM v_rejects "
                "WHERE (? IS NULL OR run_id = ?) AND (? IS NULL OR stream = ?) "
                "AND (? IS NULL OR field = ?) "
                "AND (? IS NULL OR record_key ILIKE ? OR reason ILIKE ?) "
                "ORDER BY rejected_at DESC, run_id, record_key LIMIT ?",
                [
                    where.run,
                    where.run,
                    where.stream,
                    where.stream,
                    where.field,
                    where.field,
                    like,
                    like,
                    like,
                    where.limit,
                ],
            )
        )


VERSION_COLUMNS = [
    "company_id",
    "version",
    "kind",
    "state",
    "codat_status",
    "sync_id",
    "currency",
    "total_amount",
    "updated_at",
    "message",
]


def transaction_versions(path: str, transaction_id: str) -> list[dict[str, Any]]:
    """Every version of a transaction, oldest first: those an update superseded, the current
    one, and a change held until the current one's push is final."""
    with store_views(path) as db:
        return rows_as_dicts(
            db.execute(
                f"SELECT {', '.join(VERSION_COLUMNS)} FROM v_transaction_versions "
                "WHERE transaction_id = ? ORDER BY company_id, version, updated_at",
                [transaction_id],
            )
        )


def ledger_states(path: str, company_id: str, ids: list[str]) -> dict[str, str]:
    """transaction id -> ledger state (sending, sent, completed, failed) of these ids."""
    with store_views(path) as db:
        rows = db.execute(
            "SELECT transaction_id, state FROM v_transactions WHERE company_id = ? AND "
            "transaction_id IN (SELECT unnest(?::VARCHAR[]))",
            [company_id, ids],
        ).fetchall()
    return dict(rows)
