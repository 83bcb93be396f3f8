"""The PostgreSQL backend: one connection per process, the writer's SQL as written for DuckDB,
migrations under an advisory lock, and claims that a fleet of processes can trust.

The store's statements are written once with DuckDB's `?` placeholders; `PgDb.execute` turns
them into psycopg's `%s` and hands back a cursor (fetchall, fetchone, description), so
StatusStore, ledger.py and webhook_events.py run on both. JSON columns are read back as text,
as DuckDB gives them, and the session's time zone is UTC. Where the dialects differ, the
statement for each backend sits side by side in store/ (see `is_pg`).

Claims. Many processes share one ledger: an id is claimed with real uniqueness before its push
leaves (the primary key: `INSERT ... ON CONFLICT DO NOTHING RETURNING`; a known id only by a
compare-and-set of its state) and, while its push is in flight, the claiming process holds a
session-level advisory lock keyed on (company, id) on its store connection. The lock is what
tells a live claim from a dead one: a process that dies loses its connection and with it its
locks, so the reconcile step of any later run can take the lock and, with it, the row. A row
`sending` whose lock another session holds is that process's job, and nobody else pushes it.
Locks are let go only after the commit that moved their rows on (`release_after_commit`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from destination_codat_expenses.errors import StoreError
from destination_codat_expenses.redaction import scrubbed, shown
from destination_codat_expenses.store.writer import TryAgain

if TYPE_CHECKING:  # imported where a connection is made: a DuckDB store's process never needs it
    import psycopg

MIGRATION_LOCK = 7_301_205_918_411  # pg_advisory_xact_lock key: one migrator at a time
CONNECT_TIMEOUT_S = 10
# how long a fresh row's claim waits for another session to let its lock go (see wait_for_locks)
FRESH_LOCK_WAIT_MS = 5_000


@functools.lru_cache(maxsize=512)
def placeholders(sql: str) -> str:
    """DuckDB's `?` as psycopg's `%s` (a literal `%` doubled), string literals left alone."""
    out, quoted = [], False
    for ch in sql:
        if ch == "'":
            quoted = not quoted
            out.append(ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "?" and not quoted:
            out.append("%s")
        else:
            out.append(ch)
    return "".join(out)


def claim_key(company_id: str, transaction_id: str) -> int:
    """The advisory lock key of one ledger row: a signed 64-bit hash of (company, id)."""
    digest = hashlib.sha256(f"{company_id}\x1f{transaction_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PgDb:
    """What a unit of work gets: `execute(sql, params)` in DuckDB's placeholder style."""

    dialect = "postgres"

    def __init__(self, backend: PgBackend, connection: psycopg.Connection) -> None:
        self.backend, self.connection = backend, connection
        self.after_commit: list[tuple[str, str]] = []  # claims to let go once committed
        self.locked: list[int] = []  # claim locks taken in this unit of work

    def execute(self, sql: str, params: list | tuple | None = None) -> psycopg.Cursor:
        cursor = self.connection.cursor()
        if params is None:
            cursor.execute(sql)  # a script (several statements) or no placeholders
        else:
            cursor.execute(placeholders(sql), list(params))
        return cursor

    def release_after_commit(self, company_id: str, ids: list[str]) -> None:
        self.after_commit.extend((company_id, tid) for tid in ids)


def is_pg(db) -> bool:
    return isinstance(db, PgDb)


class PgBackend:
    """This process's connection to one PostgreSQL store, used by one thread at a time."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.RLock()
        self.connection: psycopg.Connection | None = None
        self.held: dict[int, tuple[str, str]] = {}  # claim key -> (company, id) held here
        self.taken: set[tuple[str, str]] = set()  # of those, rows taken over from dead ones

    def connect(self) -> psycopg.Connection:
        import psycopg
        from psycopg.types.string import TextLoader

        try:
            connection = psycopg.connect(
                self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error as error:
            raise StoreError(
                f"The status store {shown(self.url)} could not be opened: "
                f"{scrubbed(first_line(error), self.url)}"
            ) from None
        connection.execute("SET TIME ZONE 'UTC'")
        for json_type in ("json", "jsonb"):  # as DuckDB gives them: text
            connection.adapters.register_loader(json_type, TextLoader)
        return connection

    def open_connection(self) -> psycopg.Connection:
        if self.connection is not None and self.connection.broken:
            self.connection = None
            if self.held:  # the locks went with the session: these claims are not ours now
                self.held.clear()
                self.taken.clear()
                raise StoreError(
                    f"The connection to the status store {shown(self.url)} was lost while "
                    "pushes were in flight; the run stops, and the next one reconciles them."
                )
        if self.connection is None:
            self.connection = self.connect()
        return self.connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[PgDb]:
        """One unit of work: all of it commits, or none of it; then its claims are let go."""
        import psycopg

        with self.lock:
            connection = self.open_connection()
            db = PgDb(self, connection)
            try:
                try:
                    with connection.transaction():
                        yield db
                except BaseException:
                    # a lock outlives the rollback of the claim it was taken for: let it go,
                    # or this session would later take the row (claimed meanwhile by another
                    # process) for one it took over, and push it too
                    self.unlock(db.locked)
                    raise
            except (
                psycopg.errors.DeadlockDetected,
                psycopg.errors.SerializationFailure,
                psycopg.errors.LockNotAvailable,  # wait_for_locks ran out of patience
            ):
                raise TryAgain(
                    "the status store rolled this work back for another writer's sake"
                ) from None
            except psycopg.OperationalError as error:
                raise StoreError(
                    f"The status store {shown(self.url)} failed: "
                    f"{scrubbed(first_line(error), self.url)}"
                ) from None
            if db.after_commit:
                self.unlock([claim_key(c, t) for c, t in db.after_commit])

    # -- claims ---------------------------------------------------------------------------------
    def try_lock(self, db: PgDb, rows: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Take the claim locks of these (company, id) rows that no other session holds; the
        ones this session holds already count as taken."""
        keys = {claim_key(c, t): (c, t) for c, t in rows}
        wanted = [k for k in keys if k not in self.held]
        got = set()
        if wanted:
            found = db.execute(
                "SELECT k FROM unnest(?::BIGINT[]) AS k WHERE pg_try_advisory_lock(k)", [wanted]
            ).fetchall()
            got = {row[0] for row in found}
        self.note_held(db, keys, got)
        return {keys[k] for k in keys if k in self.held}

    def wait_for_locks(self, db: PgDb, rows: list[tuple[str, str]]) -> None:
        """Take these rows' claim locks, waiting for a session that holds one to let it go: rows
        this unit of work has just inserted, whose lock only a session between rolling back its
        own insert of them and letting go of its locks can hold. Out of patience, the unit of
        work fails (LockNotAvailable: TryAgain), and its rows with it."""
        keys = {claim_key(c, t): (c, t) for c, t in rows}
        wanted = [k for k in keys if k not in self.held]
        if not wanted:
            return
        # counted as held before asking: a wait that runs out may have taken some of them,
        # and a session-level lock outlives the rollback (transaction() lets them all go)
        self.note_held(db, keys, wanted)
        db.execute(f"SET LOCAL lock_timeout = {FRESH_LOCK_WAIT_MS}")
        db.execute("SELECT count(pg_advisory_lock(k)) FROM unnest(?::BIGINT[]) AS k", [wanted])
        db.execute("SET LOCAL lock_timeout = DEFAULT")

    def note_held(self, db: PgDb, keys: dict[int, tuple[str, str]], taken) -> None:
        """Claim locks this session took, in this unit of work (let go if it rolls back)."""
        for key in taken:
            self.held[key] = keys[key]
        db.locked.extend(taken)

    def holds(self, company_id: str, transaction_id: str) -> bool:
        return claim_key(company_id, transaction_id) in self.held

    def unlock(self, keys: list[int]) -> None:
        mine = [k for k in set(keys) if k in self.held]
        if not mine or self.connection is None or self.connection.broken:
            return
        self.connection.execute(
            "SELECT pg_advisory_unlock(k) FROM unnest(%s::BIGINT[]) AS k", [mine]
        )
        for key in mine:
            self.taken.discard(self.held.pop(key))

    def unlock_all(self) -> None:
        with self.lock:
            if self.held and self.connection is not None and not self.connection.broken:
                self.connection.execute("SELECT pg_advisory_unlock_all()")
            self.held.clear()
            self.taken.clear()

    # -- schema -----------------------------------------------------------------------------------
    def migrate(self, scripts: list[tuple[int, Path]]) -> None:
        """Apply what is missing, one migrator at a time (an advisory lock for the transaction:
        two processes starting together do not both create the tables)."""
        with self.transaction() as db:
            db.execute("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK])
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
            )
            done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
            for version, script in scripts:
                if version not in done:
                    db.execute(script.read_text())
                    db.execute("INSERT INTO schema_migrations VALUES (?, now())", [version])

    def close(self) -> None:
        with self.lock:
            if self.connection is not None:
                import psycopg

                with contextlib.suppress(psycopg.Error):
                    self.connection.close()
                self.connection = None
                self.held.clear()
                self.taken.clear()


BACKENDS: dict[str, PgBackend] = {}
BACKENDS_LOCK = threading.Lock()


def backend_for(url: str) -> PgBackend:
    with BACKENDS_LOCK:
        if url not in BACKENDS:
            BACKENDS[url] = PgBackend(url)
        return BACKENDS[url]


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
