"""Reading Airbyte messages from stdin exactly, and echoing STATE without losing anything.

The CDK parses stdin with orjson (floats for money) and drops state fields it does not model
(the platform's `id`, `rejectedRecordCount`). Here each line is parsed once with Decimal numbers;
RECORDs become CDK records carrying those Decimals, and each STATE keeps its raw mapping, which
is what gets echoed (with destinationStats set) instead of a re-serialised model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from airbyte_cdk.models import AirbyteMessage, AirbyteRecordMessage, AirbyteStateMessage, Type

logger = logging.getLogger("airbyte")
MAX_LINE_BYTES = 1024 * 1024


@dataclass
class RawState:
    """An input STATE as it came: `raw` is echoed; `scope` names whose records it covers."""

    raw: dict
    scope: str  # a stream name, or "*" for GLOBAL/LEGACY state


@dataclass
class InputStats:
    unreadable_lines: int = 0


def parse_lines(lines: Iterable[str], stats: InputStats) -> Iterator[AirbyteMessage]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        message = parse_line(line, number, stats)
        if message is not None:
            yield message


def parse_line(line: str, number: int, stats: InputStats) -> AirbyteMessage | None:
    if len(line) > MAX_LINE_BYTES:
        return unreadable(number, "is longer than 1 MiB", stats)
    try:
        raw = json.loads(line, parse_float=Decimal)
    except (ValueError, RecursionError):
        return unreadable(number, "is not valid JSON", stats)
    if not isinstance(raw, dict):
        return unreadable(number, "is not a JSON object", stats)
    kind = raw.get("type")
    if kind == "RECORD":
        return record_message(raw, number, stats)
    if kind == "STATE" and isinstance(raw.get("state"), dict):
        message = AirbyteMessage(type=Type.STATE, state=AirbyteStateMessage())
        message.state.raw_state = RawState(raw["state"], state_scope(raw["state"]))
        return message
    return None  # LOG, TRACE and anything else a source sends is not ours to act on


def record_message(raw: dict, number: int, stats: InputStats) -> AirbyteMessage | None:
    record = raw.get("record")
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("stream"), str)
        or not isinstance(record.get("data"), dict)
    ):
        return unreadable(number, "is a RECORD without a stream and a data object", stats)
    return AirbyteMessage(
        type=Type.RECORD,
        record=AirbyteRecordMessage(
            stream=record["stream"],
            data=record["data"],
            emitted_at=int(record.get("emitted_at") or 0),
            namespace=record.get("namespace"),
        ),
    )


def state_scope(state: dict) -> str:
    if state.get("type") == "STREAM":
        descriptor = (state.get("stream") or {}).get("stream_descriptor") or {}
        return str(descriptor.get("name"))
    return "*"


def unreadable(number: int, reason: str, stats: InputStats) -> None:
    stats.unreadable_lines += 1
    logger.warning("input line %d %s; it was skipped", number, reason)
    return None


def echo(state: RawState, record_count: int) -> dict:
    """The STATE to emit: exactly what came in, plus how many records it covers."""
    out = dict(state.raw)
    stats = dict(out.get("destinationStats") or {})
    stats["recordCount"] = record_count
    out["destinationStats"] = stats
    return {"type": "STATE", "state": out}
