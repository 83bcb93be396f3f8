"""Sync Health report: navigation and sign-in only. Start it with
`codat-expenses report --store PATH`."""

from __future__ import annotations

import streamlit as st

from report_app import access, ui

st.set_page_config(
    page_title="Sync health · Codat expenses", page_icon=":material/monitor_heart:", layout="wide"
)
DASHBOARD = st.Page(ui.DASHBOARD_PAGE, title="Dashboard", icon=":material/dashboard:", default=True)
SYNC = st.Page(ui.SYNC_PAGE, title="Sync details", icon=":material/receipt_long:", url_path="sync")
TRANSACTION = st.Page(
    ui.TRANSACTION_PAGE, title="Expense history", icon=":material/timeline:", url_path="transaction"
)
REJECTS = st.Page(ui.REJECTS_PAGE, title="Rejects", icon=":material/block:", url_path="rejects")
RUNS = st.Page(ui.RUNS_PAGE, title="Runs", icon=":material/play_circle:", url_path="runs")
ATTACHMENTS = st.Page(
    ui.ATTACHMENTS_PAGE, title="Receipts", icon=":material/attach_file:", url_path="attachments"
)
WEBHOOKS = st.Page(
    ui.WEBHOOKS_PAGE, title="Webhook events", icon=":material/webhook:", url_path="webhooks"
)

page = st.navigation([DASHBOARD, SYNC, TRANSACTION, RUNS, REJECTS, ATTACHMENTS, WEBHOOKS])
if page.url_path == DASHBOARD.url_path:  # /?sync=<id> and /?transaction=<id> work too
    for name, target in (("sync", SYNC), ("transaction", TRANSACTION)):
        if name in st.query_params:
            st.switch_page(target, query_params={name: st.query_params[name]})
access.sign_in_panel()
ui.run_guarded(page.run)
