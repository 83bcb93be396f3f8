"""Opening the DuckDB status store: shared briefly, waited for politely, migrated by version.

DuckDB lets one process hold a file for writing, and a reader in another process blocks a
writer too. So no process keeps the file longer than it must: a writing process holds it through
a `Lease` that closes the connection after IDLE_S without use, and gives it up at its next use
when another process is WAITING for it. A process that finds the file locked announces itself
with a small file in `<store>.waiters/` (named for its pid) while it waits, with jittered
backoff at most POLL_CAP_S apart, for up to LOCK_WAIT_S; the holder sees the announcement (one
directory listing per use), closes the file, and opens it again only once the waiter got in and
left its announcement (or after YIELD_CAP_S). Nothing sleeps holding the file. Announcements of
a process that died are swept. Within a process, threads take turns (the group writer in
writer.py is the one thread that writes for a running destination).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb

from destination_codat_expenses.errors import StoreError
from destination_codat_expenses.redaction import is_postgres
from destination_codat_expenses.store import pg, pg_read
from destination_codat_expenses.store.writer import TryAgain

logger = logging.getLogger("airbyte")  # the CDK forwards it to the Airbyte log
MIGRATIONS = [Path(__file__).with_name(f"schema_v{n}.sql") for n in (1, 2, 3, 4, 6, 7, 8)]
LOCK_WAIT_S = 30.0
IDLE_S, POLL_CAP_S, YIELD_CAP_S = 0.25, 0.05, 2.0
WAITER_CHECK_S = 0.05  # how often an open, unused file looks for a waiting process
# DuckDB caches pages up to 80% of RAM by default; a writer starts with little. Its ART
# indexes, though, hold every id the store has seen and come into memory as new keys land all
# over them (random ids): ~0.35 KiB per id over the ledger's tables, which a limit does not
# reliably evict (a run at 64 MB ran out). A writer whose store outgrows its limit doubles it,
# up to DuckDB's own default (Lease).
WRITER_MEMORY_BYTES = 256 * 2**20
OUT_OF_MEMORY = re.compile(r"(failed to pin|could not allocate) block of size")
SIZE_UNITS = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}


def is_lock_conflict(error: Exception) -> bool:
    return isinstance(error, duckdb.IOException) and "lock" in str(error).lower()


def is_out_of_memory(error: BaseException) -> bool:
    """DuckDB ran out of its memory limit: in a statement, or at COMMIT (a TransactionException
    saying "failed to pin block" or "could not allocate block")."""
    return isinstance(error, duckdb.OutOfMemoryException) or (
        isinstance(error, duckdb.Error) and OUT_OF_MEMORY.search(str(error)) is not None
    )


def bytes_of(setting: str) -> int:
    """DuckDB's way of showing a size ("244.1 MiB", "18.8 GiB") in bytes."""
    number, unit = setting.split()
    return int(float(number) * SIZE_UNITS[unit])


def open_connection(
    path: str, read_only: bool = False, wait_s: float = LOCK_WAIT_S
) -> duckdb.DuckDBPyConnection:
    """Connect, retrying with jittered backoff while another process holds the file's lock."""
    deadline = time.monotonic() + wait_s
    pause = 0.005
    with contextlib.ExitStack() as announcement:
        announced = False
        while True:
            try:
                return duckdb.connect(path, read_only=read_only)
            except duckdb.Error as error:
                if not is_lock_conflict(error) or time.monotonic() > deadline:
                    raise StoreError(
                        f"The status store {path} could not be opened: {first_line(error)}"
                    ) from None
            if not announced:  # the holder yields at its next use
                announcement.enter_context(waiting_for(path))
                announced = True
            time.sleep(pause * (1 + random.random()))
            pause = min(pause * 2, POLL_CAP_S)


# -- who waits for the file -----------------------------------------------------------------------
def waiters_dir(path: str) -> Path:
    return Path(str(Path(path).expanduser()) + ".waiters")


@contextlib.contextmanager
def waiting_for(path: str) -> Iterator[None]:
    """Announce that this process waits for the file, until it got in or gave up."""
    folder = waiters_dir(path)
    entry = folder / f"{os.getpid()}-{uuid.uuid4().hex}"
    try:
        folder.mkdir(exist_ok=True)
        entry.touch()
    except OSError:  # an unwritable folder: wait without announcing (the holder idles out)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            entry.unlink()


def others_waiting(path: str) -> bool:
    """Whether another live process announced it waits for the file (dead ones are swept)."""
    try:
        entries = os.listdir(waiters_dir(path))
    except OSError:
        return False
    waiting = False
    for name in entries:
        pid = int(name.split("-", 1)[0]) if name.split("-", 1)[0].isdigit() else -1
        if pid == os.getpid():
            continue
        if process_alive(pid):
            waiting = True
        else:
            with contextlib.suppress(OSError):
                (waiters_dir(path) / name).unlink()
    return waiting


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def let_waiters_in(path: str) -> None:
    """The file is closed: give the waiters their turn, without holding it."""
    until = time.monotonic() + YIELD_CAP_S
    while others_waiting(path) and time.monotonic() < until:
        time.sleep(POLL_CAP_S / 5)


class Lease:
    """This process's turn on one store file, shared by its threads one at a time."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.connection: duckdb.DuckDBPyConnection | None = None
        self.opened_at = self.last_used = 0.0
        self.closer: threading.Thread | None = None
        self.yields = 0  # times the file was given up to a waiting process
        self.memory_bytes = WRITER_MEMORY_BYTES  # kept across reopening: see grow_memory
        self.memory_checked_at = 0.0

    @contextlib.contextmanager
    def use(self, wait_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock:
            if self.connection is not None and others_waiting(self.path):
                self.close()
                self.yields += 1
                let_waiters_in(self.path)  # this process's threads wait; the file is free
            if self.connection is None:
                self.connection = open_connection(self.path, wait_s=wait_s)
                self.connection.execute(f"SET memory_limit = '{self.memory_bytes}B'")
                self.opened_at = time.monotonic()
                self.start_closer()
            try:
                yield self.connection
            finally:
                self.last_used = time.monotonic()

    def start_closer(self) -> None:
        if self.closer is None or not self.closer.is_alive():
            self.closer = threading.Thread(
                target=self.close_when_idle, daemon=True, name="store-lease"
            )
            self.closer.start()

    def close_when_idle(self) -> None:
        while True:
            time.sleep(WAITER_CHECK_S)
            if self.connection is None:
                return
            # looked at without the lock, which the writer takes for every flush
            waiting = others_waiting(self.path)
            if not waiting and time.monotonic() - self.last_used < IDLE_S:
                continue
            with self.lock:
                if self.connection is None:
                    return
                if waiting:  # another process waits: it need not wait for the idle timeout
                    self.close()
                    self.yields += 1
                    let_waiters_in(self.path)  # this process's threads wait; the file is free
                    return
                if time.monotonic() - self.last_used >= IDLE_S:
                    self.close()
                    return

    def mind_memory(self) -> None:
        """After a commit, now and then: when the store's indexes fill half the limit, double
        it before DuckDB runs out (running out mid-commit leaves its state untrustworthy)."""
        now = time.monotonic()
        if self.connection is None or now - self.memory_checked_at < MEMORY_CHECK_S:
            return
        self.memory_checked_at = now
        with contextlib.suppress(duckdb.Error):
            (indexes,) = self.connection.execute(INDEX_MEMORY).fetchone()
            if indexes * 2 > self.memory_bytes and self.grow_memory():
                self.connection.execute(f"SET memory_limit = '{self.memory_bytes}B'")

    def grow_memory(self) -> bool:
        """Double the limit the next connection gets, up to DuckDB's default (80% of the memory
        this process may use); False when it is there already."""
        grown = min(self.memory_bytes * 2, duckdb_default_memory())
        if grown <= self.memory_bytes:
            return False
        self.memory_bytes = grown
        logger.warning(
            "the status store %s needs more memory for its indexes: the writer may now use %d MiB",
            self.path,
            grown >> 20,
        )
        return True

    def discard(self) -> None:
        """Close a connection whose work ran out of memory without checkpointing it: DuckDB
        may not have undone all of a failed commit in memory (its indexes kept keys of rows
        that were never written, or it gave up), and a checkpoint would write that to the
        file. The next connection reads the file and its log, which hold only what committed."""
        with self.lock:
            if self.connection is not None:
                with contextlib.suppress(duckdb.Error):
                    self.connection.execute("PRAGMA disable_checkpoint_on_shutdown")
                with contextlib.suppress(duckdb.Error):
                    self.connection.close()
                self.connection = None

    def close(self) -> None:
        with self.lock:
            if self.connection is not None:
                with contextlib.suppress(duckdb.Error):
                    self.connection.close()
                self.connection = None


INDEX_MEMORY = (
    "SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() WHERE tag = 'ART_INDEX'"
)
MEMORY_CHECK_S = 1.0


@functools.cache
def duckdb_default_memory() -> int:
    """DuckDB's own memory limit in this process (it reads the machine's and any cgroup's)."""
    with duckdb.connect() as scratch:
        return bytes_of(scratch.execute("SELECT current_setting('memory_limit')").fetchone()[0])


LEASES: dict[str, Lease] = {}
LEASES_LOCK = threading.Lock()
BY_ABSOLUTE_PATH: dict[str, Lease] = {}


def lease_for(path: str) -> Lease:
    lease = BY_ABSOLUTE_PATH.get(path)  # resolving a path costs syscalls at every use
    if lease is not None:
        return lease
    key = str(Path(path).expanduser().resolve())
    with LEASES_LOCK:
        if key not in LEASES:
            LEASES[key] = Lease(path)
        if os.path.isabs(path):  # a relative one would change meaning with the directory
            BY_ABSOLUTE_PATH[path] = LEASES[key]
        return LEASES[key]


def release(path: str) -> None:
    """Give the file up now (tests, and a process about to hand over to another)."""
    if is_postgres(path):
        pg.backend_for(path).close()
        pg_read.reader_for(path).forget()
        return
    lease_for(path).close()


@atexit.register
def release_all() -> None:
    for lease in list(LEASES.values()):
        lease.close()


@contextlib.contextmanager
def transaction(path: str, wait_s: float = LOCK_WAIT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """One unit of work on the store: all of it commits, or none of it."""
    if is_postgres(path):
        with pg.backend_for(path).transaction() as db:
            yield db
        return
    lease = lease_for(path)
    with lease.use(wait_s) as connection:
        connection.execute("BEGIN TRANSACTION")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException as error:
            with contextlib.suppress(duckdb.Error):
                connection.execute("ROLLBACK")
            if is_out_of_memory(error):
                raise out_of_memory(lease) from error
            raise
        lease.mind_memory()  # committed: nothing after this may fail the work


def out_of_memory(lease: Lease) -> Exception:
    """The work failed for want of memory: its connection is discarded, and the work is to be
    tried again on a new one with more memory, or here is the reason none can be given."""
    lease.discard()
    if lease.grow_memory():
        return TryAgain("the status store needed more memory")
    return StoreError(
        f"The status store {lease.path} needs more memory than this process may use "
        f"({lease.memory_bytes >> 20} MiB): DuckDB keeps the indexes of every id the store has "
        "seen in memory. Give the destination more memory, or keep the status store in "
        "PostgreSQL (status_store: a postgresql:// URL)."
    )


@contextlib.contextmanager
def reading(
    path: str, wait_s: float = LOCK_WAIT_S, read_only: bool = False
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read. A process that also writes the file reads through its lease (DuckDB refuses two
    configurations of one file in one process); pure readers pass read_only=True and get a
    connection of their own that is closed at once. A PostgreSQL store is read through an
    in-memory DuckDB that attaches it read-only, with the same views (pg_read.py)."""
    if is_postgres(path):
        with pg_read.reader_for(path).cursor(MIGRATIONS) as db:
            yield db
        return
    if not read_only:
        with lease_for(path).use(wait_s) as connection:
            yield connection
        return
    lease = lease_for(path)
    with lease.lock:  # this process's own writes wait; DuckDB allows one configuration
        lease.close()
        connection = open_connection(path, read_only=True, wait_s=wait_s)
        try:
            yield connection
        finally:
            connection.close()


def migrate(path: str) -> int:
    """Bring the store's schema up to the newest version; returns the version it is at."""
    if is_postgres(path):
        pg.backend_for(path).migrate(pg_migrations())
        return version_of(MIGRATIONS[-1])
    Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    with transaction(path) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
        )
        done = {
            row[0] for row in connection.execute("SELECT version FROM schema_migrations").fetchall()
        }
        for script in MIGRATIONS:
            version = version_of(script)
            if version in done:
                continue
            connection.execute(script.read_text())
            connection.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])
            logger.info("status store %s migrated to version %d", path, version)
    return version_of(MIGRATIONS[-1])


def pg_migrations() -> list[tuple[int, Path]]:
    """PostgreSQL's scripts: the same versions; `pg_schema_vN.sql` where DuckDB's `schema_vN.sql`
    is not valid PostgreSQL (v4 rebuilds a table that views depend on), else DuckDB's own."""
    scripts = []
    for script in MIGRATIONS:
        own = script.with_name(f"pg_{script.name}")
        scripts.append((version_of(script), own if own.exists() else script))
    return scripts


def ping(path: str) -> None:
    """Open the PostgreSQL store and read its schema version (StoreError when it cannot)."""
    with pg.backend_for(path).transaction() as db:
        db.execute("SELECT max(version) FROM schema_migrations").fetchone()


def store_exists(path: str) -> bool:
    """A DuckDB file that exists; a PostgreSQL URL is taken to exist (opening it tells)."""
    return is_postgres(path) or Path(path).expanduser().exists()


def version_of(script: Path) -> int:
    """schema_v6.sql is version 6 (a number may be left free for another branch's migration)."""
    return int(script.stem.removeprefix("schema_v"))


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
