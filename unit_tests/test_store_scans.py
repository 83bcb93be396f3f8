"""Every statement of the push path costs O(batch), not O(table): on a ledger of BIG rows, no
statement a push, a sync's acceptance or its outcome runs reads more than a few batches' rows
(DuckDB's profiler counts the rows each table scan read). Without schema v6's single-column
indexes, or with a lookup that filters on the company too, a scan reads the whole table."""

from __future__ import annotations

import contextlib
import json

import pytest
from fake_codat import COMPANY, STREAM, mapped

from destination_codat_expenses.store import db
from destination_codat_expenses.store.db import release, transaction
from destination_codat_expenses.store.status_store import StatusStore

BIG = 30_000
BATCH = 50


class Profiled:
    """A connection that records the most rows any table scan of each statement read."""

    def __init__(self, connection, profile_path: str, scans: list) -> None:
        self.connection, self.profile_path, self.scans = connection, profile_path, scans

    def execute(self, sql: str, params=None):
        rows = self.connection.execute(sql, params or []).fetchall()
        with open(self.profile_path) as profile:
            self.scans.append((most_rows_scanned(json.load(profile)), sql[:80]))
        return Rows(rows)


class Rows:
    def __init__(self, rows: list) -> None:
        self.rows = rows

    def fetchall(self) -> list:
        return self.rows

    def fetchone(self):
        return self.rows[0] if self.rows else None


def most_rows_scanned(node: dict) -> int:
    own = node.get("operator_rows_scanned") or 0
    return max([own, *(most_rows_scanned(child) for child in node.get("children", []))])


@pytest.fixture
def big_store(tmp_path, monkeypatch):
    path = str(tmp_path / "status.duckdb")
    store = StatusStore(path)
    store.prepare()
    with transaction(path) as connection:
        connection.execute(
            "INSERT INTO transactions (company_id, transaction_id, state, last_sync_id, "
            "updated_at) SELECT ?, uuid()::VARCHAR, 'completed', 'old-' || (i // 50), now() "
            "FROM range(?) t(i)",
            [COMPANY, BIG],
        )
        connection.execute(
            "INSERT INTO push_items SELECT last_sync_id, company_id, transaction_id, NULL, "
            "NULL, 'Completed', NULL, NULL, NULL, now() FROM transactions"
        )
        connection.execute(
            "INSERT INTO transaction_attempts SELECT company_id, transaction_id, last_sync_id, "
            "'Completed', NULL, now() FROM transactions"
        )
    profile_path = str(tmp_path / "profile.json")
    scans: list = []

    @contextlib.contextmanager
    def profiled_transaction():
        with transaction(path) as connection:
            connection.execute("PRAGMA enable_profiling='json'")
            connection.execute(f"PRAGMA profiling_output='{profile_path}'")
            connection.execute(
                'SET custom_profiling_settings=\'{"OPERATOR_ROWS_SCANNED": "true"}\''
            )
            try:
                yield Profiled(connection, profile_path, scans)
            finally:
                connection.execute("PRAGMA disable_profiling")

    monkeypatch.setattr(store.writer, "unit_of_work", profiled_transaction)
    yield store, scans
    release(path)


def test_a_push_its_sync_and_its_outcome_never_scan_the_ledger(big_store):
    store, scans = big_store
    batch = [mapped(f"new-{n}") for n in range(BATCH)]
    ids = [m.transaction_id for m in batch]
    store.ledger(COMPANY, ids)
    store.mark_sending(COMPANY, STREAM, batch)
    store.mark_sending(COMPANY, STREAM, batch)  # again: the rows exist, they are updated
    store.mark_sent(COMPANY, ids, {"sync_id": "sync-new"})
    items = [{"transactionId": tid, "status": "Completed", "message": "ok"} for tid in ids]
    status = {"syncId": "sync-new", "syncStatusCode": 2000, "syncStatus": "Completed"}
    store.record_sync_outcome(COMPANY, status, items)
    store.record_sync_outcome(COMPANY, status, items)  # recorded again (a refresh)
    assert len(scans) >= 10
    worst = max(scans)
    assert worst[0] <= 4 * BATCH, f"{worst[1]!r} read {worst[0]} rows of a {BIG}-row ledger"
    assert store.ledger(COMPANY, ids) == {
        tid: ("completed", mapped_hash(batch, tid)) for tid in ids
    }


def mapped_hash(batch, tid: str) -> str:
    return next(m.payload_hash for m in batch if m.transaction_id == tid)


def test_the_indexes_are_what_makes_the_lookups_cheap(tmp_path):
    """The same lookup on a store without schema v6 reads the whole table: the test above
    measures what it claims to."""
    path = str(tmp_path / "status.duckdb")
    original, db.MIGRATIONS = db.MIGRATIONS, db.MIGRATIONS[:-1]
    try:
        db.migrate(path)
    finally:
        db.MIGRATIONS = original
    profile_path = str(tmp_path / "profile.json")
    scans: list = []
    with transaction(path) as connection:
        connection.execute(
            "INSERT INTO transactions (company_id, transaction_id, state, updated_at) "
            "SELECT ?, uuid()::VARCHAR, 'completed', now() FROM range(?)",
            [COMPANY, BIG],
        )
        connection.execute("PRAGMA enable_profiling='json'")
        connection.execute(f"PRAGMA profiling_output='{profile_path}'")
        connection.execute('SET custom_profiling_settings=\'{"OPERATOR_ROWS_SCANNED": "true"}\'')
        from destination_codat_expenses.store import ledger

        ledger.ledger_rows(Profiled(connection, profile_path, scans), COMPANY, ["x", "y"])
        connection.execute("PRAGMA disable_profiling")
    release(path)
    assert max(scans)[0] == BIG
