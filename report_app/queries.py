"""Every SQL statement the report runs: parameterised SELECTs on the store's v_* views.

`fetch_*` functions open a short read-only connection (store.db.reading, which waits on another
process's lock), run their SELECTs and return pandas DataFrames. `load_*` are the same functions
behind st.cache_data with a TTL, keyed on the store path and the filter; pages call those.
Nothing here keeps a connection, so the report never holds the destination's file for long.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import duckdb
import pandas as pd
import streamlit as st

from destination_codat_expenses.errors import StoreError
from destination_codat_expenses.models import FAILED_ITEM
from destination_codat_expenses.redaction import shown
from destination_codat_expenses.store.db import reading, store_exists
from report_app import explain

LOCK_WAIT_S = 3.0  # a page waits this long for a writer's lock, then says "busy" and retries
CACHE_TTL_S = 30

# Columns of the history table, in their default order; ORDER BY accepts only these names.
HISTORY_COLUMNS = (
    "attention",
    "sync_id",
    "company_id",
    "company_name",
    "initiated_at",
    "completed_at",
    "duration_s",
    "status_code",
    "status_meaning",
    "outcome",
    "status_text",
    "item_count",
    "failed_count",
    "source_platform",
    "target_platform",
    "flow",
    "expenses_from",
    "expenses_to",
    "retry_of",
    "run_id",
    "error_message",
)
SQL_HISTORY_COLUMNS = [c for c in HISTORY_COLUMNS if c != "status_meaning"]  # meaning: explain
SORTABLE = {
    "failed_first": "outcome = 'failed'",  # then newest first (history_sql)
    "initiated_at": "initiated_at",
    "completed_at": "completed_at",
    "duration_s": "duration_s",
    "status_code": "status_code",
    "company_id": "company_id",
    "company_name": "company_name",
    "sync_id": "sync_id",
    "item_count": "item_count",
    "failed_count": "failed_count",
    "target_platform": "target_platform",
}
SYNC_FIELDS = (
    "sync_id, company_id, run_id, retry_of, flow, initiated_at, completed_at, status_code, "
    "status_text, error_message, exception_message, data_pushed, source_platform, "
    "target_platform, expenses_from, expenses_to, item_count, failed_count, outcome, "
    "start_known, status_source, reported_outcome, reported_at"
)
# derived columns: how long a sync ran (or has been running) and whether it needs attention;
# initiated_at is the first time the store saw a sync whose start is unknown (v_syncs)
STUCK = (
    "(outcome IN ('in progress', 'unconfirmed') "
    "AND initiated_at < now() - to_minutes(CAST(? AS BIGINT)))"
)
DERIVED = (
    "date_diff('second', initiated_at, coalesce(completed_at, now())) AS duration_s, "
    f"CASE WHEN {STUCK} THEN 'stuck' WHEN status_code = 1010 THEN 'long running' "
    "ELSE '' END AS attention"
)
# the name Codat gives the row's company (v_companies, schema v8), NULL while none is known
COMPANY_NAME = (
    "(SELECT c.name FROM v_companies c WHERE c.company_id = {alias}.company_id) AS company_name"
)
# a search finds a company by (part of) its name too
NAMED_LIKE = "company_id IN (SELECT company_id FROM v_companies WHERE name ILIKE ? ESCAPE '\\')"


class StoreBusy(StoreError):
    """A writer held the file past LOCK_WAIT_S: the page says so and tries again by itself."""


@dataclass(frozen=True)
class SyncFilter:
    """What the dashboard's sidebar narrows the sync history to."""

    search: str = ""  # part of a sync id or company id
    since: date | None = None
    until: date | None = None  # inclusive
    codes: tuple[int, ...] = ()  # explain.NO_STATUS stands for "no status yet"
    stuck_after_min: int = 30


@dataclass
class Dashboard:
    outcomes: pd.DataFrame  # outcome, syncs
    codes: pd.DataFrame  # status_code, syncs, status_meaning
    per_day: pd.DataFrame  # day, status_code, syncs, status
    currencies: pd.DataFrame  # currency, written, written_amount, failed, failed_amount, ...
    long_running: int
    stuck: int

    @property
    def total(self) -> int:
        return int(self.outcomes["syncs"].sum()) if len(self.outcomes) else 0

    def count(self, outcome: str) -> int:
        rows = self.outcomes.loc[self.outcomes["outcome"] == outcome, "syncs"]
        return int(rows.sum())

    @property
    def failure_rate(self) -> float | None:
        """Failed syncs among finished ones (None when none has finished)."""
        finished = self.count("succeeded") + self.count("failed")
        return self.count("failed") / finished if finished else None


# -- connections ---------------------------------------------------------------------------------
@contextlib.contextmanager
def views(path: str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short read-only connection; a writer's lock past LOCK_WAIT_S becomes StoreBusy."""
    if not store_exists(path):  # a DuckDB file, or a PostgreSQL URL (read through DuckDB)
        raise StoreError(
            f"There is no status store at {shown(path)} yet: run the destination first."
        )
    try:
        with reading(path, wait_s=LOCK_WAIT_S, read_only=True) as db:
            db.execute("SET TimeZone = 'UTC'")
            yield db
    except StoreBusy:
        raise
    except StoreError as error:
        if is_busy(str(error)):
            raise StoreBusy("The status store is busy: another process is writing.") from None
        raise
    except duckdb.CatalogException:
        raise StoreError(
            f"{shown(path)} is not a status store yet (no views): run the destination first."
        ) from None


def is_busy(message: str) -> bool:
    """Another process holds the file, or this process has it open read-write right now."""
    message = message.lower()
    return "lock" in message or "different configuration" in message


def frame(db: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return db.execute(sql, params or []).df()


def like(text: str) -> str:
    """An ILIKE pattern that finds `text` anywhere, with its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def where_syncs(flt: SyncFilter) -> tuple[str, list]:
    """The WHERE clause (fixed SQL fragments only) and its parameters for a SyncFilter."""
    clauses, params = ["TRUE"], []
    if flt.search.strip():
        clauses.append(
            f"(sync_id ILIKE ? ESCAPE '\\' OR company_id ILIKE ? ESCAPE '\\' OR {NAMED_LIKE})"
        )
        params += [like(flt.search.strip())] * 3
    if flt.since:
        clauses.append("initiated_at >= ?")
        params.append(utc_midnight(flt.since))
    if flt.until:
        clauses.append("initiated_at < ?")
        params.append(utc_midnight(flt.until + timedelta(days=1)))
    if flt.codes:
        clauses.append(f"list_contains(?, coalesce(status_code, {explain.NO_STATUS}))")
        params.append([int(c) for c in flt.codes])
    return " AND ".join(clauses), params


# -- dashboard -----------------------------------------------------------------------------------
def fetch_dashboard(path: str, flt: SyncFilter) -> Dashboard:
    where, params = where_syncs(flt)
    with views(path) as db:
        outcomes = frame(
            db,
            f"SELECT outcome, count(*) AS syncs FROM v_syncs WHERE {where} "  # noqa: S608
            "GROUP BY outcome ORDER BY outcome",
            params,
        )
        codes = frame(
            db,
            f"SELECT status_code, count(*) AS syncs FROM v_syncs WHERE {where} "  # noqa: S608
            "GROUP BY status_code ORDER BY status_code NULLS FIRST",
            params,
        )
        per_day = frame(
            db,
            "SELECT CAST(initiated_at AS DATE) AS day, status_code, count(*) AS syncs "  # noqa: S608
            f"FROM v_syncs WHERE {where} GROUP BY ALL ORDER BY day, status_code",
            params,
        )
        currencies = fetch_currencies(db, where, params)
        long_running, stuck = db.execute(
            f"SELECT count(*) FILTER (WHERE status_code = 1010 AND NOT {STUCK}), "  # noqa: S608
            f"count(*) FILTER (WHERE {STUCK}) FROM v_syncs WHERE {where}",
            [flt.stuck_after_min, flt.stuck_after_min, *params],
        ).fetchone()
    return Dashboard(
        outcomes, with_meaning(codes), with_status(per_day), currencies, long_running, stuck
    )


WRITTEN, FAILED, PENDING = (
    "state = 'completed'",
    "state = 'failed'",
    ("state NOT IN ('completed', 'failed')"),
)


def fetch_currencies(db: duckdb.DuckDBPyConnection, where: str, params: list) -> pd.DataFrame:
    """Per currency: expenses whose latest sync is in the filter, written / failed / pending."""
    return frame(
        db,
        "SELECT coalesce(currency, '(none)') AS currency, "  # noqa: S608 - fixed fragments
        "count(*) FILTER (WHERE state = 'completed') AS written, "
        f"{exact_sum(WRITTEN)} AS written_amount, "
        "count(*) FILTER (WHERE state = 'failed') AS failed, "
        f"{exact_sum(FAILED)} AS failed_amount, "
        "count(*) FILTER (WHERE state NOT IN ('completed', 'failed')) AS pending, "
        f"{exact_sum(PENDING)} "
        "AS pending_amount FROM v_transactions WHERE last_sync_id IN "
        f"(SELECT sync_id FROM v_syncs WHERE {where}) "
        "GROUP BY ALL ORDER BY currency",
        params,
    )


def exact_sum(condition: str, column: str = "total_amount") -> str:
    """One currency's exact DECIMAL sum, as text (pandas would make a DECIMAL a float64)."""
    return f"CAST(coalesce(sum({column}) FILTER (WHERE {condition}), 0) AS VARCHAR)"


def with_meaning(codes: pd.DataFrame) -> pd.DataFrame:
    codes = codes.copy()
    codes["status_code"] = codes["status_code"].astype("Int64")
    codes["status_meaning"] = [explain.meaning(c) for c in codes["status_code"].tolist()]
    return codes


def with_status(per_day: pd.DataFrame) -> pd.DataFrame:
    per_day = per_day.copy()
    per_day["status"] = [explain.code_label(c) for c in per_day["status_code"].tolist()]
    return per_day


def fetch_status_codes(path: str) -> list[int]:
    """Every code in the store and every code Codat documents (NO_STATUS for none yet)."""
    with views(path) as db:
        rows = db.execute(
            f"SELECT DISTINCT coalesce(status_code, {explain.NO_STATUS}) FROM v_syncs"  # noqa: S608
        ).fetchall()
    return sorted({int(r[0]) for r in rows} | set(explain.STATUS_MEANING))


def fetch_date_bounds(path: str) -> tuple[date, date] | None:
    with views(path) as db:
        low, high = db.execute(
            "SELECT min(initiated_at)::DATE, max(initiated_at)::DATE FROM v_syncs"
        ).fetchone()
    return (low, high) if low else None


# -- history -------------------------------------------------------------------------------------
def history_sql(flt: SyncFilter, order_by: str, descending: bool) -> tuple[str, list]:
    if order_by not in SORTABLE:
        raise ValueError(f"The history cannot be sorted by {order_by!r}.")
    where, params = where_syncs(flt)
    direction = "DESC" if descending else "ASC"
    then = ", initiated_at DESC" if order_by == "failed_first" else ""
    sql = (
        f"SELECT {', '.join(SQL_HISTORY_COLUMNS)} FROM (SELECT {SYNC_FIELDS}, {DERIVED}, "  # noqa: S608
        f"{COMPANY_NAME.format(alias='s')} FROM v_syncs s WHERE {where}) "
        f"ORDER BY {SORTABLE[order_by]} {direction} NULLS LAST"
        f"{then}, sync_id"
    )
    return sql, [flt.stuck_after_min, *params]


def fetch_history(
    path: str, flt: SyncFilter, order_by: str = "initiated_at", descending: bool = True, limit=500
) -> pd.DataFrame:
    """The filtered sync history, sorted in SQL, first `limit` rows."""
    sql, params = history_sql(flt, order_by, descending)
    with views(path) as db:
        return with_meaning_column(frame(db, f"{sql} LIMIT ?", [*params, int(limit)]))


def export_csv(
    path: str, flt: SyncFilter, order_by: str, descending: bool, columns: list[str]
) -> str:
    """Every row of the filtered history (no limit), chosen columns only, as CSV text."""
    chosen = [c for c in columns if c in HISTORY_COLUMNS] or list(HISTORY_COLUMNS)
    sql, params = history_sql(flt, order_by, descending)
    with views(path) as db:
        rows = with_meaning_column(frame(db, sql, params))
    return rows[chosen].to_csv(index=False)


def with_meaning_column(rows: pd.DataFrame) -> pd.DataFrame:
    rows["status_code"] = rows["status_code"].astype("Int64")
    rows["status_meaning"] = [
        explain.status_meaning(c, o)
        for c, o in zip(rows["status_code"].tolist(), rows["outcome"].tolist(), strict=True)
    ]
    return rows[list(HISTORY_COLUMNS)]


# -- one sync ------------------------------------------------------------------------------------
def fetch_sync(path: str, sync_id: str, stuck_after_min: int = 30) -> dict | None:
    with views(path) as db:
        rows = frame(
            db,
            f"SELECT {SYNC_FIELDS}, config_snapshot, {DERIVED}, "  # noqa: S608
            f"{COMPANY_NAME.format(alias='s')} FROM v_syncs s WHERE sync_id = ?",
            [stuck_after_min, sync_id],
        )
    return rows.iloc[0].to_dict() if len(rows) else None


def fetch_sync_matches(path: str, text: str, limit: int = 50) -> pd.DataFrame:
    """Recent syncs whose sync id, company id or company name contains `text` (all recent
    ones when empty)."""
    with views(path) as db:
        return frame(
            db,
            "SELECT sync_id, company_id, target_platform, status_code, outcome, initiated_at, "  # noqa: S608
            f"{COMPANY_NAME.format(alias='s')} FROM v_syncs s "
            f"WHERE sync_id ILIKE ? ESCAPE '\\' OR company_id ILIKE ? ESCAPE '\\' OR {NAMED_LIKE} "
            "ORDER BY initiated_at DESC NULLS LAST, sync_id LIMIT ?",
            [like(text), like(text), like(text), limit],
        )


def fetch_lineage(path: str, sync_id: str) -> pd.DataFrame:
    """The sync, what it retried (back to the original) and every retry made of it, in order.

    `generation` is 0 for this sync, negative for the syncs it retried, positive for retries.
    """
    with views(path) as db:
        return frame(
            db,
            "WITH RECURSIVE up(sync_id, generation) AS (SELECT ?, 0 UNION ALL "
            "SELECT s.retry_of, up.generation - 1 FROM up JOIN v_syncs s USING (sync_id) "
            "WHERE s.retry_of IS NOT NULL AND up.generation > -50), "
            "down(sync_id, generation) AS (SELECT ?, 0 UNION ALL "
            "SELECT s.sync_id, down.generation + 1 FROM down JOIN v_syncs s "
            "ON s.retry_of = down.sync_id WHERE down.generation < 50), "
            "family AS (SELECT * FROM up UNION SELECT * FROM down) "
            "SELECT f.generation, f.sync_id, s.initiated_at, s.status_code, s.outcome, "
            "s.item_count, s.failed_count, s.retry_of FROM family f "
            "JOIN v_syncs s USING (sync_id) ORDER BY f.generation, s.initiated_at, f.sync_id",
            [sync_id, sync_id],
        )


def fetch_retries_since(path: str, sync_id: str, since: datetime) -> pd.DataFrame:
    """Retries of the sync started at or after `since` (what a retry just made)."""
    with views(path) as db:
        return frame(
            db,
            "SELECT sync_id, status_code, item_count, outcome FROM v_syncs "
            "WHERE retry_of = ? AND initiated_at >= ? ORDER BY initiated_at, sync_id",
            [sync_id, since],
        )


def fetch_push_items(
    path: str, sync_id: str, search: str = "", statuses: tuple[str, ...] = ()
) -> pd.DataFrame:
    """The accounting records a sync produced; search by id, record id or data type."""
    clauses, params = ["sync_id = ?"], [sync_id]
    if search.strip():
        clauses.append(
            "(transaction_id ILIKE ? ESCAPE '\\' OR record_id ILIKE ? ESCAPE '\\' "
            "OR data_type ILIKE ? ESCAPE '\\' OR source_key ILIKE ? ESCAPE '\\')"
        )
        params += [like(search.strip())] * 4
    if statuses:
        clauses.append("list_contains(?, status)")
        params.append(list(statuses))
    params.append(list(FAILED_ITEM))  # failed first
    with views(path) as db:
        return frame(
            db,
            "SELECT data_type, record_id, transaction_id, status, message, "  # noqa: S608
            "CAST(amount AS VARCHAR) AS amount, currency, source_stream, source_key, issue_date "
            f"FROM v_push_items WHERE {' AND '.join(clauses)} "
            "ORDER BY list_contains(?, status) DESC, status, transaction_id",
            params,
        )


def fetch_push_statuses(path: str, sync_id: str) -> list[str]:
    with views(path) as db:
        rows = db.execute(
            "SELECT DISTINCT status FROM v_push_items WHERE sync_id = ? ORDER BY 1", [sync_id]
        ).fetchall()
    return [r[0] for r in rows]


def fetch_retryable_count(path: str, sync_id: str) -> int:
    """Failed items of the sync that no later sync completed (the retry service's rule)."""
    with views(path) as db:
        return db.execute(
            "SELECT count(*) FROM v_push_items p JOIN v_transactions t "
            "USING (company_id, transaction_id) WHERE p.sync_id = ? "
            "AND list_contains(?, p.status) AND t.state <> 'completed'",
            [sync_id, list(FAILED_ITEM)],
        ).fetchone()[0]


# -- one transaction -----------------------------------------------------------------------------
def fetch_transaction_matches(path: str, text: str, limit: int = 50) -> pd.DataFrame:
    """Expenses whose transaction id or source key contains `text`, newest first."""
    with views(path) as db:
        return frame(
            db,
            "SELECT transaction_id, company_id, source_key, state, currency, "  # noqa: S608
            "CAST(total_amount AS VARCHAR) AS total_amount, issue_date, updated_at, "
            f"{COMPANY_NAME.format(alias='t')} "
            "FROM v_transactions t WHERE transaction_id ILIKE ? ESCAPE '\\' "
            "OR source_key ILIKE ? ESCAPE '\\' ORDER BY updated_at DESC, transaction_id LIMIT ?",
            [like(text), like(text), limit],
        )


def fetch_transaction(path: str, transaction_id: str) -> pd.DataFrame:
    """The expense's current state (one row per company that knows this id)."""
    with views(path) as db:
        return frame(
            db,
            "SELECT company_id, transaction_id, source_stream, source_key, state, codat_status, "
            "message, last_sync_id, attempts, issue_date, currency, "
            "CAST(total_amount AS VARCHAR) AS total_amount, updated_at, "  # noqa: S608
            f"{COMPANY_NAME.format(alias='t')} "
            "FROM v_transactions t WHERE transaction_id = ? ORDER BY company_id",
            [transaction_id],
        )


def fetch_versions(path: str, transaction_id: str) -> pd.DataFrame:
    """Every version of the transaction, oldest first: those an update superseded, the current
    one, and a change held until the current one's push is final."""
    with views(path) as db:
        return frame(
            db,
            "SELECT version, kind, state, codat_status, message, sync_id, currency, "
            "CAST(total_amount AS VARCHAR) AS total_amount, updated_at, company_id "
            "FROM v_transaction_versions WHERE transaction_id = ? ORDER BY company_id, version",
            [transaction_id],
        )


def fetch_attempts(path: str, transaction_id: str) -> pd.DataFrame:
    """Every sync that carried the expense, in the order the syncs happened, with that sync's
    code. Not by recorded_at: reading a sync again (status refresh) rewrites it, which would put
    an old failed attempt after the retry that completed it. A sync whose start is unknown
    counts from the first time known of it."""
    with views(path) as db:
        return frame(
            db,
            "SELECT a.sync_id, a.status, a.message, a.recorded_at, s.status_code, s.retry_of, "
            "a.company_id FROM v_transaction_attempts a LEFT JOIN v_syncs s USING (sync_id) "
            "WHERE a.transaction_id = ? ORDER BY coalesce(s.initiated_at, s.completed_at, "
            "a.recorded_at), a.recorded_at, a.sync_id",
            [transaction_id],
        )


# -- runs, rejects, receipts, webhooks -------------------------------------------------------------
def fetch_runs(path: str, limit: int = 500) -> pd.DataFrame:
    """Runs, failed ones first, then newest first, with how many syncs each opened."""
    with views(path) as db:
        return frame(
            db,
            "SELECT r.run_id, r.outcome, r.started_at, r.finished_at, "
            "date_diff('second', r.started_at, coalesce(r.finished_at, now())) AS duration_s, "
            "r.records_in, r.records_accepted, r.records_rejected, "
            "(SELECT count(*) FROM v_syncs s WHERE s.run_id = r.run_id) AS syncs, r.error "
            "FROM v_runs r ORDER BY r.outcome = 'failed' DESC, r.started_at DESC, r.run_id "
            "LIMIT ?",
            [limit],
        )


@dataclass(frozen=True)
class RejectFilter:
    run_id: str = ""  # '' for every run
    field: str = ""  # '' for every field
    search: str = ""  # part of a record key, stream or reason


def where_rejects(flt: RejectFilter) -> tuple[str, list]:
    clauses, params = ["TRUE"], []
    if flt.run_id:
        clauses.append("run_id = ?")
        params.append(flt.run_id)
    if flt.field:
        clauses.append("coalesce(field, '') = ?")
        params.append(flt.field)
    if flt.search.strip():
        clauses.append(
            "(record_key ILIKE ? ESCAPE '\\' OR stream ILIKE ? ESCAPE '\\' "
            "OR reason ILIKE ? ESCAPE '\\')"
        )
        params += [like(flt.search.strip())] * 3
    return " AND ".join(clauses), params


def fetch_rejects(path: str, flt: RejectFilter, limit: int | None = 1000) -> pd.DataFrame:
    """Rejected input records (never the record itself: its key, field and reason)."""
    where, params = where_rejects(flt)
    sql = (
        "SELECT rejected_at, run_id, stream, record_key, field, reason FROM v_rejects "  # noqa: S608
        f"WHERE {where} ORDER BY rejected_at DESC, run_id, stream, record_key"
    )
    with views(path) as db:
        if limit is None:
            return frame(db, sql, params)
        return frame(db, f"{sql} LIMIT ?", [*params, int(limit)])


def fetch_reject_facets(path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rejects per run (newest run first) and per field (most first): the pickers' choices."""
    with views(path) as db:
        runs = frame(
            db,
            "SELECT run_id, count(*) AS rejects, max(rejected_at) AS last_at FROM v_rejects "
            "GROUP BY run_id ORDER BY last_at DESC, run_id",
        )
        fields = frame(
            db,
            "SELECT coalesce(field, '') AS field, count(*) AS rejects FROM v_rejects "
            "GROUP BY ALL ORDER BY rejects DESC, field",
        )
    return runs, fields


def matching(search: str, columns: list[str]) -> tuple[list[str], list[str]]:
    """WHERE clauses and their parameters: any of `columns` holds the searched text (matched
    literally, case-insensitive); no clause narrows anything when nothing is searched."""
    if not search.strip():
        return ["TRUE"], []
    either = " OR ".join(f"{column} ILIKE ? ESCAPE '\\'" for column in columns)
    return [f"({either})"], [like(search.strip())] * len(columns)


def fetch_attachments(path: str, search: str = "", limit: int = 1000) -> pd.DataFrame:
    """Receipt uploads; ones that did not upload first (refused, rejected, pending)."""
    clauses, params = matching(search, ["sync_id", "transaction_id", "company_id", "file_name"])
    with views(path) as db:
        return frame(
            db,
            "SELECT status, sync_id, transaction_id, company_id, file_name, size_bytes, "  # noqa: S608
            "message, attachment_id, recorded_at FROM v_attachments "
            f"WHERE {' AND '.join(clauses)} ORDER BY CASE status WHEN 'uploaded' THEN 2 "
            "WHEN 'pending' THEN 1 ELSE 0 END, recorded_at DESC, transaction_id, file_name "
            "LIMIT ?",
            [*params, limit],
        )


def fetch_attachments_per_sync(path: str) -> pd.DataFrame:
    """Receipt outcomes per sync (counts by status), syncs with a problem first."""
    with views(path) as db:
        return frame(
            db,
            "SELECT coalesce(sync_id, '') AS sync_id, count(*) AS receipts, "
            "count(*) FILTER (WHERE status = 'uploaded') AS uploaded, "
            "count(*) FILTER (WHERE status = 'pending') AS pending, "
            "count(*) FILTER (WHERE status NOT IN ('uploaded', 'pending')) AS not_uploaded "
            "FROM v_attachments GROUP BY ALL ORDER BY not_uploaded DESC, pending DESC, sync_id",
        )


def fetch_webhook_events(path: str, search: str = "", limit: int = 1000) -> pd.DataFrame:
    """Webhook deliveries received, newest first (unverified ones are kept, never applied)."""
    clauses, params = matching(search, ["sync_id", "company_id", "event_type", "webhook_id"])
    with views(path) as db:
        return frame(
            db,
            "SELECT received_at, event_type, verified, applied, sync_id, company_id, "  # noqa: S608
            f"webhook_id, {COMPANY_NAME.format(alias='w')} FROM v_webhook_events w "
            f"WHERE {' AND '.join(clauses)} "
            "ORDER BY received_at DESC, webhook_id LIMIT ?",
            [*params, limit],
        )


def fetch_open_syncs(path: str, sync_id: str | None = None) -> tuple:
    """A fingerprint of the syncs still open (or of one sync): when it changes, a page that
    shows them reads the store again. Uncached on purpose."""
    with views(path) as db:
        if sync_id:
            return (
                db.execute(
                    "SELECT status_code, outcome, completed_at, item_count, failed_count "
                    "FROM v_syncs WHERE sync_id = ?",
                    [sync_id],
                ).fetchone()
                or ()
            )
        return db.execute(
            "SELECT count(*) FILTER (WHERE outcome IN ('in progress', 'unconfirmed')), "
            "count(*), max(completed_at) FROM v_syncs"
        ).fetchone()


# -- cached loaders (what pages call) -------------------------------------------------------------
def cached(function):
    return st.cache_data(ttl=CACHE_TTL_S, show_spinner=False, max_entries=256)(function)


load_dashboard = cached(fetch_dashboard)
load_status_codes = cached(fetch_status_codes)
load_date_bounds = cached(fetch_date_bounds)
load_history = cached(fetch_history)
load_sync = cached(fetch_sync)
load_sync_matches = cached(fetch_sync_matches)
load_lineage = cached(fetch_lineage)
load_push_items = cached(fetch_push_items)
load_push_statuses = cached(fetch_push_statuses)
load_retryable_count = cached(fetch_retryable_count)
load_transaction_matches = cached(fetch_transaction_matches)
load_transaction = cached(fetch_transaction)
load_attempts = cached(fetch_attempts)
load_versions = cached(fetch_versions)
load_runs = cached(fetch_runs)
load_rejects = cached(fetch_rejects)
load_reject_facets = cached(fetch_reject_facets)
load_attachments = cached(fetch_attachments)
load_attachments_per_sync = cached(fetch_attachments_per_sync)
load_webhook_events = cached(fetch_webhook_events)


def forget_cached() -> None:
    """After this process wrote the store (a retry), read it afresh."""
    st.cache_data.clear()
