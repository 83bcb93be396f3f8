"""Webhook deliveries the receiver recorded: which sync each named, whether its signature held
and whether it was applied. A row click opens the sync."""

from __future__ import annotations

import streamlit as st

from report_app import queries, ui

TEXT = st.column_config.TextColumn
COLUMNS = {
    "received_at": st.column_config.DatetimeColumn("Received (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "signature": TEXT("Signature", width=110),
    "effect": TEXT("Effect", width=260),
    "sync_id": TEXT("Sync id", width=150),
    "company_name": TEXT("Company", width=170),
    "event_type": TEXT("Event", width=140),
    "company_id": TEXT("Company id", width="medium"),
    "webhook_id": TEXT("Delivery id", width="medium"),
}


def effect(verified: bool, applied: bool) -> str:
    if not verified:
        return "ignored (signature did not hold)"
    return "sync marked to confirm with Codat" if applied else "recorded, nothing to change"


path = ui.store_path()
st.title("Webhook events")
ui.reload_button()
search = st.text_input(
    "Search", placeholder="sync id, company id, event or delivery id", icon=":material/search:"
)
events = queries.load_webhook_events(path, search.strip())
if events.empty:
    st.info("No webhook events match." if search.strip() else "No webhook events received yet.")
    st.stop()
events["signature"] = events["verified"].map({True: "verified", False: "NOT verified"})
events["effect"] = [
    effect(v, a) for v, a in zip(events["verified"], events["applied"], strict=True)
]
total, bad = st.columns(2)
total.metric("Events", ui.fmt_count(len(events)), border=True)
bad.metric("Not verified", ui.fmt_count((~events["verified"]).sum()), border=True)
st.caption("Newest first (at most 1,000). Click one to open the sync it named.")
ui.clickable_grid(events, COLUMNS, "webhook_events", ui.OPENS_SYNC)
