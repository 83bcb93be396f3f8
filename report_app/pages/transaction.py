"""One expense across every sync that carried it, with its current status and its receipts.
Reached from a sync's push items or by `?transaction=<id>`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from report_app import explain, money, queries, ui

TEXT = st.column_config.TextColumn


def pick_transaction(path: str) -> str | None:
    """The expense in the URL, or one found by (part of) its id or its source key."""
    return ui.pick_from_url(
        "transaction",
        lambda text: expense_choices(queries.load_transaction_matches(path, text)),
        ("Find an expense", "transaction id or source key, or part of one"),
        ("Expense", "Choose an expense"),
    )


def expense_choices(matches: pd.DataFrame) -> dict[str, str]:
    """Each expense with its company, amount and date, as the picker shows it."""
    return {
        row.transaction_id: f"{row.transaction_id} · "
        f"{ui.company(row.company_name, row.company_id)} · "
        f"{money.format_amount(row.total_amount, row.currency)} · "
        f"dated {ui.fmt_date(row.issue_date)} · {row.state}"
        for row in matches.itertuples()
    }


def current_state(state: pd.DataFrame) -> None:
    for _, row in state.iterrows():
        # two tiles a row: "ValidationError" and "1,234,567.89 USD" are cut in a quarter row
        status, codat = st.columns(2)
        status.metric("Current state", row["state"], border=True)
        codat.metric("Codat status", row["codat_status"] or "—", border=True)
        amount, tries = st.columns(2)
        amount.metric(
            "Amount", money.format_amount(row["total_amount"], row["currency"]), border=True
        )
        tries.metric("Pushes", ui.fmt_count(row["attempts"]), border=True)
        expense_facts(row)
        ui.show_raw("Latest message", row["message"])
        note = explain.note_for_message(row["message"])
        if note and row["state"] != "completed":
            ui.show_note(note, failed=row["state"] == "failed")
        if row["last_sync_id"]:
            ui.sync_link(row["last_sync_id"], f"Latest sync {row['last_sync_id']}")


def expense_facts(row: pd.Series) -> None:
    facts = {
        "Company": ui.company(row["company_name"], row["company_id"]),
        "Source record": f"{row['source_stream'] or 'not known'} / "
        f"{row['source_key'] or 'not known'}",
        "Dated": ui.fmt_date(row["issue_date"]),
        "Last changed": ui.fmt_time(row["updated_at"]),
    }
    ui.show_grid(
        pd.DataFrame({"field": list(facts), "value": list(facts.values())}),
        {"field": TEXT("Fact", width="small"), "value": TEXT("Value", width="large")},
        key=f"expense_facts_{row['company_id']}",
        height=ui.grid_height(len(facts)),
    )


def attempts_table(path: str, transaction_id: str) -> None:
    attempts = queries.load_attempts(path, transaction_id)
    st.subheader("Attempts across syncs")
    if attempts.empty:
        st.caption("No sync has reported on this expense yet.")
        return
    attempts["sync_status"] = [explain.code_label(c) for c in attempts["status_code"]]
    attempts["reason"] = attempts["message"].map(explain.short_reason)
    st.caption("Oldest first. Click a row to open that sync.")
    ui.clickable_grid(
        attempts,
        {
            "recorded_at": st.column_config.DatetimeColumn(
                "Recorded (UTC)", format="YYYY-MM-DD HH:mm:ss"
            ),
            "sync_id": TEXT("Sync id", width=150),
            "sync_status": TEXT("Sync status", width=200),
            "status": TEXT("Item status", width=130),
            "reason": TEXT("Reason", width=200),
            "message": TEXT("Message", width="large"),
        },
        "attempts",
        ui.OPENS_SYNC,
    )
    for sync_id in attempts["sync_id"].drop_duplicates().head(20):
        ui.sync_link(sync_id)


def versions_table(path: str, transaction_id: str) -> None:
    """What the books were given, version by version: a changed record is an update."""
    found = queries.load_versions(path, transaction_id)
    st.subheader("Versions")
    if len(found) <= 1:
        st.caption("One version: this transaction was never changed.")
    ui.show_grid(
        found,
        {
            "version": st.column_config.NumberColumn("Version", format="%d", width="small"),
            "kind": TEXT("Kind", width="small"),
            "state": TEXT("State", width="small"),
            "codat_status": TEXT("Codat status", width="small"),
            "total_amount": TEXT("Amount", width="small"),
            "sync_id": TEXT("Sync id", width=150),
            "message": TEXT("Message", width="large"),
        },
        key="versions",
        height=ui.grid_height(len(found)),
    )


def receipts(path: str, transaction_id: str) -> None:
    found = queries.load_attachments(path, transaction_id)
    found = found[found["transaction_id"] == transaction_id]
    st.subheader("Receipts")
    if found.empty:
        st.caption("No receipt is recorded for this expense.")
        return
    ui.show_grid(found, RECEIPT_COLUMNS, key="expense_receipts", height=ui.grid_height(len(found)))


RECEIPT_COLUMNS = {
    "status": TEXT("Upload", width="small"),
    "file_name": TEXT("File", width="medium"),
    "message": TEXT("Reason / message", width=320),
    "sync_id": TEXT("Sync id", width="medium"),
    "size_bytes": st.column_config.NumberColumn("Size (bytes)", format="%d", width="small"),
    "recorded_at": st.column_config.DatetimeColumn("Recorded (UTC)", format="YYYY-MM-DD HH:mm"),
}

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
versions_table(path, transaction_id)
attempts_table(path, transaction_id)
receipts(path, transaction_id)
