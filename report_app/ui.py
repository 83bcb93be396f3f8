"""Widgets and formatting the pages share: the store path, the calm "busy" retry, links, notes,
grids with friendly headers, money.

User text (ids, messages from Codat, config values) is shown through st.code, st.json,
st.dataframe or st.text, never as HTML.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd
import streamlit as st

from destination_codat_expenses.cli.env import STORE_ENV
from destination_codat_expenses.errors import StoreError
from report_app import money
from report_app.explain import Note
from report_app.queries import StoreBusy, fetch_open_syncs

DASHBOARD_PAGE = "pages/dashboard.py"
SYNC_PAGE = "pages/sync_details.py"
TRANSACTION_PAGE = "pages/transaction.py"
REJECTS_PAGE = "pages/rejects.py"
RUNS_PAGE = "pages/runs.py"
ATTACHMENTS_PAGE = "pages/attachments.py"
WEBHOOKS_PAGE = "pages/webhooks.py"
BUSY_RETRY_S = 2  # a busy store is tried again this often, by a fragment (never sleep + rerun)
MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]()<>#!|~:$]")
BUSY_TOTAL = "store_busy_total"
EMPTY_CELL = "—"  # what a grid shows for a missing value (never "None")
GRID_ROW_PX, GRID_MAX_ROWS = 35, 14


def store_path() -> str:
    """The store the launcher named ($CODAT_EXPENSES_STORE); never chosen in the page."""
    path = os.environ.get(STORE_ENV, "").strip()
    if not path:
        st.error(
            "The report was started without a status store. "
            "Start it with `codat-expenses report --store PATH`."
        )
        st.stop()
    return path


def run_guarded(render: Callable[[], None]) -> None:
    """Run a page; a writer holding the store's lock gets a notice, and a fragment tries the
    store again every BUSY_RETRY_S seconds and reruns the page once it can read."""
    try:
        render()
    except StoreBusy:
        st.session_state[BUSY_TOTAL] = st.session_state.get(BUSY_TOTAL, 0) + 1
        st.info(
            "The status store is busy (another process is writing to it). This page reads it "
            "again by itself in a moment.",
            icon=":material/hourglass_top:",
        )
        retry_when_free()
    except StoreError as error:
        st.warning(str(error), icon=":material/database:")


@st.fragment(run_every=BUSY_RETRY_S)
def retry_when_free() -> None:
    try:
        fetch_open_syncs(store_path())
    except StoreBusy:
        return  # still busy: the fragment runs again by itself
    except StoreError:
        pass  # not a lock: the full page says what it is
    st.rerun(scope="app")


def pick_from_url(
    param: str,
    find: Callable[[str], list[str] | dict[str, str]],
    search: tuple[str, str],
    pick: tuple[str, str],
) -> str | None:
    """The id named in the URL (`?param=`), or one picked from a sidebar search; the choice
    goes back into the URL so the page can be shared. search/pick: (label, placeholder);
    `find` gives ids, or ids with the words to show for each (company, amount, date)."""
    current = st.query_params.get(param)
    text = st.sidebar.text_input(search[0], placeholder=search[1])
    matches = find(text.strip())
    labels = dict(matches) if isinstance(matches, dict) else {m: m for m in matches}
    options = ([current] if current and current not in labels else []) + list(labels)
    chosen = st.sidebar.selectbox(
        pick[0],
        options,
        index=options.index(current) if current in options else None,
        placeholder=pick[1],
        format_func=lambda option: labels.get(option, option),
    )
    if chosen and chosen != current:
        st.query_params[param] = chosen
    reload_button()
    return chosen


def reload_button() -> None:
    """Data is cached for a short while; this reads the store afresh now."""
    if st.sidebar.button("Reload data", icon=":material/refresh:", key="reload"):
        st.cache_data.clear()


# -- links -----------------------------------------------------------------------------------------
def sync_link(sync_id: str, label: str | None = None) -> None:
    st.page_link(
        SYNC_PAGE,
        label=md(label or f"Open sync {sync_id}"),
        icon=":material/open_in_new:",
        query_params={"sync": sync_id},
    )


def transaction_link(transaction_id: str, label: str | None = None) -> None:
    st.page_link(
        TRANSACTION_PAGE,
        label=md(label or f"Open expense {transaction_id}"),
        icon=":material/timeline:",
        query_params={"transaction": transaction_id},
    )


@dataclass(frozen=True)
class Opens:
    """What a click on a row opens: `page`, given the row's `column` as its `param`."""

    column: str
    page: str
    param: str


OPENS_SYNC = Opens("sync_id", SYNC_PAGE, "sync")
OPENS_TRANSACTION = Opens("transaction_id", TRANSACTION_PAGE, "transaction")
OPENS_RUN_REJECTS = Opens("run_id", REJECTS_PAGE, "run")


def clickable_grid(rows: pd.DataFrame, columns: dict, key: str, opens: Opens, **options) -> None:
    """show_grid whose row click opens the thing clicked; as tall as its rows (grid_height)
    unless `height` says otherwise."""
    options.setdefault("height", grid_height(len(rows)))
    event = show_grid(
        rows, columns, key=key, on_select="rerun", selection_mode="single-row", **options
    )
    open_clicked(event, rows, opens)


def open_clicked(event, rows: pd.DataFrame, opens: Opens) -> None:
    """A row click opens the thing clicked: its page, with its id in the URL."""
    row = selected_row(event, rows)
    value = None if row is None else row[opens.column]
    if isinstance(value, str) and value:
        st.switch_page(opens.page, query_params={opens.param: value})


def selected_row(event, rows: pd.DataFrame) -> pd.Series | None:
    """The row a person clicked in a single-row selectable st.dataframe, if any."""
    picked = getattr(getattr(event, "selection", None), "rows", None) or []
    if not picked or picked[0] >= len(rows):
        return None
    return rows.iloc[picked[0]]


# -- notes and raw text ----------------------------------------------------------------------------
def show_note(note: Note, failed: bool) -> None:
    body = f"**{note.title}.** {note.happened}\n\n**What to do:** {note.to_do}"
    if failed:
        st.warning(body, icon=":material/report:")
    else:
        st.info(body, icon=":material/info:")


def show_raw(label: str, text: str | None) -> None:
    """Codat's own words, verbatim and inert."""
    if text:
        st.caption(label)
        st.code(text, language=None, wrap_lines=True)


def md(text) -> str:
    """Text from the store, made inert inside Markdown (no links, images or emphasis)."""
    return MARKDOWN_SPECIAL.sub(r"\\\g<0>", str(text))


def parse_json(value) -> object | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# -- grids -----------------------------------------------------------------------------------------
def grid_height(rows: int, max_rows: int = GRID_MAX_ROWS) -> int | str:
    """Every row up to max_rows ("content": Streamlit also leaves room for a horizontal
    scrollbar, which a fixed height hid the last row under at 1280 px), then a scroll box."""
    if rows <= max_rows:
        return "content"
    return GRID_ROW_PX * (max_rows + 1) + 3


def show_grid(rows: pd.DataFrame, columns: dict, key: str, **options):
    """st.dataframe with a friendly header for every column shown and "—" for missing values.
    `columns`: name -> header text or st.column_config; only these are shown, in this order."""
    config = {name: spec for name, spec in columns.items()}
    return st.dataframe(
        rows,
        column_order=list(columns),
        column_config=config,
        hide_index=True,
        key=key,
        placeholder=EMPTY_CELL,
        **options,
    )


def with_money(rows: pd.DataFrame, amount: str, currency: str, into: str) -> pd.DataFrame:
    """A text column of formatted amounts (exact, per currency) next to the raw ones."""
    rows = rows.copy()
    rows[into] = [
        money.format_amount(a, c)
        for a, c in zip(rows[amount].tolist(), rows[currency].tolist(), strict=True)
    ]
    return rows


def company(name, company_id) -> str:
    """'Acme Ltd (1a2b3c4d-…)': the name Codat gives the company, "—" while none is known."""
    return f"{name if isinstance(name, str) and name else EMPTY_CELL} ({company_id})"


def platforms(source, target) -> str:
    """'Airbyte → Xero'; a sync only a webhook named has neither yet."""
    if not isinstance(source, str) and not isinstance(target, str):
        return "Not known yet (only a webhook has named this sync)"
    known = [p if isinstance(p, str) and p else "not known yet" for p in (source, target)]
    return " → ".join(known)


# -- formatting ------------------------------------------------------------------------------------
def fmt_time(value) -> str:
    if value is None or pd.isna(value):
        return "—"
    moment = pd.Timestamp(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_date(value) -> str:
    if value is None or pd.isna(value):
        return "—"
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def fmt_duration(seconds) -> str:
    if seconds is None or pd.isna(seconds):
        return "—"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def fmt_count(value) -> str:
    return "—" if value is None or pd.isna(value) else f"{int(value):,}"


def today_utc() -> date:
    return pd.Timestamp.now(tz="UTC").date()
