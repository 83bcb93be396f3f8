"""Reading Airbyte messages from stdin exactly, and echoing STATE without losing anything.

The CDK parses stdin with orjson (floats for money) and drops state fields it does not model
(the platform's `id`, `rejectedRecordCount`). Here each line is parsed once, numbers as Decimal,
into plain values: a `Record` (stream, data, line number), a `State` (the raw mapping, which is
what gets echoed, with destinationStats set, instead of a re-serialised model) or an
`Unreadable`. Nothing here knows the CDK; destination.py does.

When stdin is quiet for a while the reader yields a `Quiet`, so the destination can echo a
STATE whose records were pushed meanwhile without waiting for the next line.

Input is untrusted: no line can raise. A line that is not a message this destination can read
(not UTF-8, not JSON, not an object, too long, a RECORD without a stream and a data object, a
STATE that cannot be echoed) comes out as an `Unreadable`, which the destination stores as a
reject; an odd `emitted_at` is ignorable metadata and becomes 0.
"""

from __future__ import annotations

import json
import os
import select
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

from destination_codat_expenses import stopping

MAX_LINE_BYTES = 1024 * 1024
READ_CHUNK = 64 * 1024
QUIET_S = 0.1  # input silent this long: a Quiet message (what waits for the input may go on)
# Airbyte's message types; a tuple: `in` must not hash a dict
KNOWN_TYPES = (
    "RECORD",
    "STATE",
    "LOG",
    "SPEC",
    "CONNECTION_STATUS",
    "CATALOG",
    "TRACE",
    "CONTROL",
    "DESTINATION_CATALOG",
)


@dataclass(frozen=True)
class Record:
    stream: str
    data: dict
    line: int  # its line on stdin, for a reject that names it
    emitted_at: int = 0


@dataclass(frozen=True)
class State:
    """An input STATE as it came: `raw` is echoed; `scope` names whose records it covers."""

    raw: dict
    scope: str  # a stream name, or "*" for GLOBAL/LEGACY state


@dataclass(frozen=True)
class Unreadable:
    """An input line that is not a message this destination can read: a reject, not a crash."""

    line: int
    stream: str  # the stream the line names, when that much could be read; else ""
    reason: str  # completes "line 17 ..."


@dataclass(frozen=True)
class Quiet:
    """Nothing came on the input for a while (QUIET_S): the reader may do what waits meanwhile,
    as echoing a STATE whose records have all been pushed since."""


QUIET = Quiet()
Message = Record | State | Unreadable | Quiet


@dataclass
class InputStats:
    unreadable_lines: int = 0


def read_lines(stream: IO, quiet_s: float = QUIET_S) -> Iterator[bytes | str | None]:
    """The stream's lines, none held longer than MAX_LINE_BYTES + 1: the rest of a longer line
    is read and dropped, so one endless line cannot exhaust memory. From a stream with a file
    descriptor (stdin), None when nothing came for `quiet_s`; the stream must not have been
    read from before (its descriptor is read directly)."""
    descriptor = file_descriptor(stream)
    if descriptor is not None:
        yield from read_descriptor_lines(descriptor, quiet_s)
        return
    while line := read_line(stream, MAX_LINE_BYTES + 1):
        if len(line) > MAX_LINE_BYTES and line[-1:] not in ("\n", b"\n"):
            while (rest := stream.readline(MAX_LINE_BYTES)) and rest[-1:] not in ("\n", b"\n"):
                pass
        yield line


def file_descriptor(stream: IO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # in memory (io.UnsupportedOperation)
        return None


def read_descriptor_lines(descriptor: int, quiet_s: float) -> Iterator[bytes | None]:
    """read_lines for a file descriptor, in chunks; None for each `quiet_s` with nothing."""
    pending, dropping = b"", False  # dropping: the rest of a line longer than the limit
    while True:
        if not readable(descriptor, quiet_s):
            yield None
            continue
        chunk = os.read(descriptor, READ_CHUNK)
        if not chunk:
            break
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) != -1:
            if not dropping:  # a longer line: its head, as a stream's readline gives it
                yield pending[start : min(end + 1, start + MAX_LINE_BYTES + 1)]
            dropping, start = False, end + 1
        pending = pending[start:]
        if len(pending) > MAX_LINE_BYTES:
            if not dropping:
                yield pending[: MAX_LINE_BYTES + 1]
            dropping, pending = True, b""
    if pending and not dropping:
        yield pending


def readable(descriptor: int, timeout_s: float) -> bool:
    """Whether input waits (or the input ended) within `timeout_s`; a stop request cuts it."""
    with stopping.interruptible():
        ready, _, _ = select.select([descriptor], [], [], timeout_s)
    return bool(ready)


def read_line(stream: IO, limit: int) -> bytes | str:
    """A blocking read a stop request may cut short (the source may be silent for long)."""
    with stopping.interruptible():
        return stream.readline(limit)


def parse_lines(lines: Iterable[str | bytes | None], stats: InputStats) -> Iterator[Message]:
    number = 0
    for line in lines:
        if line is None:
            yield QUIET
            continue
        number += 1
        if not line.strip():
            continue
        message = parse_line(line, number, stats)
        if message is not None:
            yield message


def parse_line(line: str | bytes, number: int, stats: InputStats) -> Message | None:
    if len(line.rstrip(b"\r\n" if isinstance(line, bytes) else "\r\n")) > MAX_LINE_BYTES:
        return unreadable(number, "", "is longer than 1 MiB", stats)
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
    except UnicodeDecodeError:
        return unreadable(number, "", "is not valid UTF-8", stats)
    try:
        raw = json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except (ValueError, RecursionError):
        return unreadable(number, "", "is not valid JSON", stats)
    if not isinstance(raw, dict) or raw.get("type") not in KNOWN_TYPES:
        return unreadable(
            number, "", "is not an Airbyte message (a JSON object with a type)", stats
        )
    if raw["type"] == "RECORD":
        return record_message(raw, number, stats)
    if raw["type"] == "STATE":
        return state_message(raw, number, stats)
    return None  # LOG, TRACE and anything else a source sends is not ours to act on


def record_message(raw: dict, number: int, stats: InputStats) -> Record | Unreadable:
    record = raw.get("record")
    stream = record.get("stream") if isinstance(record, dict) else None
    if not isinstance(stream, str) or not isinstance(record.get("data"), dict):
        named = stream if isinstance(stream, str) else ""
        return unreadable(number, named, "is a RECORD without a stream and a data object", stats)
    return Record(stream, record["data"], number, emitted_at(record.get("emitted_at")))


def emitted_at(value: Any) -> int:
    """Metadata nobody here reads: anything but an integer (text, NaN, an object) becomes 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def state_message(raw: dict, number: int, stats: InputStats) -> State | Unreadable:
    state = raw.get("state")
    if not isinstance(state, dict):
        return unreadable(number, "", "is a STATE without a state object", stats)
    try:
        to_json(state)  # what cannot be echoed is refused now, not when it is due
    except (ValueError, RecursionError):
        return unreadable(number, "", "is a STATE that cannot be echoed as JSON", stats)
    return State(state, state_scope(state))


def state_scope(state: dict) -> str:
    if state.get("type") != "STREAM":
        return "*"
    stream = state.get("stream")
    descriptor = stream.get("stream_descriptor") if isinstance(stream, dict) else None
    name = descriptor.get("name") if isinstance(descriptor, dict) else None
    return name if isinstance(name, str) else ""


def unreadable(number: int, stream: str, reason: str, stats: InputStats) -> Unreadable:
    stats.unreadable_lines += 1
    return Unreadable(number, stream, reason)


def echo(state: State, record_count: int) -> dict:
    """The STATE to emit: exactly what came in, plus how many records it covers."""
    out = dict(state.raw)
    known = out.get("destinationStats")
    stats = dict(known) if isinstance(known, dict) else {}
    stats["recordCount"] = record_count
    out["destinationStats"] = stats
    return {"type": "STATE", "state": out}


def to_json(value: Any) -> str:
    """JSON text for an echoed STATE. A Decimal is written as it reads (`1E+999999999` stays
    short, where the wire format would spell out every zero); NaN and Infinity are not JSON."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("NaN and Infinity are not JSON numbers")
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    if isinstance(value, float):
        raise ValueError("floats are not read from stdin; a float here is a bug")
    return json.dumps(value)
