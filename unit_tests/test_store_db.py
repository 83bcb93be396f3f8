"""The status store opens, migrates once, waits for another process's lock, and rolls back."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from destination_codat_expenses.errors import StoreError
from destination_codat_expenses.store import db
from destination_codat_expenses.store.db import migrate, reading, release, transaction


def test_migrate_creates_tables_and_views_once(tmp_path):
    path = str(tmp_path / "status.duckdb")
    assert migrate(path) == db.version_of(db.MIGRATIONS[-1])
    assert migrate(path) == db.version_of(db.MIGRATIONS[-1])
    with reading(path) as connection:
        names = {
            r[0]
            for r in connection.execute(
                "SELECT table_name FROM information_schema.tables"
            ).fetchall()
        }
        versions = connection.execute(
            "SELECT list(version ORDER BY version) FROM schema_migrations"
        ).fetchone()
    assert {
        "runs",
        "syncs",
        "push_items",
        "transactions",
        "rejects",
        "webhook_events",
        "v_syncs",
        "v_push_items",
        "v_transactions",
    } <= names
    assert versions == ([db.version_of(m) for m in db.MIGRATIONS],)


def test_version_1_store_is_migrated_in_place(tmp_path):
    from destination_codat_expenses.store import db

    path = str(tmp_path / "status.duckdb")
    first_only = db.MIGRATIONS[:1]
    original, db.MIGRATIONS = db.MIGRATIONS, first_only
    try:
        assert migrate(path) == 1
    finally:
        db.MIGRATIONS = original
    with transaction(path) as connection:
        connection.execute("INSERT INTO rejects VALUES ('r', 's', 'k', 'f', 'kept', now())")
    assert migrate(path) == db.version_of(db.MIGRATIONS[-1])
    with reading(path) as connection:
        columns = {r[0] for r in connection.execute("DESCRIBE transactions").fetchall()}
        kept = connection.execute("SELECT reason FROM rejects").fetchall()
    assert "receipt" in columns and kept == [("kept",)]


def test_version_2_store_gains_the_run_error_at_the_end_of_runs(tmp_path):
    from destination_codat_expenses.store import db

    path = str(tmp_path / "status.duckdb")
    original, db.MIGRATIONS = db.MIGRATIONS, db.MIGRATIONS[:2]
    try:
        assert migrate(path) == 2
    finally:
        db.MIGRATIONS = original
    with transaction(path) as connection:
        connection.execute(
            "INSERT INTO runs (run_id, started_at, outcome) VALUES ('r', now(), 'x')"
        )
    assert migrate(path) == db.version_of(db.MIGRATIONS[-1])
    with reading(path) as connection:
        columns = [r[0] for r in connection.execute("DESCRIBE runs").fetchall()]
        view = [r[0] for r in connection.execute("DESCRIBE v_runs").fetchall()]
        kept = connection.execute("SELECT run_id, outcome, error FROM runs").fetchall()
    assert columns[-1] == "error" and view[-1] == "error"
    assert kept == [("r", "x", None)]


def test_failed_unit_of_work_rolls_back(tmp_path):
    path = str(tmp_path / "status.duckdb")
    migrate(path)
    with pytest.raises(RuntimeError), transaction(path) as connection:
        connection.execute("INSERT INTO rejects VALUES ('r', 's', 'k', 'f', 'why', now())")
        raise RuntimeError("boom")
    with reading(path) as connection:
        assert connection.execute("SELECT count(*) FROM rejects").fetchone() == (0,)


def hold_lock(path: str, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import duckdb, sys, time
        c = duckdb.connect({path!r})
        print("locked", flush=True)
        time.sleep({seconds})
        c.close()
    """)
    release(path)  # this process's lease would otherwise keep the file for IDLE_S
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_writer_waits_for_another_process_lock(tmp_path):
    path = str(tmp_path / "status.duckdb")
    migrate(path)
    holder = hold_lock(path, 1.0)
    with transaction(path) as connection:
        connection.execute("INSERT INTO rejects VALUES ('r', 's', 'k', 'f', 'why', now())")
    holder.wait(timeout=10)
    with reading(path) as connection:
        assert connection.execute("SELECT count(*) FROM rejects").fetchone() == (1,)


def test_idle_lease_lets_another_process_in(tmp_path):
    path = str(tmp_path / "status.duckdb")
    migrate(path)
    code = f"import duckdb; duckdb.connect({path!r}, read_only=True).close(); print('ok')"
    time.sleep(0.6)  # past IDLE_S: the lease has closed
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_lock_held_past_the_wait_is_a_store_error(tmp_path):
    path = str(tmp_path / "status.duckdb")
    migrate(path)
    holder = hold_lock(path, 3.0)
    try:
        with pytest.raises(StoreError) as raised, transaction(path, wait_s=0.3):
            pass
        assert "could not be opened" in str(raised.value)
    finally:
        holder.wait(timeout=10)


def test_unwritable_location_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((StoreError, OSError)):
        migrate(str(blocker / "status.duckdb"))


def test_version_3_store_gains_where_each_sync_status_came_from(tmp_path):
    """Before v4 a webhook wrote an inferred code (data_pushed NULL): it becomes the webhook's
    report, to confirm; Codat's own codes and the 404 marker keep theirs; a sync only a webhook
    named gets its first-seen time, so v_syncs has a time for every sync."""
    from destination_codat_expenses.store import db

    path = str(tmp_path / "status.duckdb")
    original, db.MIGRATIONS = db.MIGRATIONS, db.MIGRATIONS[:3]
    try:
        assert migrate(path) == 3
    finally:
        db.MIGRATIONS = original
    with transaction(path) as connection:
        connection.execute(
            "INSERT INTO syncs (sync_id, company_id, initiated_at, status_code, status_text, "
            "error_message, data_pushed, updated_at) VALUES "
            "('api', 'c', TIMESTAMPTZ '2024-05-01 10:00:00+00', 5120, 'Failed', 'm', TRUE, "
            "TIMESTAMPTZ '2024-05-01 10:05:00+00'), "
            "('guessed', 'c', NULL, 5130, 'PushError', '1 of 2 transactions failed: x', NULL, "
            "TIMESTAMPTZ '2024-05-02 09:00:00+00'), "
            "('gone', 'c', NULL, 404, 'NotFoundAtCodat', 'Codat answered 404', FALSE, "
            "TIMESTAMPTZ '2024-05-03 09:00:00+00'), "
            "('open', 'c', TIMESTAMPTZ '2024-05-04 09:00:00+00', NULL, NULL, NULL, NULL, "
            "TIMESTAMPTZ '2024-05-04 09:00:00+00')"
        )
        connection.execute(
            "INSERT INTO webhook_events (webhook_id, received_at, verified, applied, sync_id) "
            "VALUES ('w1', now(), TRUE, TRUE, 'guessed')"
        )
    assert migrate(path) == db.version_of(db.MIGRATIONS[-1])
    with reading(path) as connection:
        rows = connection.execute(
            "SELECT sync_id, status_code, status_source, reported_outcome, error_message, "
            "strftime(initiated_at, '%m-%d %H:%M'), start_known, outcome "
            "FROM v_syncs ORDER BY sync_id"
        ).fetchall()
        columns = [r[0] for r in connection.execute("DESCRIBE syncs").fetchall()]
    assert rows == [
        ("api", 5120, "codat", None, "m", "05-01 10:00", True, "failed"),
        ("gone", 404, "product", None, "Codat answered 404", "05-03 09:00", False, "failed"),
        ("guessed", None, "webhook", "unsuccessful", None, "05-02 09:00", False, "unconfirmed"),
        ("open", None, None, None, None, "05-04 09:00", True, "in progress"),
    ]
    assert columns[-4:] == ["first_seen_at", "status_source", "reported_outcome", "reported_at"]


CRASH_AFTER_MIGRATING = """
import os, sys
from destination_codat_expenses.store import db
path, versions = sys.argv[1], int(sys.argv[2])
db.MIGRATIONS = db.MIGRATIONS[:versions]
db.migrate(path)
with db.transaction(path) as connection:
    connection.execute(
        "INSERT INTO syncs (sync_id, company_id, updated_at) VALUES (?, 'c', now())",
        [f"sync-v{versions}"],
    )
os._exit(0)  # no checkpoint: the next process replays the WAL
"""


def test_a_store_migrated_to_version_4_opens_again_after_a_crash(tmp_path):
    """The WAL the v4 migration leaves must replay (DuckDB 1.5 cannot replay an ALTER TABLE
    that adds a non-constant default, which is why v4 rebuilds the table)."""
    path = str(tmp_path / "status.duckdb")
    for versions in (3, 4):  # a v3 store with a row, then v4 over it, each ending in a crash
        done = subprocess.run(
            [sys.executable, "-c", CRASH_AFTER_MIGRATING, path, str(versions)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert Path(path + ".wal").exists()
    with reading(path) as connection:
        rows = connection.execute(
            "SELECT sync_id, s.first_seen_at IS NOT NULL, v.start_known FROM syncs s "
            "JOIN v_syncs v USING (sync_id) ORDER BY 1"
        ).fetchall()
    assert rows == [("sync-v3", True, False), ("sync-v4", True, False)]
