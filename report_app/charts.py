"""Altair chart builders: DataFrame in, chart out. No Streamlit, no SQL.

Colours follow who has to act on a code (explain.severity): greens for success, ambers for
waiting, blues and purples for the customer, reds for our data, greys for Codat; within a
group each code has its own clearly different shade. Legends are never cut (labelLimit 0).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from report_app import explain

CODE_COLOURS = {
    2000: "#2e7d32",
    2040: "#81c784",
    explain.NO_STATUS: "#ffe082",
    1000: "#ffb300",
    1010: "#ef6c00",
    4000: "#1e88e5",
    4040: "#5e35b1",
    4220: "#ab47bc",
    4260: "#00897b",
    5130: "#3949ab",
    5120: "#d32f2f",
    5080: "#f48fb1",
    5000: "#424242",
    explain.NOT_FOUND_AT_CODAT: "#9e9e9e",
}
UNKNOWN_COLOUR = "#bdbdbd"
ORDINAL_DAYS = 31  # up to a month, one labelled bar per day; longer ranges get a time axis


def ordered_codes(codes: list) -> list[int]:
    """Codes in legend order: by who acts (success first), then by code."""
    known = {explain.NO_STATUS if pd.isna(c) else int(c) for c in codes}
    rank = {name: n for n, name in enumerate(explain.SEVERITIES)}
    return sorted(known, key=lambda c: (rank[explain.severity(c)], c))


def status_scale(codes: list) -> alt.Scale:
    """A fixed colour per status label, so a code keeps its colour whatever the filter."""
    known = ordered_codes(codes)
    labels = [explain.code_label(c) for c in known]
    colours = [CODE_COLOURS.get(c, UNKNOWN_COLOUR) for c in known]
    return alt.Scale(domain=labels, range=colours)


def legend(columns: int) -> alt.Legend:
    return alt.Legend(orient="bottom", columns=columns, labelLimit=0, titleLimit=0, symbolLimit=0)


def syncs_per_day(per_day: pd.DataFrame) -> alt.Chart:
    """Stacked bars: syncs initiated per day (UTC), one colour per status code. A short range
    (one day too) gets one labelled bar per day, not a full-width block."""
    data = per_day.assign(
        severity=[explain.severity(c) for c in per_day["status_code"].tolist()],
        date=pd.to_datetime(per_day["day"]).dt.strftime("%Y-%m-%d"),
    )
    short = data["date"].nunique() <= ORDINAL_DAYS
    x = (
        alt.X(
            "date:O",
            title="Day (UTC)",
            axis=alt.Axis(labelAngle=0 if data["date"].nunique() <= 10 else -45),
        )
        if short
        else alt.X("day:T", title="Day (UTC)", timeUnit="yearmonthdate")
    )
    bars = alt.Chart(data, title="Syncs per day by status").mark_bar(
        **({"size": 36} if short else {})
    )
    return bars.encode(
        x=x,
        y=alt.Y("sum(syncs):Q", title="Syncs", stack="zero", axis=alt.Axis(tickMinStep=1)),
        color=alt.Color(
            "status:N",
            title="Status (grouped by who acts: success, waiting, customer, our data, Codat)",
            scale=status_scale(data["status_code"].tolist()),
            legend=legend(2),
        ),
        order=alt.Order("severity:N"),
        tooltip=[
            alt.Tooltip("date:N", title="Day"),
            alt.Tooltip("status:N", title="Status"),
            alt.Tooltip("severity:N", title="Who acts"),
            alt.Tooltip("sum(syncs):Q", title="Syncs"),
        ],
    )


def syncs_by_code(codes: pd.DataFrame) -> alt.Chart:
    """One horizontal bar per status code, labelled with the code's meaning, in legend order."""
    data = codes.assign(
        status=[explain.code_label(c) for c in codes["status_code"].tolist()],
        severity=[explain.severity(c) for c in codes["status_code"].tolist()],
    )
    order = [explain.code_label(c) for c in ordered_codes(codes["status_code"].tolist())]
    return (
        alt.Chart(data, title="Syncs by status code")
        .mark_bar()
        .encode(
            y=alt.Y("status:N", title=None, sort=order, axis=alt.Axis(labelLimit=0)),
            x=alt.X("syncs:Q", title="Syncs", axis=alt.Axis(tickMinStep=1)),
            color=alt.Color(
                "status:N", scale=status_scale(codes["status_code"].tolist()), legend=None
            ),
            tooltip=[
                alt.Tooltip("status:N", title="Status"),
                alt.Tooltip("severity:N", title="Who acts"),
                alt.Tooltip("syncs:Q", title="Syncs"),
            ],
        )
    )
