"""Strict parsers for one field each. Every failure is a `FieldProblem(reason)`; the mapper adds
which record and which field, so messages read "Record r-17: field 'amount' has 3 decimal ...".
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from destination_codat_expenses.currencies import MINOR_UNITS

# ASCII digits only: `\d` and Decimal() would also read Arabic-Indic or fullwidth digits
PLAIN_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)
MAX_DIGITS = 28
MAX_MAGNITUDE = Decimal(10) ** 15
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BIDI_OVERRIDES = re.compile("[\u202a-\u202e\u2066-\u2069]")
SURROGATE = re.compile("[\ud800-\udfff]")
EARLIEST_YEAR = 1900


class FieldProblem(ValueError):
    """Why one value was refused; the sentence completes "field 'x' ..."."""


def amount(value: Any, currency: str | None = None) -> Decimal:
    """An exact decimal amount: Decimal, int, or a plain numeric string. Floats are refused."""
    if isinstance(value, float):
        raise FieldProblem("arrived as a binary float; amounts must be exact decimals")
    if isinstance(value, str):
        text = value.strip()
        if not PLAIN_DECIMAL.fullmatch(text):
            raise FieldProblem(f"'{value[:40]}' is not a plain decimal number (no separators)")
        value = text
    # nothing else: Decimal() would also read a list or tuple as (sign, digits, exponent)
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise FieldProblem("must be a number")
    try:
        number = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise FieldProblem("must be a number") from None
    return checked_amount(number, currency)


def checked_amount(number: Decimal, currency: str | None) -> Decimal:
    if not number.is_finite():
        raise FieldProblem(f"is {number}, not a finite amount")
    if len(number.as_tuple().digits) > MAX_DIGITS or abs(number) >= MAX_MAGNITUDE:
        raise FieldProblem("is too large to be an expense amount")
    if number.as_tuple().exponent < -MAX_DIGITS:  # 0E-999999999 would be written out in full
        raise FieldProblem(f"has more than {MAX_DIGITS} decimal places")
    if currency is not None:
        places = MINOR_UNITS[currency]
        if number != number.quantize(Decimal(1).scaleb(-places)):
            raise FieldProblem(f"has more decimal places than {currency} allows ({places})")
    return number if number else abs(number)  # -0.00 becomes 0.00, keeping its places


def rate(value: Any) -> Decimal:
    number = amount(value)
    if number <= 0:
        raise FieldProblem("must be greater than zero")
    if -number.as_tuple().exponent > 9:
        raise FieldProblem("has more than 9 decimal places")
    return number


def currency(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldProblem("must be a three-letter ISO 4217 code")
    code = value.strip().upper()
    if code not in MINOR_UNITS:
        raise FieldProblem(f"'{value[:10]}' is not an ISO 4217 currency code for money")
    return code


def issue_date(value: Any, zone: tzinfo, today: date, max_days_ahead: int = 365) -> date:
    """A calendar date: ISO date, or date-time (naive ones are read in `zone`)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        return within_window(value, today, max_days_ahead)
    elif isinstance(value, str) and value.strip():
        moment = parse_iso(value.strip())
    else:
        raise FieldProblem("must be an ISO 8601 date")
    if isinstance(moment, date) and not isinstance(moment, datetime):
        return within_window(moment, today, max_days_ahead)
    try:
        local = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-12:00 is past the last date there is
        raise FieldProblem(
            f"'{str(value)[:40]}' is out of range (no such date in {zone})"
        ) from None
    return within_window(local.date(), today, max_days_ahead)


def parse_iso(text: str) -> date | datetime:
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FieldProblem(f"'{text[:40]}' is not a valid ISO 8601 date") from None


def within_window(day: date, today: date, max_days_ahead: int) -> date:
    if day.year < EARLIEST_YEAR:
        raise FieldProblem(f"{day} is before {EARLIEST_YEAR}")
    if day > today + timedelta(days=max_days_ahead):
        raise FieldProblem(f"{day} is more than {max_days_ahead} days in the future")
    return day


def text(value: Any, limit: int) -> str:
    """Free text: NFC-normalised, no control characters, no lone surrogates, bounded."""
    if not isinstance(value, str):
        raise FieldProblem("must be text")
    if SURROGATE.search(value):
        raise FieldProblem("contains an invalid (lone surrogate) character")
    if CONTROL.search(value):
        raise FieldProblem("contains a control character")
    normal = unicodedata.normalize("NFC", value).strip()
    if len(normal) > limit:
        raise FieldProblem(f"is {len(normal)} characters; the limit is {limit}")
    return normal


def reference_id(value: Any) -> str:
    """An id from the accounting software: short text, no bidi tricks, not empty."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    cleaned = text(value, 255)
    if not cleaned:
        raise FieldProblem("must not be empty")
    if BIDI_OVERRIDES.search(cleaned):
        raise FieldProblem("contains a bidirectional-override character")
    return cleaned


def canonical_uuid(value: Any) -> str | None:
    """The lower-case form when `value` is text in the canonical 8-4-4-4-12 hex form, else
    None. uuid.UUID() is not used: it also takes `urn:uuid:`, braces, no hyphens and non-ASCII
    digits, and each of those is another id, not this one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text.lower() if CANONICAL_UUID.fullmatch(text) else None
