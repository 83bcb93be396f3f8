"""Defaults and mapping rules: where a part a record does not carry comes from. Pure.

`defaults` give a constant per part (globally, and per company); `mapping_rules` give parts by
a source field's value. For one record, each part comes from the record's own field, else the
first matching rule that sets that part, else the company's default, else the global default.
Settings are parsed once here (a bad one is a ConfigError naming it); values are parsed with
the same parsers as record fields, so a default is held to a record's rules.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from destination_codat_expenses import values
from destination_codat_expenses.errors import ConfigError
from destination_codat_expenses.values import FieldProblem

TYPES = {"payment": "Payment", "refund": "Refund", "reward": "Reward", "chargeback": "Chargeback"}
MAX_TRACKING = 10
# parts that are the record's own facts: a constant id, date, amount or receipt is never right
FACT_PARTS = ("id", "date", "amount", "tax", "receipt")
MATCHERS = ("equals", "contains", "range")
MAX_NUMBER_TEXT = 100  # a longer text is not read as a number (it is no code or amount)


def transaction_type(value: Any) -> str:
    if isinstance(value, str) and value.strip().lower() in TYPES:
        return TYPES[value.strip().lower()]
    raise FieldProblem(f"must be one of {', '.join(TYPES.values())}")


def tracking_ids(value: Any) -> list[str]:
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list):
        raise FieldProblem("must be a list of ids or a comma-separated string")
    ids = [values.reference_id(p) for p in parts if str(p).strip()]
    if len(ids) > MAX_TRACKING:
        raise FieldProblem(f"has {len(ids)} ids; Codat allows at most {MAX_TRACKING}")
    return ids


def config_rate(value: Any) -> Decimal:
    """A rate from JSON settings: a float there is the number the person typed (repr is the
    shortest text that reads back as it), so it is read as that decimal text."""
    if isinstance(value, float):
        value = repr(value)
    return values.rate(value)


# what a default or a rule may set, each read by its record field's parser
PART_PARSERS = {
    "type": transaction_type,
    "currency": values.currency,
    "rate": config_rate,
    "merchant": lambda v: values.text(v, 255),
    "account": values.reference_id,
    "tax_rate": values.reference_id,
    "tracking": tracking_ids,
    "bank_account": values.reference_id,
    "contact": values.reference_id,
    "notes": lambda v: values.text(v, 2000),
    "reference": lambda v: values.text(v, 255),
}
# parts that name something in the accounting software (check looks each one up)
REFERENCE_PARTS = ("account", "tax_rate", "tracking", "bank_account", "contact")


# -- matching -------------------------------------------------------------------------------------
def as_text(value: Any) -> str | None:
    """Text for comparing: NFC, case-folded, trimmed. Numbers compare as their text too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | Decimal):
        return unicodedata.normalize("NFC", str(value)).casefold().strip()
    return None


def as_number(value: Any) -> Decimal | None:
    """A finite Decimal from an int, a Decimal or plain decimal text ("5812"); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_NUMBER_TEXT or not values.PLAIN_DECIMAL.fullmatch(text):
            return None
        value = text
    if not isinstance(value, int | Decimal | str):
        return None
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def field_value(record: Mapping, name: str) -> Any:
    """The record's value for `name`: the field of that name, else a dotted path into nested
    objects ("merchant.mcc")."""
    if name in record:
        return record[name]
    current: Any = record
    for step in name.split("."):
        if not isinstance(current, Mapping) or step not in current:
            return None
        current = current[step]
    return current


@dataclass(frozen=True)
class Rule:
    index: int
    field: str
    parts: Mapping[str, Any]
    equals: tuple[Any, ...] = ()  # each a Decimal (numbers) or folded text
    contains: tuple[str, ...] = ()
    low: Decimal | None = None
    high: Decimal | None = None
    company_id: str | None = None

    def matches(self, record: Mapping, company_id: str | None) -> bool:
        if self.company_id and self.company_id != company_id:
            return False
        value = field_value(record, self.field)
        if value is None or value == "":
            return False
        if self.equals:
            return equals_any(value, self.equals)
        if self.contains:
            text = as_text(value)
            return text is not None and any(part in text for part in self.contains)
        number = as_number(value)
        return (
            number is not None
            and (self.low is None or number >= self.low)
            and (self.high is None or number <= self.high)
        )


def equals_any(value: Any, wanted: tuple[Any, ...]) -> bool:
    number, text = as_number(value), as_text(value)
    return any(
        (number is not None and number == w) if isinstance(w, Decimal) else text == w
        for w in wanted
    )


@dataclass(frozen=True)
class Fallbacks:
    """What fills the parts a record leaves empty."""

    defaults: Mapping[str, Any] = field(default_factory=dict)
    companies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()

    def parts_for(self, record: Mapping, company_id: str | None) -> dict[str, Any]:
        """Each part from the first matching rule that sets it, else the company's default,
        else the global one (the record's own fields win over all of these, in mapping.py).
        First match per part: an MCC rule can give the account while a card rule gives the
        bank account."""
        chosen: dict[str, Any] = {}
        for rule in self.rules:
            if set(rule.parts) - set(chosen) and rule.matches(record, company_id):
                chosen = {**rule.parts, **chosen}
        return {**self.defaults, **self.companies.get(company_id or "", {}), **chosen}

    def __bool__(self) -> bool:
        return bool(self.defaults or self.companies or self.rules)


# -- settings -------------------------------------------------------------------------------------
def parsed_parts(raw: Any, where: str, allow_companies: bool = False) -> dict[str, Any]:
    """Parts named as in field_mapping, each value read by that part's parser."""
    if not isinstance(raw, Mapping):
        raise ConfigError(where, 'must be an object of parts (e.g. {"currency": "GBP"}).')
    parsed = {}
    for part, value in raw.items():
        if allow_companies and part == "companies":
            continue
        if part in FACT_PARTS:
            raise ConfigError(
                f"{where}.{part}", "is each record's own fact; it cannot be given a constant."
            )
        if part not in PART_PARSERS:
            raise ConfigError(
                f"{where}.{part}",
                f"is not a part that can be set; parts: {', '.join(PART_PARSERS)}.",
            )
        try:
            parsed[part] = PART_PARSERS[part](value)
        except FieldProblem as problem:
            raise ConfigError(f"{where}.{part}", f"{problem}.") from None
    return parsed


def company_key(value: Any, where: str, fixed_company: str | None) -> str:
    company = values.canonical_uuid(str(value)) if isinstance(value, str) else None
    if company is None:
        raise ConfigError(where, f"'{str(value)[:60]}' is not a Codat company id (a UUID).")
    if fixed_company and company != fixed_company:
        raise ConfigError(
            where,
            f"names company {company}, but every record goes to company_id {fixed_company}.",
        )
    return company


def parsed_defaults(raw: Any, fixed_company: str | None) -> tuple[dict, dict]:
    if raw is None:
        return {}, {}
    defaults = parsed_parts(raw, "defaults", allow_companies=True)
    companies_raw = raw.get("companies") or {}
    if not isinstance(companies_raw, Mapping):
        raise ConfigError("defaults.companies", "must map company ids to objects of parts.")
    companies = {}
    for company, parts in companies_raw.items():
        where = f"defaults.companies.{company}"
        companies[company_key(company, where, fixed_company)] = parsed_parts(parts, where)
    return defaults, companies


def parsed_rule(index: int, raw: Any, fixed_company: str | None) -> Rule:
    where = f"mapping_rules[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(where, "must be an object with 'field', one matcher and 'set'.")
    unknown = set(raw) - {"field", "set", "company_id", "title", *MATCHERS}
    if unknown:
        raise ConfigError(where, f"has unknown key(s) {sorted(unknown)}.")
    name = raw.get("field")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}.field", "must name the source field to match.")
    given = [m for m in MATCHERS if raw.get(m) is not None]
    if len(given) != 1:
        raise ConfigError(where, f"needs exactly one of {', '.join(MATCHERS)} (has {given}).")
    parts = parsed_parts(raw.get("set"), f"{where}.set")
    if not parts:
        raise ConfigError(f"{where}.set", "must set at least one part.")
    company = raw.get("company_id")
    company = company_key(company, f"{where}.company_id", fixed_company) if company else None
    matcher = parsed_matcher(given[0], raw[given[0]], f"{where}.{given[0]}")
    return Rule(index, name.strip(), parts, company_id=company, **matcher)


def parsed_matcher(kind: str, raw: Any, where: str) -> dict[str, Any]:
    if kind == "range":
        return parsed_range(raw, where)
    items = raw if isinstance(raw, list) else None
    if not items:
        raise ConfigError(where, "must be a non-empty list of values.")
    if kind == "contains":
        texts = [as_text(v) if isinstance(v, str) else None for v in items]
        if any(not t for t in texts):
            raise ConfigError(where, "must list non-empty texts to look for.")
        return {"contains": tuple(texts)}
    wanted = [wanted_value(v) for v in items]
    if any(w is None or w == "" for w in wanted):
        raise ConfigError(where, "must list texts or numbers.")
    return {"equals": tuple(wanted)}


def wanted_value(value: Any) -> Decimal | str | None:
    """A number (5812, "5812" and 5812.0 are one number) or folded text."""
    if isinstance(value, float):
        value = repr(value)
    number = as_number(value)
    return number if number is not None else as_text(value) if isinstance(value, str) else None


def parsed_range(raw: Any, where: str) -> dict[str, Decimal | None]:
    if not isinstance(raw, Mapping) or set(raw) - {"from", "to"}:
        raise ConfigError(where, "must be an object with 'from' and/or 'to'.")
    bounds = {}
    for end, name in (("from", "low"), ("to", "high")):
        value = raw.get(end)
        number = wanted_value(value) if value is not None else None
        if value is not None and not isinstance(number, Decimal):
            raise ConfigError(f"{where}.{end}", f"'{str(value)[:40]}' is not a number.")
        bounds[name] = number
    if bounds["low"] is None and bounds["high"] is None:
        raise ConfigError(where, "needs 'from', 'to' or both.")
    if None not in bounds.values() and bounds["low"] > bounds["high"]:
        raise ConfigError(where, "has 'from' above 'to'; no value could match.")
    return bounds


def parsed_fallbacks(raw_defaults: Any, raw_rules: Any, fixed_company: str | None) -> Fallbacks:
    defaults, companies = parsed_defaults(raw_defaults, fixed_company)
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        raise ConfigError("mapping_rules", "must be a list of rules.")
    rules = tuple(parsed_rule(i, rule, fixed_company) for i, rule in enumerate(raw_rules))
    return Fallbacks(defaults, companies, rules)


def referenced_ids(fallbacks: Fallbacks, company_id: str) -> list[tuple[str, str, str]]:
    """(part, id, where it is set) for every id that company's records may be given."""
    sources = [("defaults", fallbacks.defaults)]
    sources.append((f"defaults.companies.{company_id}", fallbacks.companies.get(company_id, {})))
    sources += [
        (f"mapping_rules[{r.index}].set", r.parts)
        for r in fallbacks.rules
        if r.company_id in (None, company_id)
    ]
    found = []
    for where, parts in sources:
        for part in REFERENCE_PARTS:
            ids = parts.get(part)
            for ident in ids if isinstance(ids, list) else [ids] if ids else []:
                found.append((part, ident, f"{where}.{part}"))
    return found
