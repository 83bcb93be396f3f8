"""The stdin reader: any line becomes a plain Record or State, nothing, or an Unreadable
reject; it never raises. An odd `emitted_at` is ignored; a STATE that could not be echoed is
refused when read."""

from __future__ import annotations

import io
import json
import os
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from airbyte_cdk.models import Type
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from destination_codat_expenses import protocol
from destination_codat_expenses.protocol import (
    KNOWN_TYPES,
    MAX_LINE_BYTES,
    InputStats,
    Record,
    State,
    Unreadable,
    echo,
    parse_lines,
    read_lines,
    to_json,
)

GOOD_DATA = {"id": "c1", "amount": "12.00"}


def record_line(emitted_at=1, **record) -> str:
    body = {"stream": "cards", "data": GOOD_DATA, "emitted_at": emitted_at, **record}
    return json.dumps({"type": "RECORD", "record": body})


def parsed(*lines: str | bytes) -> list:
    return list(parse_lines(lines, InputStats()))


@pytest.mark.parametrize(
    "emitted_at",
    ['"2024-05-01T00:00:00Z"', '{"at": 1}', "NaN", "Infinity", "-Infinity", "1.5", "true", "[1]"],
)
def test_an_odd_emitted_at_is_ignored_and_the_record_is_kept(emitted_at):
    line = record_line().replace('"emitted_at": 1', f'"emitted_at": {emitted_at}')
    (message,) = parsed(line)
    assert isinstance(message, Record)
    assert message.emitted_at == 0 and message.data == GOOD_DATA


def test_an_integer_emitted_at_and_the_line_number_are_kept():
    (message,) = parsed("", record_line(emitted_at=1714521600000))
    assert message.emitted_at == 1714521600000 and message.line == 2


@pytest.mark.parametrize(
    ("line", "stream", "reason"),
    [
        ("not json at all", "", "is not valid JSON"),
        ("[1, 2, 3]", "", "is not an Airbyte message"),
        ('{"type": {"RECORD": 1}}', "", "is not an Airbyte message"),
        ('{"no": "type"}', "", "is not an Airbyte message"),
        ("[" * 100_000 + "]" * 100_000, "", "is not valid JSON"),  # deeper than Python recurses
        ('{"type": "RECORD", "record": {"stream": "cards", "data": [1]}}', "cards", "RECORD"),
        ('{"type": "RECORD", "record": {"stream": 7, "data": {}}}', "", "RECORD without"),
        ('{"type": "RECORD", "record": "cards"}', "", "RECORD without"),
        ('{"type": "STATE", "state": [1]}', "", "STATE without a state object"),
        ('{"type": "STATE", "state": {"type": "GLOBAL", "n": NaN}}', "", "cannot be echoed"),
        (b'{"type": "RECORD", "record": {"stream": "\xff"}}', "", "is not valid UTF-8"),
        ("x" * (MAX_LINE_BYTES + 1), "", "is longer than 1 MiB"),
    ],
)
def test_an_unreadable_line_is_an_unreadable_reject_naming_its_line(line, stream, reason):
    stats = InputStats()
    (problem,) = list(parse_lines([record_line(), line], stats))[1:]
    assert isinstance(problem, Unreadable)
    assert problem.line == 2 and problem.stream == stream and reason in problem.reason
    assert stats.unreadable_lines == 1


def test_other_message_types_are_not_ours_and_not_rejects():
    lines = ['{"type": "LOG", "log": {"level": "INFO", "message": "hi"}}', '{"type": "TRACE"}']
    assert parsed(*lines) == []


def test_an_endless_line_is_read_in_bounded_pieces_and_the_next_line_still_counts():
    huge = b"{" + b"x" * (3 * MAX_LINE_BYTES) + b"}\n"
    lines = list(read_lines(io.BytesIO(huge + record_line().encode() + b"\n")))
    assert len(lines) == 2 and max(len(line) for line in lines) <= MAX_LINE_BYTES + 1
    first, second = parsed(*lines)
    assert "longer than 1 MiB" in first.reason
    assert isinstance(second, Record) and second.line == 2


def test_a_state_echo_writes_a_huge_exponent_as_it_came_not_spelled_out():
    (message,) = parsed('{"type": "STATE", "state": {"type": "GLOBAL", "n": 1E+999999999}}')
    line = to_json(echo(message, 3))
    assert len(line) < 200
    assert json.loads(line, parse_float=Decimal)["state"]["n"] == Decimal("1E+999999999")


def test_destination_stats_that_are_not_an_object_are_replaced_not_a_crash():
    state = State({"type": "GLOBAL", "destinationStats": [1, 2]}, "*")
    assert echo(state, 4)["state"]["destinationStats"] == {"recordCount": 4}
    state = State({"type": "STREAM", "stream": ["not", "an", "object"]}, "")
    assert json.loads(to_json(echo(state, 0)))["state"]["stream"] == ["not", "an", "object"]


# -- properties: nothing a source sends makes the reader raise ----------------------------------
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=20)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", "1E+999999999", "-0.0", "1e-400"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


def as_json(value) -> str:
    """JSON text where the sampled number words stay bare numbers (NaN, 1E+999999999, ...)."""
    text = json.dumps(value)
    for word in ["NaN", "Infinity", "-Infinity", "1E+999999999", "-0.0", "1e-400"]:
        text = text.replace(f'"{word}"', word)
    return text


def message_line(kind: str, record: dict | None, state) -> str:
    if kind == "RECORD":
        return json.dumps({"type": "RECORD", "record": record}).replace('"@@"', "NaN")
    return f'{{"type": "{kind}", "state": {as_json(state)}}}'


def outcomes_are_readable(messages: list) -> None:
    for message in messages:
        if isinstance(message, Unreadable):
            assert message.reason and isinstance(message.stream, str)
        elif isinstance(message, Record):
            assert isinstance(message.emitted_at, int)
            assert isinstance(message.data, dict)
        else:
            assert isinstance(message, State)
            json.loads(to_json(echo(message, 1)))  # always valid JSON


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.text(max_size=200) | st.binary(max_size=200), max_size=20))
def test_any_garbage_lines_never_raise(lines):
    messages = list(parse_lines(lines, InputStats()))
    outcomes_are_readable(messages)
    assert len(messages) <= sum(1 for line in lines if line.strip())


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["RECORD", "STATE", "LOG"]),
            st.fixed_dictionaries(
                {"stream": st.text(max_size=8) | st.integers(), "data": JSON_VALUES},
                optional={"emitted_at": JSON_VALUES | st.just("@@"), "namespace": JSON_VALUES},
            ),
            JSON_VALUES,
        ),
        max_size=10,
    )
)
def test_any_message_shape_never_raises_and_every_record_or_reject_is_sound(items):
    lines = [message_line(*item) for item in items]
    messages = list(parse_lines(lines, InputStats()))
    outcomes_are_readable(messages)
    records = [m for m in messages if isinstance(m, Record)]
    readable = [
        r
        for kind, r, _ in items
        if kind == "RECORD" and isinstance(r["stream"], str) and isinstance(r["data"], dict)
    ]
    assert len(records) == len(readable)


# -- no CDK in protocol.py ----------------------------------------------------------------------
def test_the_message_types_read_are_the_cdks():
    """protocol.py names Airbyte's message types itself (it imports no airbyte_cdk): the list
    must stay the CDK's, or a valid message type would be read as garbage."""
    assert set(KNOWN_TYPES) == {kind.value for kind in Type}


def test_the_reader_yields_plain_values_and_imports_no_cdk():
    source = Path(protocol.__file__).read_text()
    assert "airbyte_cdk" not in source
    state = '{"type": "STATE", "state": {"type": "STREAM", "stream": {"stream_descriptor": '
    state += '{"name": "cards"}}, "id": 7}}'
    record, echoed = parsed(record_line(), state)
    assert record == Record("cards", GOOD_DATA, 1, 1)
    assert echoed == State(json.loads(state)["state"], "cards")
    assert echo(echoed, 1) == {
        "type": "STATE",
        "state": {**json.loads(state)["state"], "destinationStats": {"recordCount": 1}},
    }


def lines_through_a_pipe(data: bytes, chunk_sizes: list[int]) -> list:
    """What read_lines yields from a pipe's descriptor (stdin), `data` written in chunks by
    another thread, quiet ticks left out."""
    read_end, write_end = os.pipe()

    def write() -> None:
        rest, sizes = data, iter(chunk_sizes)
        while rest:
            size = next(sizes, len(rest))
            os.write(write_end, rest[:size])
            rest = rest[size:]
        os.close(write_end)

    writer = threading.Thread(target=write)
    writer.start()
    with open(read_end, "rb") as stream:
        lines = [line for line in read_lines(stream, quiet_s=0.01) if line is not None]
    writer.join()
    return lines


LINE_PARTS = st.lists(
    st.one_of(
        st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
        st.just(b"{" + b"x" * (MAX_LINE_BYTES + 5) + b"}"),  # longer than the limit
    ),
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(LINE_PARTS, st.booleans(), st.lists(st.integers(1, 70_000), max_size=8))
def test_stdin_is_read_in_the_same_lines_as_any_stream(parts, final_newline, chunk_sizes):
    data = b"\n".join(parts) + (b"\n" if final_newline and parts else b"")
    assert lines_through_a_pipe(data, chunk_sizes) == list(read_lines(io.BytesIO(data)))


def test_a_quiet_stdin_says_so_until_a_line_comes():
    read_end, write_end = os.pipe()
    with open(read_end, "rb") as stream:
        lines = read_lines(stream, quiet_s=0.01)
        assert next(lines) is None and next(lines) is None  # nothing yet: quiet, not blocked
        os.write(write_end, record_line().encode() + b"\n")
        os.close(write_end)
        rest = [line for line in lines if line is not None]
    assert [message.line for message in parsed(*rest)] == [1]
    ticks = [None, record_line(), None, record_line()]  # ticks are not lines: numbers stay
    assert [m if m is protocol.QUIET else m.line for m in parsed(*ticks)] == [
        protocol.QUIET, 1, protocol.QUIET, 2,
    ]  # fmt: skip
