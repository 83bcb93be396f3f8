"""Read-side questions the operator tools ask of the store (views only, parameters only)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from destination_codat_expenses import jsonwire
from destination_codat_expenses.errors import StoreError
from destination_codat_expenses.models import FAILED_ITEM, sql_list
from destination_codat_expenses.store.db import reading

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
def store_views(path: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read connection to an existing, migrated store; a clear error otherwise."""
    if not Path(path).expanduser().exists():
        raise StoreError(f"There is no status store at {path}.")
    try:
        with reading(path) as db:
            yield db
    except duckdb.CatalogException:
        raise StoreError(
            f"{path} is not a status store yet (no tables): run the destination "
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
            receipts=receipt_outcomes(db),
            webhooks=db.execute("SELECT count(*) FROM v_webhook_events").fetchone()[0],
        )


def receipt_outcomes(db: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Receipts uploaded, pending (a completed transaction's receipt not yet recorded as
    uploaded or refused; the ledger keeps it until then) and refused (any other recorded
    outcome)."""
    uploaded, pending, refused = db.execute(
        "SELECT (SELECT count(*) FROM v_attachments WHERE status = 'uploaded'), "
        "(SELECT count(*) FROM transactions WHERE state = 'completed' AND receipt IS NOT NULL), "
        "(SELECT count(*) FROM v_attachments WHERE status <> 'uploaded')"
    ).fetchone()
    return {"uploaded": uploaded, "pending": pending, "refused": refused}
