"""Input records the destination refused: by run, by field, with the reason; search and CSV.
The store keeps a reject's key, field and reason, never the record itself."""

from __future__ import annotations

import streamlit as st

from report_app import queries, ui

TEXT = st.column_config.TextColumn
# the record, its field and the reason first (the run has its own picker above)
COLUMNS = {
    "rejected_at": st.column_config.DatetimeColumn(
        "Rejected (UTC)", format="YYYY-MM-DD HH:mm:ss", width=150
    ),
    "record_key": TEXT("Record", width=120),
    "field": TEXT("Field", width=100),
    "reason": TEXT("Reason", width=300),
    "stream": TEXT("Stream", width=120),
    "run_id": TEXT("Run id", width=170),
}
ALL = ""


def reject_filter(path: str) -> queries.RejectFilter:
    runs, fields = queries.load_reject_facets(path)
    run_labels = {ALL: "All runs"} | {
        r.run_id: f"{r.run_id} · {r.rejects:,} reject(s) · {ui.fmt_time(r.last_at)}"
        for r in runs.itertuples()
    }
    wanted = st.query_params.get("run", ALL)
    options = list(run_labels) + ([wanted] if wanted not in run_labels else [])
    left, middle, right = st.columns([2, 1, 2])
    run = left.selectbox(
        "Run", options, index=options.index(wanted), format_func=lambda r: run_labels.get(r, r)
    )
    st.query_params["run"] = run
    field_labels = {ALL: "All fields"} | {
        f.field: f"{f.field or '(whole record)'} ({f.rejects:,})" for f in fields.itertuples()
    }
    field = middle.selectbox("Field", list(field_labels), format_func=field_labels.get)
    search = right.text_input(
        "Search", placeholder="record key, stream or reason", icon=":material/search:"
    )
    return queries.RejectFilter(run, field, search.strip())


path = ui.store_path()
st.title("Rejected records")
ui.reload_button()
flt = reject_filter(path)
rejects = queries.load_rejects(path, flt)
if rejects.empty:
    st.info("No rejected records match." if flt != queries.RejectFilter() else "No rejects yet.")
    st.stop()
st.caption(f"{len(rejects):,} rejected record(s) shown, newest first (at most 1,000).")
ui.show_grid(rejects, COLUMNS, key="rejects", height=ui.grid_height(len(rejects)))
st.download_button(
    "Download these rejects (CSV)",
    data=lambda: queries.fetch_rejects(path, flt, limit=None).to_csv(index=False),
    file_name="rejects.csv",
    mime="text/csv",
    icon=":material/download:",
    key="rejects_csv",
)
