"""Dashboard and sync history: totals, charts, attention, the filtered history table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from report_app import charts, explain, filters, queries, ui

HIGHLIGHT = {"stuck": "background-color: #fdecea", "long running": "background-color: #fff4e5"}
STYLE_MAX_ROWS = 1000  # colouring rows costs ~0.4 ms a row; bigger tables keep the ⚠/◷ column
ATTENTION_LABELS = {"stuck": "⚠ stuck", "long running": "◷ long running", "": ""}


def summary(board: queries.Dashboard) -> None:
    total, succeeded, failed, running, unconfirmed, rate = st.columns(6)
    total.metric("Syncs", ui.fmt_count(board.total))
    succeeded.metric("Succeeded", ui.fmt_count(board.count("succeeded")))
    failed.metric("Failed", ui.fmt_count(board.count("failed")))
    running.metric("In progress", ui.fmt_count(board.count("in progress")))
    unconfirmed.metric(
        "Unconfirmed",
        ui.fmt_count(board.count("unconfirmed")),
        help=f"{explain.UNCONFIRMED_LABEL}: no code is shown until Codat's is read.",
    )
    share = board.failure_rate
    rate.metric("Failure rate", "—" if share is None else f"{share:.1%}")


def attention(board: queries.Dashboard, flt: queries.SyncFilter) -> None:
    if board.stuck:
        st.warning(
            f"{board.stuck:,} sync(s) have had no final status for more than "
            f"{flt.stuck_after_min} minutes (stuck, or reported by webhook and never confirmed "
            "with Codat). They are marked ⚠ in the history.",
            icon=":material/warning:",
        )
    if board.long_running:
        st.info(
            f"{board.long_running:,} sync(s) are long running (1010). They are marked ◷.",
            icon=":material/hourglass_top:",
        )


def breakdowns(board: queries.Dashboard) -> None:
    """The day-by-day chart, the codes chart, the codes table, the money per currency, one
    under the other: beside the chart the table's "Who acts" was cut off at 1280 px. (The
    outcome tiles above already count syncs by outcome: no chart repeats them.)"""
    st.altair_chart(charts.syncs_per_day(board.per_day), width="stretch")
    st.altair_chart(charts.syncs_by_code(board.codes), width="stretch")
    st.markdown("**Status codes and what they mean**")
    codes = board.codes.assign(
        code=[explain.code_label(c).split(" · ")[0] for c in board.codes["status_code"]],
        who=[explain.severity(c) for c in board.codes["status_code"]],
    )
    ui.show_grid(
        codes,
        {
            "code": st.column_config.TextColumn("Code", width=110),
            "status_meaning": st.column_config.TextColumn("Meaning", width=280),
            "who": st.column_config.TextColumn("Who acts", width=150),
            "syncs": st.column_config.NumberColumn("Syncs", format="%d", width=80),
        },
        key="codes_table",
        height=ui.grid_height(len(codes), max_rows=20),
    )
    currencies(board.currencies)


def currencies(table: pd.DataFrame) -> None:
    """Exact totals per currency (never added across currencies)."""
    st.subheader("Expenses by currency")
    st.caption(
        "Current state of the expenses whose latest sync matches the filter. Each currency is "
        "totalled on its own, exactly, with its own decimal places."
    )
    for kind in ("written", "failed", "pending"):
        table = ui.with_money(table, f"{kind}_amount", "currency", f"{kind}_shown")
    count, amount = st.column_config.NumberColumn, st.column_config.TextColumn
    ui.show_grid(
        table,
        {
            "currency": st.column_config.TextColumn("Currency", width="small"),
            "written": count("Written", format="%d", width="small"),
            "written_shown": amount("Amount written", alignment="right"),
            "failed": count("Failed", format="%d", width="small"),
            "failed_shown": amount("Amount failed", alignment="right"),
            "pending": count("Pending", format="%d", width="small"),
            "pending_shown": amount("Amount pending", alignment="right"),
        },
        key="currency_table",
        height=ui.grid_height(len(table)),
    )


def history(path: str, flt: queries.SyncFilter, total: int) -> None:
    st.subheader("Sync history")
    options = filters.table_options()
    rows = queries.load_history(path, flt, options.order_by, options.descending, options.limit)
    rows["attention"] = rows["attention"].map(ATTENTION_LABELS)
    # "2 min 0 s", not 120 (sorting by duration is the SQL sort above; the CSV keeps seconds)
    rows["duration_s"] = [ui.fmt_duration(s) for s in rows["duration_s"]]
    st.caption(f"{len(rows):,} of {total:,} matching syncs shown. Click a row to open that sync.")
    labels = filters.COLUMN_LABELS
    event = st.dataframe(
        rows.style.apply(highlight, axis=1) if len(rows) <= STYLE_MAX_ROWS else rows,
        column_order=options.columns,
        column_config={c: history_column(c, labels[c]) for c in queries.HISTORY_COLUMNS},
        hide_index=True,
        key="history",
        on_select="rerun",
        selection_mode="single-row",
        placeholder=ui.EMPTY_CELL,
        height=ui.grid_height(len(rows), max_rows=15),
    )
    st.download_button(
        "Export filtered history (CSV)",
        data=lambda: queries.export_csv(
            path, flt, options.order_by, options.descending, options.columns
        ),
        file_name="sync-history.csv",
        mime="text/csv",
        icon=":material/download:",
        key="export_csv",
    )
    ui.open_clicked(event, rows, ui.OPENS_SYNC)


def highlight(row: pd.Series) -> list[str]:
    key = "stuck" if "stuck" in row["attention"] else "long running" if row["attention"] else ""
    return [HIGHLIGHT.get(key, "")] * len(row)


# pixels: the key columns (through Failed) fit beside the sidebar at 1280 px
WIDTHS = {
    "attention": 115,
    "sync_id": 140,
    "status_code": 55,
    "status_meaning": 175,
    "outcome": 95,
    "item_count": 60,
    "failed_count": 60,
    "initiated_at": 160,
    "duration_s": 95,
    "company_id": 150,
    "company_name": 170,
}


def history_column(name: str, label: str):
    """Every history column gets its friendly header (the column chooser shows the same)."""
    column = st.column_config
    width = WIDTHS.get(name)
    if name in ("initiated_at", "completed_at"):
        return column.DatetimeColumn(label, format="YYYY-MM-DD HH:mm:ss", width=width)
    if name == "duration_s":
        return column.TextColumn(label, width=width, alignment="right")
    if name in ("status_code", "item_count", "failed_count"):
        return column.NumberColumn(label, format="%d", width=width)
    if name in ("expenses_from", "expenses_to"):
        return column.DateColumn(label)
    if name == "error_message":
        return column.TextColumn(label, width="large")
    return column.TextColumn(label, width=width)


OPEN_SYNCS_REFRESH_S = 10


@st.fragment(run_every=OPEN_SYNCS_REFRESH_S)
def follow_open_syncs(path: str) -> None:
    """While syncs are open, read the store again when any of them changes (no reload)."""
    seen = queries.fetch_open_syncs(path)
    before = st.session_state.get("open_syncs_seen")
    st.session_state["open_syncs_seen"] = seen
    if before is not None and before != seen:
        queries.forget_cached()
        st.rerun(scope="app")


path = ui.store_path()
st.title("Sync health")
flt = filters.sync_filter(path)
board = queries.load_dashboard(path, flt)
summary(board)
attention(board, flt)
if board.count("in progress") or board.count("unconfirmed"):
    follow_open_syncs(path)
if board.total:
    breakdowns(board)
    history(path, flt, board.total)
else:
    st.info(
        "No syncs match the filter: widen the dates or clear the search."
        if queries.load_date_bounds(path)
        else "No syncs yet: the charts appear after the destination's first run."
    )
