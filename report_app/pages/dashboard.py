"""Dashboard and sync history: totals, charts, attention, the filtered history table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from report_app import charts, explain, filters, queries, ui

HIGHLIGHT = {"stuck": "background-color: #fdecea", "long running": "background-color: #fff4e5"}
STYLE_MAX_ROWS = 1000  # colouring rows costs ~0.4 ms a row; bigger tables keep the ⚠/⏳ column
ATTENTION_LABELS = {"stuck": "⚠ stuck", "long running": "⏳ long running", "": ""}


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
            f"{board.long_running:,} sync(s) are long running (1010). They are marked ⏳.",
            icon=":material/hourglass_top:",
        )


def breakdowns(board: queries.Dashboard) -> None:
    st.altair_chart(charts.syncs_per_day(board.per_day), width="stretch")
    left, right = st.columns(2)
    left.altair_chart(charts.syncs_by_outcome(board.outcomes), width="stretch")
    right.altair_chart(charts.syncs_by_code(board.codes), width="stretch")
    with st.expander("Status codes and what they mean", expanded=True):
        st.dataframe(
            board.codes[["status_code", "status_meaning", "syncs"]],
            hide_index=True,
            key="codes_table",
            column_config={
                "status_code": st.column_config.NumberColumn("Code", format="%d"),
                "status_meaning": "Meaning",
                "syncs": st.column_config.NumberColumn("Syncs", format="%d"),
            },
        )
    st.subheader("Expenses by currency")
    st.caption("Current state of the expenses whose latest sync matches the filter.")
    st.dataframe(
        board.currencies, hide_index=True, key="currency_table", column_config=money_columns()
    )


def money_columns() -> dict:
    amount = st.column_config.NumberColumn
    return {
        "currency": "Currency",
        "written": amount("Written", format="%d"),
        "written_amount": amount("Amount written", format="%.2f"),
        "failed": amount("Failed", format="%d"),
        "failed_amount": amount("Amount failed", format="%.2f"),
        "pending": amount("Pending", format="%d"),
        "pending_amount": amount("Amount pending", format="%.2f"),
    }


def history(path: str, flt: queries.SyncFilter, total: int) -> None:
    st.subheader("Sync history")
    options = filters.table_options()
    rows = queries.load_history(path, flt, options.order_by, options.descending, options.limit)
    rows["attention"] = rows["attention"].map(ATTENTION_LABELS)
    st.caption(f"{len(rows):,} of {total:,} matching syncs shown. Click a row to open it.")
    event = st.dataframe(
        rows.style.apply(highlight, axis=1) if len(rows) <= STYLE_MAX_ROWS else rows,
        column_order=options.columns,
        column_config=history_columns(),
        hide_index=True,
        key="history",
        on_select="rerun",
        selection_mode="single-row",
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
    preview(ui.selected_row(event, rows))


def highlight(row: pd.Series) -> list[str]:
    key = "stuck" if "stuck" in row["attention"] else "long running" if row["attention"] else ""
    return [HIGHLIGHT.get(key, "")] * len(row)


def history_columns() -> dict:
    column = st.column_config
    return {
        "attention": column.TextColumn("Attention"),
        "sync_id": column.TextColumn("Sync id"),
        "company_id": column.TextColumn("Company id"),
        "initiated_at": column.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "completed_at": column.DatetimeColumn("Finished (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "duration_s": column.NumberColumn("Duration (s)", format="%d"),
        "status_code": column.NumberColumn("Code", format="%d"),
        "status_meaning": column.TextColumn("Meaning"),
        "item_count": column.NumberColumn("Items", format="%d"),
        "failed_count": column.NumberColumn("Failed", format="%d"),
        "expenses_from": column.DateColumn("Expenses from"),
        "expenses_to": column.DateColumn("Expenses to"),
    }


def preview(row: pd.Series | None) -> None:
    if row is None:
        return
    with st.container(border=True):
        st.markdown("**Selected sync**")
        st.text(
            f"{row['sync_id']} · company {row['company_id']} · {row['status_meaning']} "
            f"· started {ui.fmt_time(row['initiated_at'])}"
        )
        ui.sync_link(row["sync_id"])


path = ui.store_path()
st.title("Sync health")
flt = filters.sync_filter(path)
board = queries.load_dashboard(path, flt)
summary(board)
attention(board, flt)
if board.total:
    breakdowns(board)
    history(path, flt, board.total)
else:
    st.info("No syncs match the filter." if queries.load_date_bounds(path) else "No syncs yet.")
