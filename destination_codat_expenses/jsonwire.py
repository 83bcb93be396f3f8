"""JSON on the wire with exact money: Decimal in, JSON number out, never through float.

Every payload is written here three times over (hashed when mapped, kept in the ledger, sent to
Codat), so the plain shapes a payload is made of (dict, list, str, Decimal, int, bool, None)
take a fast path: str through the json module's own C escaper, the rest by exact type. Anything
else takes the general path, which says what json.dumps says. Both write the same text, byte for
byte (unit_tests/test_jsonwire.py), since payload hashes in every ledger are of this text.
"""

from __future__ import annotations

import json
from decimal import Decimal
from json.encoder import encode_basestring_ascii as quoted  # json.dumps(text), in C
from typing import Any


def dumps(value: Any) -> str:
    """Serialise like json.dumps, but write Decimals as plain JSON numbers (no exponent)."""
    kind = type(value)
    if kind is str:
        return quoted(value)
    if kind is dict:
        parts = [f"{quoted(str(k))}:{dumps(v)}" for k, v in value.items()]
        return "{" + ",".join(parts) + "}"
    if kind is list or kind is tuple:
        return "[" + ",".join([dumps(v) for v in value]) + "]"
    if kind is Decimal:
        return decimal_number(value)
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    return general(value)


def general(value: Any) -> str:
    """Subclasses of the plain shapes, and whatever json.dumps would refuse."""
    if isinstance(value, Decimal):
        return decimal_number(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, float):
        raise TypeError("floats are not allowed on the wire; use Decimal for amounts")
    return json.dumps(value)


def decimal_number(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite amount")
    return format(value, "f")


def loads(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)
