"""Every run of the destination: its outcome, counts, duration and, for a failed run, why.
A row click opens that run's rejected records."""

from __future__ import annotations

import streamlit as st

from report_app import queries, ui

TEXT, NUMBER = st.column_config.TextColumn, st.column_config.NumberColumn
COLUMNS = {
    "outcome": TEXT("Outcome", width="small"),
    "started_at": st.column_config.DatetimeColumn("Started (UTC)", format="YYYY-MM-DD HH:mm:ss"),
    "duration": TEXT("Duration", width=140),
    "records_in": NUMBER("Read", format="%d", width=70),
    "records_accepted": NUMBER("Accepted", format="%d", width=80),
    "records_rejected": NUMBER("Rejected", format="%d", width=80),
    "syncs": NUMBER("Syncs", format="%d", width=60),
    "error": TEXT("Why it failed", width="large"),
    "run_id": TEXT("Run id", width="medium"),
}


def failed_run(row) -> None:
    """A failed run and its error, the error as it was recorded: plain text in a code box, so
    its `codat-expenses ...` commands read as written (not as Markdown, not escaped)."""
    with st.container(border=True):
        st.markdown(
            f":red[:material/error:] **Run {ui.md(row.run_id)} failed** "
            f"({ui.fmt_time(row.started_at)})"
        )
        st.code(
            row.error if isinstance(row.error, str) and row.error else "No reason was recorded.",
            language=None,
            wrap_lines=True,
        )


path = ui.store_path()
st.title("Runs")
ui.reload_button()
runs = queries.load_runs(path)
if runs.empty:
    st.info("No runs yet: the destination records each run here when it starts.")
    st.stop()
failed, running = (runs["outcome"] == o for o in ("failed", "running"))
total, bad, now, rejected = st.columns(4)
total.metric("Runs", ui.fmt_count(len(runs)), border=True)
bad.metric("Failed", ui.fmt_count(failed.sum()), border=True)
now.metric("Running", ui.fmt_count(running.sum()), border=True)
rejected.metric("Records rejected", ui.fmt_count(runs["records_rejected"].sum()), border=True)
runs["duration"] = [
    ui.fmt_duration(s) if o != "running" else f"{ui.fmt_duration(s)} so far"
    for s, o in zip(runs["duration_s"], runs["outcome"], strict=True)
]
for row in runs[failed].head(5).itertuples():  # the whole error, not a cut-off cell
    failed_run(row)
st.caption("Failed runs first, then newest. Click a run to see its rejected records.")
ui.clickable_grid(
    runs, COLUMNS, "runs", ui.OPENS_RUN_REJECTS, height=ui.grid_height(len(runs), max_rows=20)
)
