"""Widgets and formatting the pages share: the store path, the calm "busy" retry, links, notes.

User text (ids, messages from Codat, config values) is shown through st.code, st.json,
st.dataframe or st.text, never as HTML.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable
from datetime import date

import pandas as pd
import streamlit as st

from destination_codat_expenses.cli.env import STORE_ENV
from destination_codat_expenses.errors import StoreError
from report_app.explain import Note
from report_app.queries import StoreBusy

DASHBOARD_PAGE = "pages/dashboard.py"
SYNC_PAGE = "pages/sync_details.py"
TRANSACTION_PAGE = "pages/transaction.py"
BUSY_PAUSE_S = 1.0
BUSY_MAX_TRIES = 30
MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]()<>#!|~:$]")
BUSY_TRIES, BUSY_TOTAL = "store_busy_tries", "store_busy_total"


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
    """Run a page; a writer holding the store's lock makes it wait and retry, calmly."""
    try:
        render()
    except StoreBusy:
        wait_for_store()
        return
    except StoreError as error:
        st.warning(str(error), icon=":material/database:")
        return
    st.session_state[BUSY_TRIES] = 0


def wait_for_store() -> None:
    tries = st.session_state.get(BUSY_TRIES, 0) + 1
    st.session_state[BUSY_TRIES] = tries
    st.session_state[BUSY_TOTAL] = st.session_state.get(BUSY_TOTAL, 0) + 1
    if tries > BUSY_MAX_TRIES:
        st.info(
            "The status store has been busy for a while (the destination is writing a lot). "
            "The report will read it as soon as you try again.",
            icon=":material/hourglass_top:",
        )
        if st.button("Try again", key="busy_try_again"):
            st.session_state[BUSY_TRIES] = 0
            st.rerun()
        return
    st.info(
        "The status store is busy (another process is writing to it). Retrying in a moment…",
        icon=":material/hourglass_top:",
    )
    time.sleep(BUSY_PAUSE_S)
    st.rerun()


def pick_from_url(
    param: str, find: Callable[[str], list[str]], search: tuple[str, str], pick: tuple[str, str]
) -> str | None:
    """The id named in the URL (`?param=`), or one picked from a sidebar search; the choice
    goes back into the URL so the page can be shared. search/pick: (label, placeholder)."""
    current = st.query_params.get(param)
    text = st.sidebar.text_input(search[0], placeholder=search[1])
    matches = find(text.strip())
    options = ([current] if current and current not in matches else []) + matches
    chosen = st.sidebar.selectbox(
        pick[0],
        options,
        index=options.index(current) if current in options else None,
        placeholder=pick[1],
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
