"""Read-only looks at a real DuckDB status store, through the store's own connection helper."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from destination_codat_expenses.store.db import reading


@contextlib.contextmanager
def store_reader(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed after use. Through the store's own helper: in a process
    that also wrote the file (the in-process tests), it first gives up that process's lease."""
    with reading(str(path), read_only=True) as connection:
        yield connection


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with store_reader(path) as db:
        return db.execute(sql, params or []).fetchall()


def ledger(path: Path) -> dict[str, tuple]:
    """transaction id -> (company, state, codat_status, message, attempts, last_sync_id)."""
    rows = query(
        path,
        "SELECT transaction_id, company_id, state, codat_status, message, attempts, "
        "last_sync_id FROM transactions",
    )
    return {row[0]: row[1:] for row in rows}
