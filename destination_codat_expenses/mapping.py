"""Record -> Codat expense transaction. Pure: no I/O, no logging of record contents.

Two record shapes:
- `flat` card-spend rows (one line each), read through a configurable `FieldNames` mapping;
- `codat` records already in Codat's `ExpenseTransaction` shape, validated field by field.
Either way the result is a `MappedTransaction` whose body goes on the wire as it is, money in
`Decimal`. A bad value raises `RecordError(record key, field, reason)` and nothing is pushed.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any, NoReturn

from destination_codat_expenses import jsonwire, values
from destination_codat_expenses.errors import RecordError
from destination_codat_expenses.receipts import Receipt, receipt_of
from destination_codat_expenses.rules import (
    MAX_TRACKING,
    PART_PARSERS,
    Fallbacks,
    tracking_ids,
    transaction_type,
)
from destination_codat_expenses.values import FieldProblem

ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/destination-codat-expenses")
MAX_LINES = 100
# what an odd value can make Python raise (huge numbers, deep nesting, wrong types)
UNFORESEEN = (ArithmeticError, ValueError, TypeError, LookupError, AttributeError, RecursionError)


@dataclass(frozen=True)
class FieldNames:
    """Which record field holds each part of a flat card-spend row."""

    id: str = "id"
    type: str = "type"
    date: str = "date"
    amount: str = "amount"
    tax: str = "tax_amount"
    currency: str = "currency"
    rate: str = "currency_rate"
    merchant: str = "merchant"
    account: str = "account_id"
    tax_rate: str = "tax_rate_id"
    tracking: str = "tracking_ids"
    bank_account: str = "bank_account_id"
    contact: str = "supplier_id"
    notes: str = "notes"
    reference: str = "reference"
    receipt: str = "receipt"


@dataclass(frozen=True)
class MappingSettings:
    shape: str = "flat"  # flat | codat
    fields: FieldNames = field(default_factory=FieldNames)
    amount_includes_tax: bool = True
    zone: tzinfo = UTC
    max_days_ahead: int = 365
    today: date = field(default_factory=lambda: datetime.now(UTC).date())
    fallbacks: Fallbacks = field(default_factory=Fallbacks)  # defaults and mapping rules
    company_id: str | None = None  # which company's defaults apply: the fixed one,
    company_id_field: str | None = None  # or the one a record names


@dataclass(frozen=True)
class MappedTransaction:
    transaction_id: str
    source_key: str
    body: dict
    issue_date: date
    currency: str
    total: Decimal
    payload_hash: str
    receipt: Receipt | None = None


def transaction_id_for(stream: str, source_key: str) -> str:
    """A UUID source id is used as it is; anything else maps to a stable UUIDv5."""
    return values.canonical_uuid(source_key) or str(
        uuid.uuid5(ID_NAMESPACE, f"{stream}\x1f{source_key}")
    )


def map_record(record: dict, stream: str, settings: MappingSettings) -> MappedTransaction:
    """The mapped record, or RecordError. A value no parser foresaw is that record's reject too:
    records come from third parties, and one odd value must not end the run."""
    reader = FlatReader if settings.shape == "flat" else CodatReader
    key = f"in {stream} with an unreadable id"
    try:
        mapper = reader(record, stream, settings)
        key = mapper.key
        return mapper.mapped()
    except UNFORESEEN as error:
        raise RecordError(key, "(record)", f"could not be read ({type(error).__name__})") from None


class Reader:
    """Shared field-by-field reading; subclasses say where each part lives."""

    def __init__(self, record: dict, stream: str, settings: MappingSettings) -> None:
        self.record, self.stream, self.settings = record, stream, settings
        self.key = self.source_key()

    def source_key(self) -> str:
        """The record's id as text: 424242 and "424242" are one id (docs/destination.md)."""
        raw = self.record.get(self.id_field)
        if isinstance(raw, bool) or not isinstance(raw, str | int | None):
            self.no_id("must be text or an integer; every record needs a stable id")
        key = "" if raw is None else str(raw).strip()
        if not key:
            self.no_id("is missing or empty; every record needs a stable id")
        if values.SURROGATE.search(key):  # not text that a store or a log can hold
            raise RecordError(
                f"in {self.stream} with an unreadable id",
                self.id_field,
                "contains an invalid (lone surrogate) character",
            )
        return key

    def no_id(self, reason: str) -> NoReturn:
        raise RecordError(f"in {self.stream} without an id", self.id_field, reason)

    def value(self, name: str, parse, *args, required: bool = False, source=None):
        source = self.record if source is None else source
        raw = source.get(name)
        if raw is None or raw == "":
            if required:
                raise RecordError(self.key, name, "is required")
            return None
        try:
            return parse(raw, *args)
        except FieldProblem as problem:
            part = getattr(problem, "part", None)  # a receipt's fileName, path or content
            raise RecordError(self.key, f"{name}.{part}" if part else name, str(problem)) from None

    def finish(self, body: dict, day: date, code: str, receipt: Receipt | None):
        body = {k: v for k, v in body.items() if v is not None}
        total = sum(
            (line["netAmount"] + line.get("taxAmount", 0) for line in body["lines"]), Decimal(0)
        )
        digest = hashlib.sha256(jsonwire.dumps(body).encode()).hexdigest()
        return MappedTransaction(body["id"], self.key, body, day, code, total, digest, receipt)


class FlatReader(Reader):
    @property
    def id_field(self) -> str:
        return self.settings.fields.id

    def mapped(self) -> MappedTransaction:
        self.fallback = self.settings.fallbacks.parts_for(self.record, self.company())
        code = self.part("currency", values.currency, required=True)
        day = self.part(
            "date",
            values.issue_date,
            self.settings.zone,
            self.settings.today,
            self.settings.max_days_ahead,
            required=True,
        )
        body = {
            "id": transaction_id_for(self.stream, self.key),
            "type": self.part("type", transaction_type) or "Payment",
            "issueDate": day.isoformat(),
            "currency": code,
            "currencyRate": self.part("rate", values.rate),
            "merchantName": self.part("merchant", values.text, 255),
            "reference": self.part("reference", values.text, 255),
            "notes": self.part("notes", values.text, 2000),
            "bankAccountRef": ref(self.part("bank_account", values.reference_id)),
            "contactRef": contact(self.part("contact", values.reference_id)),
            "lines": [self.line(code)],
        }
        return self.finish(body, day, code, self.value(receipt_field(self.settings), receipt_of))

    def company(self) -> str | None:
        """The company whose defaults apply (None when the record names none readable: it is
        then rejected by routing, and only global defaults are tried meanwhile)."""
        if self.settings.company_id or not self.settings.company_id_field:
            return self.settings.company_id
        raw = self.record.get(self.settings.company_id_field)
        return values.canonical_uuid(str(raw)) if isinstance(raw, str | int) else None

    def part(self, name: str, parse, *args, required: bool = False):
        """A part from the record's own field; when the record has none, from the first
        matching rule or a default (already checked when the settings were read)."""
        field_name = getattr(self.settings.fields, name)
        raw = self.record.get(field_name)
        if raw is None or raw == "":
            if name in self.fallback:
                return self.fallback[name]
            if required and name in PART_PARSERS:
                raise RecordError(
                    self.key,
                    field_name,
                    "is required (the record has none, and no default or mapping rule sets one)",
                )
        return self.value(field_name, parse, *args, required=required)

    def line(self, code: str) -> dict:
        gross = self.part("amount", values.amount, code, required=True)
        tax = self.part("tax", values.amount, code)
        net = gross - (tax or 0) if self.settings.amount_includes_tax else gross
        tracking = self.part("tracking", tracking_ids)
        return {
            k: v
            for k, v in {
                "netAmount": net,
                "taxAmount": tax,
                "accountRef": ref(self.part("account", values.reference_id)),
                "taxRateRef": ref(self.part("tax_rate", values.reference_id)),
                "trackingRefs": [{"id": t, "dataType": "trackingCategories"} for t in tracking]
                if tracking
                else None,
            }.items()
            if v is not None
        }


class CodatReader(Reader):
    id_field = "id"

    def mapped(self) -> MappedTransaction:
        code = self.value("currency", values.currency, required=True)
        day = self.value(
            "issueDate",
            values.issue_date,
            self.settings.zone,
            self.settings.today,
            self.settings.max_days_ahead,
            required=True,
        )
        lines = self.value("lines", list_of, 1, MAX_LINES, required=True)
        body = {
            "id": transaction_id_for(self.stream, self.key),
            "type": self.value("type", transaction_type, required=True),
            "issueDate": day.isoformat(),
            "currency": code,
            "currencyRate": self.value("currencyRate", values.rate),
            "merchantName": self.value("merchantName", values.text, 255),
            "reference": self.value("reference", values.text, 255),
            "notes": self.value("notes", values.text, 2000),
            "bankAccountRef": ref(self.nested_id("bankAccountRef")),
            "contactRef": contact(self.nested_id("contactRef")),
            "postAsDraft": self.record.get("postAsDraft")
            if isinstance(self.record.get("postAsDraft"), bool)
            else None,
            "lines": [self.line(i, line, code) for i, line in enumerate(lines)],
        }
        return self.finish(body, day, code, self.value(receipt_field(self.settings), receipt_of))

    def nested_id(self, name: str, source: dict | None = None, label: str | None = None):
        holder = (self.record if source is None else source).get(name)
        if holder is None:
            return None
        if not isinstance(holder, dict):
            raise RecordError(self.key, label or name, "must be an object with an 'id'")
        return self.value("id", values.reference_id, source=holder, required=True)

    def line(self, index: int, line: Any, code: str) -> dict:
        label = f"lines[{index}]"
        if not isinstance(line, dict):
            raise RecordError(self.key, label, "must be an object")
        net = self.value("netAmount", values.amount, code, source=line, required=True)
        tax = self.value("taxAmount", values.amount, code, source=line)
        tracking = line.get("trackingRefs")
        if tracking is not None and (
            not isinstance(tracking, list) or not 1 <= len(tracking) <= MAX_TRACKING
        ):
            raise RecordError(
                self.key,
                f"{label}.trackingRefs",
                f"must be a list of 1 to {MAX_TRACKING} references",
            )
        account, item = self.nested_id("accountRef", line), self.nested_id("itemRef", line)
        if account and item:
            raise RecordError(self.key, label, "has both accountRef and itemRef; give one")
        return {
            k: v
            for k, v in {
                "netAmount": net,
                "taxAmount": tax,
                "accountRef": ref(account),
                "itemRef": ref(item),
                "taxRateRef": ref(self.nested_id("taxRateRef", line)),
                "trackingRefs": [tracking_ref(self.key, label, t) for t in tracking]
                if tracking
                else None,
            }.items()
            if v is not None
        }


def tracking_ref(key: str, label: str, item: Any) -> dict:
    data_type = item.get("dataType", "trackingCategories") if isinstance(item, dict) else None
    if data_type not in ("trackingCategories", "customers"):
        raise RecordError(
            key,
            f"{label}.trackingRefs",
            "items need an 'id' and a dataType of trackingCategories or customers",
        )
    try:
        return {"id": values.reference_id(item.get("id")), "dataType": data_type}
    except FieldProblem as problem:
        raise RecordError(key, f"{label}.trackingRefs.id", str(problem)) from None


def list_of(value: Any, low: int, high: int) -> list:
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise FieldProblem(f"must be a list of {low} to {high} items")
    return value


def receipt_field(settings: MappingSettings) -> str:
    """The record field that holds the receipt (flat rows name it in the field mapping)."""
    return settings.fields.receipt if settings.shape == "flat" else "receipt"


def ref(ident: str | None) -> dict | None:
    return {"id": ident} if ident else None


def contact(ident: str | None) -> dict | None:
    return {"id": ident, "type": "Supplier"} if ident else None
