"""jsonwire's fast path writes exactly what the general one does: every ledger's payload hashes
are of this text, so one byte more or less would make every re-delivered record a change."""

from __future__ import annotations

import json
from collections import OrderedDict
from decimal import Decimal
from enum import IntEnum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from destination_codat_expenses import jsonwire


def reference(value) -> str:
    """jsonwire.dumps as it was first written (recursive, json.dumps for every scalar)."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a finite amount")
        return format(value, "f")
    if isinstance(value, dict):
        parts = (f"{json.dumps(str(k))}:{reference(v)}" for k, v in value.items())
        return "{" + ",".join(parts) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(reference(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("floats are not allowed on the wire; use Decimal for amounts")
    return json.dumps(value)


class Small(IntEnum):
    ONE = 1


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**64, max_value=2**80)
    | st.text()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.just(Small.ONE)
)
payloads = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3).map(OrderedDict)
    ),
    max_leaves=20,
)


@given(payloads)
def test_fast_path_writes_the_same_text_as_the_reference(value):
    assert jsonwire.dumps(value) == reference(value)


@pytest.mark.parametrize(
    "value, error",
    [
        (1.5, TypeError),
        ({"lines": [{"netAmount": 1.1}]}, TypeError),
        (Decimal("NaN"), ValueError),
        ([Decimal("Infinity")], ValueError),
        (object(), TypeError),
    ],
)
def test_what_the_wire_refuses_is_refused_on_either_path(value, error):
    with pytest.raises(error):
        jsonwire.dumps(value)
    with pytest.raises(error):
        reference(value)


def test_money_is_a_plain_number_and_text_is_ascii_escaped():
    body = {"amount": Decimal("1E+2"), "tiny": Decimal("-0.00000001"), "merchant": "Café ☕ \u2028"}
    text = jsonwire.dumps(body)
    assert text == '{"amount":100,"tiny":-0.00000001,"merchant":"Caf\\u00e9 \\u2615 \\u2028"}'
    assert jsonwire.loads(text) == {**body, "amount": Decimal("100")}
