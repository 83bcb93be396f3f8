"""One expense across every sync that carried it, with its current status.
Reached from a sync's push items or by `?transaction=<id>`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from report_app import explain, queries, ui


def pick_transaction(path: str) -> str | None:
    """The expense in the URL, or one found by (part of) its id or its source key."""
    return ui.pick_from_url(
        "transaction",
        lambda text: queries.load_transaction_matches(path, text)["transaction_id"].tolist(),
        ("Find an expense", "transaction id or source key, or part of one"),
        ("Expense", "Choose an expense"),
    )


def current_state(state: pd.DataFrame) -> None:
    for _, row in state.iterrows():
        status, codat, tries, amount = st.columns(4)
        status.metric("Current state", row["state"])
        codat.metric("Codat status", row["codat_status"] or "—")
        tries.metric("Pushes", ui.fmt_count(row["attempts"]))
        total = "—" if pd.isna(row["total_amount"]) else f"{row['total_amount']:,.2f}"
        amount.metric("Amount", f"{total} {row['currency'] or ''}".strip())
        st.text(
            f"Company {row['company_id']} · source {row['source_stream'] or '?'} / "
            f"{row['source_key'] or '?'} · dated {ui.fmt_date(row['issue_date'])}"
        )
        ui.show_raw("Latest message", row["message"])
        note = explain.note_for_message(row["message"])
        if note and row["state"] != "completed":
            ui.show_note(note, failed=row["state"] == "failed")
        if row["last_sync_id"]:
            ui.sync_link(row["last_sync_id"], f"Latest sync {row['last_sync_id']}")


def attempts_table(path: str, transaction_id: str) -> None:
    attempts = queries.load_attempts(path, transaction_id)
    st.subheader("Attempts across syncs")
    if attempts.empty:
        st.caption("No sync has reported on this expense yet.")
        return
    attempts["sync_status"] = [explain.code_label(c) for c in attempts["status_code"]]
    attempts["reason"] = attempts["message"].map(explain.short_reason)
    st.dataframe(
        attempts[["recorded_at", "sync_id", "sync_status", "status", "reason", "message"]],
        hide_index=True,
        key="attempts",
        column_config={
            "recorded_at": st.column_config.DatetimeColumn(
                "Recorded (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "status": "Item status",
        },
    )
    for sync_id in attempts["sync_id"].drop_duplicates().head(20):
        ui.sync_link(sync_id)


path = ui.store_path()
transaction_id = pick_transaction(path)
if not transaction_id:
    st.title("Expense history")
    st.info("Choose an expense in the sidebar, or open one from a sync's push items.")
    st.stop()
st.title(f"Expense {ui.md(transaction_id)}")
state = queries.load_transaction(path, transaction_id)
if state.empty:
    st.warning("That expense is not in the status store.")
    st.stop()
current_state(state)
attempts_table(path, transaction_id)
