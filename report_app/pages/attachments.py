"""Receipts: what each sync's expenses uploaded, and every receipt with why it did not upload.
A row click opens the expense."""

from __future__ import annotations

import streamlit as st

from report_app import queries, ui

TEXT, NUMBER = st.column_config.TextColumn, st.column_config.NumberColumn
PER_SYNC = {
    "sync_id": TEXT("Sync id", width="medium"),
    "receipts": NUMBER("Receipts", format="%d", width="small"),
    "uploaded": NUMBER("Uploaded", format="%d", width="small"),
    "pending": NUMBER("Waiting to upload", format="%d", width="small"),
    "not_uploaded": NUMBER("Refused or unreadable", format="%d", width=170),
}
RECEIPTS = {
    "status": TEXT("Upload", width="small"),
    "transaction_id": TEXT("Transaction id", width=130),
    "file_name": TEXT("File", width=150),
    "message": TEXT("Reason / message", width=320),
    "sync_id": TEXT("Sync id", width="medium"),
    "size_bytes": NUMBER("Size (bytes)", format="%d", width="small"),
    "recorded_at": st.column_config.DatetimeColumn("Recorded (UTC)", format="YYYY-MM-DD HH:mm"),
}

path = ui.store_path()
st.title("Receipts")
ui.reload_button()
search = st.text_input(
    "Search",
    value=st.query_params.get("sync", ""),
    placeholder="sync id, transaction id, company id or file name",
    icon=":material/search:",
)
receipts = queries.load_attachments(path, search.strip())
if receipts.empty:
    st.info("No receipts match." if search.strip() else "No receipts recorded yet.")
    st.stop()
st.subheader("Per sync")
per_sync = queries.load_attachments_per_sync(path)
per_sync = per_sync[per_sync["sync_id"].isin(set(receipts["sync_id"].dropna()))]
ui.clickable_grid(per_sync, PER_SYNC, "receipts_per_sync", ui.OPENS_SYNC)
st.subheader("Every receipt")
st.caption(
    f"{len(receipts):,} receipt(s), the ones not uploaded first (refused: Codat's reason; "
    "rejected: it could not be read here; pending: tried again by the next run or "
    "`codat-expenses status refresh`). Click one to open its expense."
)
ui.clickable_grid(receipts, RECEIPTS, "receipts", ui.OPENS_TRANSACTION)
