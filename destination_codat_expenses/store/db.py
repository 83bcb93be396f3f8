"""Opening the DuckDB status store: short connections, a bounded wait on another process's lock,
and versioned migrations.

DuckDB lets one process hold a file for writing, and a reader blocks a writer too, so nobody
keeps a connection: every unit of work opens, runs in one transaction, and closes.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from destination_codat_expenses.errors import StoreError

logger = logging.getLogger(__name__)
MIGRATIONS = [Path(__file__).with_name("schema_v1.sql")]
LOCK_WAIT_S = 30.0
WRITE_LOCK = threading.RLock()


def is_lock_conflict(error: Exception) -> bool:
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()


def open_connection(
    path: str, read_only: bool = False, wait_s: float = LOCK_WAIT_S
) -> duckdb.DuckDBPyConnection:
    """Connect, retrying with jittered backoff while another process holds the file's lock."""
    deadline = time.monotonic() + wait_s
    pause = 0.01
    while True:
        try:
            return duckdb.connect(path, read_only=read_only)
        except duckdb.Error as error:
            if not is_lock_conflict(error) or time.monotonic() > deadline:
                raise StoreError(
                    f"The status store {path} could not be opened: {first_line(error)}"
                ) from None
        time.sleep(pause * (1 + random.random()))
        pause = min(pause * 2, 0.5)


@contextlib.contextmanager
def transaction(path: str, wait_s: float = LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """One short read-write unit of work: all of it commits, or none of it.

    Writers in one process take turns (WRITE_LOCK), so pushes finishing on several threads
    never meet in a DuckDB transaction conflict; other processes are waited for by the lock.
    """
    with WRITE_LOCK:
        yield from unit_of_work(path, wait_s)


def unit_of_work(path: str, wait_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = open_connection(path, wait_s=wait_s)
    try:
        connection.execute("BEGIN TRANSACTION")
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()


@contextlib.contextmanager
def reading(
    path: str, wait_s: float = LOCK_WAIT_S, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short read. A process that also writes the file must read read-write (DuckDB refuses
    two configurations of one file in one process); pure readers pass read_only=True."""
    with WRITE_LOCK:
        connection = open_connection(path, read_only=read_only, wait_s=wait_s)
        try:
            yield connection
        finally:
            connection.close()


def migrate(path: str) -> int:
    """Bring the file's schema up to the newest version; returns the version it is at."""
    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    with transaction(path) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
        )
        done = {
            row[0] for row in connection.execute("SELECT version FROM schema_migrations").fetchall()
        }
        for version, script in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            connection.execute(script.read_text())
            connection.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
            logger.info("status store %s migrated to version %d", path, version)
    return len(MIGRATIONS)


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
