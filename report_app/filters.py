"""The dashboard's sidebar (search, dates, status codes, stuck threshold) and table options."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import streamlit as st

from report_app import explain, queries, ui

# the key columns first: at 1280 px they are all visible without scrolling
DEFAULT_COLUMNS = [
    "attention",
    "sync_id",
    "status_code",
    "status_meaning",
    "outcome",
    "item_count",
    "failed_count",
    "initiated_at",
    "company_name",
    "duration_s",
    "target_platform",
]
COLUMN_LABELS = {
    "attention": "Attention",
    "sync_id": "Sync id",
    "company_id": "Company id",
    "company_name": "Company",
    "initiated_at": "Started (UTC)",
    "completed_at": "Finished (UTC)",
    "duration_s": "Duration",
    "status_code": "Code",
    "status_meaning": "Meaning",
    "outcome": "Outcome",
    "status_text": "Codat status text",
    "item_count": "Items",
    "failed_count": "Failed",
    "source_platform": "Expense source",
    "target_platform": "Accounting software",
    "flow": "Flow",
    "expenses_from": "Expenses from",
    "expenses_to": "Expenses to",
    "retry_of": "Retry of",
    "run_id": "Run",
    "error_message": "Error message",
}
SORT_LABELS = {
    "failed_first": "Failed first, then newest",
    "initiated_at": "Started",
    "completed_at": "Finished",
    "duration_s": "Duration",
    "status_code": "Status code",
    "company_name": "Company",
    "company_id": "Company id",
    "sync_id": "Sync id",
    "item_count": "Items",
    "failed_count": "Failed items",
    "target_platform": "Accounting software",
}
ROW_LIMITS = [100, 500, 1000, 5000]


@dataclass(frozen=True)
class TableOptions:
    columns: list[str]
    order_by: str
    descending: bool
    limit: int


def sync_filter(path: str) -> queries.SyncFilter:
    """The search bar and sidebar widgets -> the filter every dashboard query uses."""
    search = st.text_input(
        "Search",
        key="search",
        placeholder="Search by sync id, company id or company name (any part of one)",
        icon=":material/search:",
    )
    sidebar = st.sidebar
    sidebar.header("Filter syncs")
    since, until = date_range(path)
    codes = sidebar.multiselect(
        "Status codes",
        queries.load_status_codes(path),
        key="codes",
        format_func=explain.code_label,
        placeholder="All status codes",
    )
    stuck = sidebar.number_input(
        "Stuck after (minutes without a final status)",
        min_value=1,
        max_value=10_080,
        value=30,
        step=5,
        key="stuck_after",
    )
    ui.reload_button()
    return queries.SyncFilter(search.strip(), since, until, tuple(codes), int(stuck))


def date_range(path: str) -> tuple[date | None, date | None]:
    """The picked range; while only its start is picked, that one day."""
    bounds = queries.load_date_bounds(path)
    first, last = bounds or (ui.today_utc(), ui.today_utc())
    picked = st.sidebar.date_input(
        "Started between (UTC)", value=(first, max(last, ui.today_utc())), key="dates"
    )
    if not isinstance(picked, tuple | list):
        return picked, picked
    if len(picked) == 1:
        return picked[0], picked[0]
    if len(picked) == 2:
        return picked[0], picked[1]
    return None, None


def table_options() -> TableOptions:
    """Which columns, in which order, sorted how, how many rows."""
    columns = st.multiselect(
        "Columns",
        queries.HISTORY_COLUMNS,
        default=DEFAULT_COLUMNS,
        key="columns",
        format_func=COLUMN_LABELS.get,
    )
    left, middle, right = st.columns([2, 1, 1])
    order_by = left.selectbox("Sort by", list(SORT_LABELS), format_func=SORT_LABELS.get, key="sort")
    descending = middle.toggle("Descending", value=True, key="descending")
    # 100 first: a person reads the top of the list, and the first render draws (and styles)
    # five times fewer rows: about 0.3 s less in Chromium (benchmarks/README.md)
    limit = right.selectbox("Rows shown", ROW_LIMITS, index=0, key="limit")
    return TableOptions(columns or DEFAULT_COLUMNS, order_by, descending, limit)
