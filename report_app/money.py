"""Money for people: exact Decimals, written with the currency's ISO 4217 minor units and
thousands grouping. Pure functions, no Streamlit, no SQL.

The store keeps amounts as DECIMAL(38,9); the report reads them as text and turns them into
Decimal (never float), so 1.234 KWD + 1000.001 KWD is 1,001.235 KWD, not 1001.24.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from destination_codat_expenses.currencies import MINOR_UNITS

NO_AMOUNT = "—"


def as_decimal(value) -> Decimal | None:
    """A stored amount (text, Decimal or int) as a Decimal; None for a missing one. A float is
    refused: it has already lost the exact value."""
    if value is None or isinstance(value, float):
        if isinstance(value, float) and value == value:  # not NaN: a float reached the page
            raise TypeError("money must not pass through float")
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def minor_units(currency) -> int | None:
    """The currency's ISO 4217 minor units; None for a code the table does not know."""
    return MINOR_UNITS.get(str(currency).upper()) if isinstance(currency, str) else None


def format_amount(value, currency) -> str:
    """'1,234,567.89 USD', '125,000 JPY', '1,234.567 KWD'. An amount with more digits than its
    currency allows is shown whole (it is the store's exact value, never rounded away); an
    unknown currency shows every digit the amount has."""
    amount = as_decimal(value)
    if amount is None:
        return NO_AMOUNT
    places = minor_units(currency)
    exponent = amount.normalize().as_tuple().exponent  # the store pads to 9 places
    needed = max(-exponent, 0) if isinstance(exponent, int) else 0
    shown = needed if places is None else max(places, needed)
    text = f"{amount:,.{shown}f}"
    code = currency.upper() if isinstance(currency, str) and currency else ""
    return f"{text} {code}".strip()


def total(values) -> Decimal:
    """The exact sum of one currency's amounts (missing ones count as nothing)."""
    return sum((a for a in map(as_decimal, values) if a is not None), Decimal(0))
