"""Altair chart builders: DataFrame in, chart out. No Streamlit, no SQL."""

from __future__ import annotations

import altair as alt
import pandas as pd

from report_app import explain

# success in greens, waiting in ambers, failures in reds; unknown codes fall back to grey
CODE_COLOURS = {
    2000: "#2e7d32",
    2040: "#81c784",
    1000: "#ffb300",
    1010: "#fb8c00",
    explain.NO_STATUS: "#bdbdbd",
    4000: "#ef9a9a",
    4040: "#e57373",
    4220: "#ef5350",
    4260: "#f44336",
    5000: "#b71c1c",
    5080: "#ce93d8",
    5120: "#d32f2f",
    5130: "#c62828",
    explain.NOT_FOUND_AT_CODAT: "#757575",
}
OUTCOME_COLOURS = {
    "succeeded": "#2e7d32",
    "in progress": "#fb8c00",
    "unconfirmed": "#5c6bc0",  # a webhook said it ended; Codat not read yet
    "failed": "#c62828",
}


def status_scale(codes: list) -> alt.Scale:
    """A fixed colour per status label, so a code keeps its colour whatever the filter."""
    known = sorted({explain.NO_STATUS if pd.isna(c) else int(c) for c in codes})
    labels = [explain.code_label(c) for c in known]
    colours = [CODE_COLOURS.get(c, "#9e9e9e") for c in known]
    return alt.Scale(domain=labels, range=colours)


def syncs_per_day(per_day: pd.DataFrame) -> alt.Chart:
    """Stacked bars: syncs initiated per day (UTC), one colour per status code."""
    return (
        alt.Chart(per_day, title="Syncs per day by status")
        .mark_bar()
        .encode(
            x=alt.X("day:T", title="Day (UTC)", timeUnit="yearmonthdate"),
            y=alt.Y("sum(syncs):Q", title="Syncs", stack="zero"),
            color=alt.Color(
                "status:N",
                title="Status",
                scale=status_scale(per_day["status_code"].tolist()),
                legend=alt.Legend(orient="bottom", columns=3),
            ),
            tooltip=[
                alt.Tooltip("day:T", title="Day"),
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("sum(syncs):Q", title="Syncs"),
            ],
        )
    )


def syncs_by_outcome(outcomes: pd.DataFrame) -> alt.Chart:
    """One horizontal bar per outcome: succeeded, in progress, unconfirmed, failed."""
    domain = [o for o in OUTCOME_COLOURS if o in set(outcomes["outcome"])]
    return (
        alt.Chart(outcomes, title="Syncs by outcome")
        .mark_bar()
        .encode(
            y=alt.Y("outcome:N", title=None, sort=list(OUTCOME_COLOURS)),
            x=alt.X("syncs:Q", title="Syncs"),
            color=alt.Color(
                "outcome:N",
                scale=alt.Scale(domain=domain, range=[OUTCOME_COLOURS[o] for o in domain]),
                legend=None,
            ),
            tooltip=["outcome:N", "syncs:Q"],
        )
    )


def syncs_by_code(codes: pd.DataFrame) -> alt.Chart:
    """One horizontal bar per status code, labelled with the code's meaning."""
    data = codes.assign(status=[explain.code_label(c) for c in codes["status_code"].tolist()])
    return (
        alt.Chart(data, title="Syncs by status code")
        .mark_bar()
        .encode(
            y=alt.Y("status:N", title=None, sort="-x"),
            x=alt.X("syncs:Q", title="Syncs"),
            color=alt.Color(
                "status:N", scale=status_scale(codes["status_code"].tolist()), legend=None
            ),
            tooltip=["status:N", "syncs:Q"],
        )
    )
