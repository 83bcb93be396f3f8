"""The derived table a batch is written from (status_store.columns): the same rows as the lists
it was given, whichever columns hold one value (those are bound once, as scalars)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from destination_codat_expenses.store.status_store import columns, holds_one_value

STAMP = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
KINDS = {  # a column's type, and values it may hold (None included: a NULL)
    "VARCHAR": st.sampled_from(["a", "b", "Completed", None]),
    "INTEGER": st.sampled_from([0, 1, 2000, None]),
    "BOOLEAN": st.sampled_from([True, False, None]),
    "DECIMAL(38,9)": st.sampled_from([Decimal("12.34"), Decimal("0.001"), None]),
    "DATE": st.sampled_from([date(2024, 5, 2), None]),
    "TIMESTAMPTZ": st.sampled_from([STAMP, None]),
}


@st.composite
def tables(draw) -> dict[str, tuple[str, list]]:
    rows = draw(st.integers(1, 6))
    kinds = draw(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5))
    table = {}
    for n, kind in enumerate(kinds):
        if draw(st.booleans()):  # one value all along, as a flush's time or company
            values = [draw(KINDS[kind])] * rows
        else:
            values = draw(st.lists(KINDS[kind], min_size=rows, max_size=rows))
        table[f"c{n}"] = (kind, values)
    return table


@settings(max_examples=150, deadline=None)
@given(tables())
def test_the_derived_table_holds_exactly_the_rows_it_was_given(table):
    select, params = columns(**table)
    with duckdb.connect() as db:
        db.execute("SET TimeZone = 'UTC'")
        got = db.execute(f"SELECT * FROM {select} v", params).fetchall()
    expected = list(zip(*(values for _, values in table.values()), strict=True))
    assert Counter(got) == Counter(expected)  # equal values: 12.34 comes back as 12.340000000


def test_a_column_of_one_value_is_bound_once_and_one_column_stays_a_list():
    select, params = columns(tid=("VARCHAR", ["x", "y"]), stamp=("TIMESTAMPTZ", [STAMP] * 2))
    assert "?::TIMESTAMPTZ AS stamp" in select and params == [["x", "y"], STAMP]
    select, params = columns(co=("VARCHAR", ["c", "c"]), stamp=("TIMESTAMPTZ", [STAMP] * 2))
    assert "unnest(?::VARCHAR[]) AS co" in select and params == [["c", "c"], STAMP]


def test_one_value_means_one_value_of_one_type():
    assert holds_one_value([None, None]) and holds_one_value(["a", "a"])
    assert not holds_one_value([1, True]) and not holds_one_value([1, 1.0])
    assert not holds_one_value([]) and not holds_one_value(["a", "b"])
