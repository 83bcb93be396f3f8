"""Reading a PostgreSQL store with DuckDB: every read query (the CLI's, the report's) stays
the one written for the DuckDB file.

An in-memory DuckDB attaches the PostgreSQL database read-only through DuckDB's postgres
extension, loaded from its wheel (`duckdb-extension-postgres-scanner`, nothing is downloaded at
run time), and defines the same `v_*` views as the DuckDB schema files (the newest definition
of each) over the attached tables. One such database per store and process; each read gets a
cursor of its own (a connection to it), closed after the read.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb

from destination_codat_expenses.errors import StoreError
from destination_codat_expenses.redaction import scrubbed, shown

VIEW = re.compile(r"CREATE OR REPLACE VIEW (\w+) AS\s+(.*?);\s*$", re.S | re.M)
ALIAS = "pgstore"


def extension_file() -> Path:
    try:
        import duckdb_extension_postgres_scanner as wheel
    except ImportError:  # pragma: no cover - a runtime dependency
        raise StoreError("DuckDB's postgres extension is not installed.") from None
    found = sorted(
        Path(wheel.__file__).parent.glob("extensions/*/postgres_scanner.duckdb_extension")
    )
    if not found:
        raise StoreError("DuckDB's postgres extension is missing from its package.")
    return found[-1]


def view_definitions(scripts: list[Path]) -> dict[str, str]:
    """The newest definition of each v_* view across the DuckDB schema files, in order."""
    views: dict[str, str] = {}
    for script in scripts:
        for name, body in VIEW.findall(script.read_text()):
            views[name] = body
    return views


def attached(url: str, scripts: list[Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the store attached read-only and the views defined."""
    base = duckdb.connect(":memory:")
    try:
        base.execute(f"LOAD '{extension_file()}'")
        literal = url.replace("'", "''")
        base.execute(f"ATTACH '{literal}' AS {ALIAS} (TYPE postgres, READ_ONLY)")
        base.execute(f"SET search_path = 'memory.main,{ALIAS}.public'")
        tables = {
            row[0]
            for row in base.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [ALIAS]
            ).fetchall()
        }
        if "syncs" not in tables:
            raise StoreError(
                f"{shown(url)} is not a status store yet (no tables): run the destination "
                "or `codat-expenses status refresh` first."
            )
        for name, body in view_definitions(scripts).items():
            base.execute(f"CREATE OR REPLACE VIEW memory.main.{name} AS {body}")
    except duckdb.Error as error:
        base.close()
        raise StoreError(
            f"The status store {shown(url)} could not be read: {scrubbed(first_line(error), url)}"
        ) from None
    except BaseException:
        base.close()
        raise
    return base


class Reader:
    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.base: duckdb.DuckDBPyConnection | None = None

    @contextlib.contextmanager
    def cursor(self, scripts: list[Path]) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.lock:
            if self.base is None:
                self.base = attached(self.url, scripts)
            cursor = self.base.cursor()
        try:
            cursor.execute(f"SET search_path = 'memory.main,{ALIAS}.public'")
            yield cursor
        except duckdb.IOException as error:  # the server went away: attach again next time
            self.forget()
            raise StoreError(
                f"The status store {shown(self.url)} could not be read: "
                f"{scrubbed(first_line(error), self.url)}"
            ) from None
        finally:
            cursor.close()

    def forget(self) -> None:
        with self.lock:
            if self.base is not None:
                with contextlib.suppress(duckdb.Error):
                    self.base.close()
                self.base = None


READERS: dict[str, Reader] = {}
READERS_LOCK = threading.Lock()


def reader_for(url: str) -> Reader:
    with READERS_LOCK:
        if url not in READERS:
            READERS[url] = Reader(url)
        return READERS[url]


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
