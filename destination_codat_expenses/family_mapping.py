"""Record -> Codat transfer, reimbursable expense or adjustment. Pure: no I/O, no logging.

The rest of the Sync for Expenses family, one record shape each: the record is already in
Codat's request shape (camelCase, as the current OpenAPI spec writes it) plus an `id` that is the
source's stable key. Every field is read strictly (money as `Decimal`, floats refused), and a bad
value raises `RecordError(record key, field, reason)`: nothing is pushed for that record.

    map_transfer(record, stream, dates)      -> MappedPush  (PUT .../transfer-transactions/{id})
    map_reimbursable(record, stream, dates)  -> MappedPush  (POST, or PUT with `update_body`)
    map_adjustment(record, stream, dates)    -> MappedPush  (POST .../adjustment-transactions)

Ids are canonical UUIDs exactly as for expenses (`mapping.transaction_id_for`), so one source key
is one Codat transaction id across runs. `payload_hash` is the hash of what goes on the wire: a
record re-delivered with the same hash is a repeat, with another hash it is a change (an update
where Codat allows one).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal

from destination_codat_expenses import jsonwire, values
from destination_codat_expenses.errors import RecordError
from destination_codat_expenses.mapping import UNFORESEEN, transaction_id_for
from destination_codat_expenses.values import FieldProblem

TRANSFER, REIMBURSABLE, ADJUSTMENT = "transfer", "reimbursable", "adjustment"
MAX_ITEMS_LINES, MAX_TRACKING = 100, 10
LINE_TRACKING = ("trackingCategories", "customers")
ADJUSTMENT_TRACKING = ("trackingCategories", "customers", "suppliers")


@dataclass(frozen=True)
class DateRules:
    """How dates are read: naive date-times in `zone`; none further ahead than allowed."""

    zone: tzinfo = UTC
    max_days_ahead: int = 365
    today: date = field(default_factory=lambda: datetime.now(UTC).date())


@dataclass(frozen=True)
class MappedPush:
    kind: str  # transfer | reimbursable | adjustment
    transaction_id: str
    source_key: str
    body: dict  # the create body: a transfer's has no id (it is in the PUT path)
    day: date
    currency: str | None  # None for a transfer: each side is in its account's currency
    total: Decimal  # a transfer's from.amount, a bill's line total, a journal's debits
    payload_hash: str

    @property
    def update_body(self) -> dict:
        """The body of an update (PUT): the create body without its id."""
        return {k: v for k, v in self.body.items() if k != "id"}


def map_transfer(record: dict, stream: str, dates: DateRules) -> MappedPush:
    return guarded(TransferReader, record, stream, dates)


def map_reimbursable(record: dict, stream: str, dates: DateRules) -> MappedPush:
    return guarded(ReimbursableReader, record, stream, dates)


def map_adjustment(record: dict, stream: str, dates: DateRules) -> MappedPush:
    return guarded(AdjustmentReader, record, stream, dates)


def guarded(reader, record: dict, stream: str, dates: DateRules) -> MappedPush:
    """A value no parser foresaw is that record's reject too, never the end of the run."""
    key = f"in {stream} with an unreadable id"
    try:
        if not isinstance(record, dict):
            raise RecordError(key, "(record)", "must be an object")
        mapper = reader(record, stream, dates)
        key = mapper.key
        return mapper.mapped()
    except UNFORESEEN as error:
        raise RecordError(key, "(record)", f"could not be read ({type(error).__name__})") from None


class Reader:
    """Field-by-field reading of one record; `where` is the field path of the object read."""

    kind = ""

    def __init__(self, record: dict, stream: str, dates: DateRules) -> None:
        self.record, self.stream, self.dates = record, stream, dates
        self.key = self.source_key()
        self.transaction_id = transaction_id_for(stream, self.key)

    def source_key(self) -> str:
        raw = self.record.get("id")
        if isinstance(raw, bool) or not isinstance(raw, str | int | None):
            raise RecordError(f"in {self.stream} without an id", "id", "must be text or an integer")
        key = "" if raw is None else str(raw).strip()
        if not key or values.SURROGATE.search(key):
            raise RecordError(
                f"in {self.stream} without an id", "id", "is missing, empty or unreadable"
            )
        return key

    def value(self, source: dict, where: str, name: str, parse, *args, required=False):
        raw = source.get(name)
        path = f"{where}.{name}" if where else name
        if raw is None or raw == "":
            if required:
                raise RecordError(self.key, path, "is required")
            return None
        try:
            return parse(raw, *args)
        except FieldProblem as problem:
            raise RecordError(self.key, path, str(problem)) from None

    def day(self, source: dict, name: str, required: bool = True) -> date | None:
        d = self.dates
        return self.value(
            source,
            "",
            name,
            values.issue_date,
            d.zone,
            d.today,
            d.max_days_ahead,
            required=required,
        )

    def obj(self, source: dict, where: str, name: str, required: bool = False) -> dict | None:
        holder = source.get(name)
        path = f"{where}.{name}" if where else name
        if holder is None:
            if required:
                raise RecordError(self.key, path, "is required")
            return None
        if not isinstance(holder, dict):
            raise RecordError(self.key, path, "must be an object")
        return holder

    def ref(self, source: dict, where: str, name: str, required: bool = False) -> dict | None:
        holder = self.obj(source, where, name, required)
        if holder is None:
            return None
        path = f"{where}.{name}" if where else name
        return {"id": self.value(holder, path, "id", values.reference_id, required=True)}

    def lines(self, source: dict) -> list[dict]:
        raw = source.get("lines")
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_ITEMS_LINES:
            raise RecordError(self.key, "lines", f"must be a list of 1 to {MAX_ITEMS_LINES} lines")
        for index, line in enumerate(raw):
            if not isinstance(line, dict):
                raise RecordError(self.key, f"lines[{index}]", "must be an object")
        return raw

    def tracking(self, line: dict, where: str, allowed: tuple[str, ...]) -> list[dict] | None:
        raw = line.get("trackingRefs")
        path = f"{where}.trackingRefs"
        if raw is None:
            return None
        if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TRACKING:
            raise RecordError(self.key, path, f"must be a list of 1 to {MAX_TRACKING} references")
        refs = []
        for index, item in enumerate(raw):
            data_type = (
                item.get("dataType", "trackingCategories") if isinstance(item, dict) else None
            )
            if data_type not in allowed:
                raise RecordError(
                    self.key,
                    f"{path}[{index}]",
                    f"needs an id and a dataType of {' or '.join(allowed)}",
                )
            ident = self.value(item, f"{path}[{index}]", "id", values.reference_id, required=True)
            refs.append({"id": ident, "dataType": data_type})
        return refs

    def invoice_to(self, line: dict, where: str) -> dict | None:
        holder = self.obj(line, where, "invoiceTo")
        if holder is None:
            return None
        ident = self.value(holder, f"{where}.invoiceTo", "id", values.reference_id, required=True)
        return {"id": ident, "type": "customer"}

    def finish(self, body: dict, day: date, currency: str | None, total: Decimal) -> MappedPush:
        body = without_none(body)
        digest = hashlib.sha256(jsonwire.dumps(body).encode()).hexdigest()
        return MappedPush(
            self.kind, self.transaction_id, self.key, body, day, currency, total, digest
        )


class TransferReader(Reader):
    kind = TRANSFER

    def mapped(self) -> MappedPush:
        day = self.day(self.record, "date")
        source, target = self.leg("from"), self.leg("to")
        if source["accountRef"]["id"] == target["accountRef"]["id"]:
            raise RecordError(self.key, "to.accountRef.id", "is the same account as from")
        body = {
            "description": self.value(self.record, "", "description", values.text, 2000),
            "date": day.isoformat(),
            "from": source,
            "to": target,
        }
        return self.finish(body, day, None, source["amount"])

    def leg(self, side: str) -> dict:
        holder = self.obj(self.record, "", side, required=True)
        amount = self.value(holder, side, "amount", values.amount, required=True)
        if amount <= 0:
            raise RecordError(self.key, f"{side}.amount", "must be greater than zero")
        return {"accountRef": self.ref(holder, side, "accountRef", required=True), "amount": amount}


class ReimbursableReader(Reader):
    kind = REIMBURSABLE

    def mapped(self) -> MappedPush:
        record = self.record
        code = self.value(record, "", "currency", values.currency, required=True)
        day = self.day(record, "issueDate")
        lines = [self.line(i, line, code) for i, line in enumerate(self.lines(record))]
        body = {
            "id": self.transaction_id,
            "reference": self.value(record, "", "reference", values.text, 255),
            "contactRef": self.ref(record, "", "contactRef", required=True),
            "apAccountRef": self.ref(record, "", "apAccountRef"),
            "issueDate": day.isoformat(),
            "dueDate": self.day(record, "dueDate").isoformat(),
            "currency": code,
            "currencyRate": self.value(record, "", "currencyRate", values.rate),
            "notes": self.value(record, "", "notes", values.text, 2000),
            "lines": lines,
        }
        total = sum((ln["netAmount"] + ln.get("taxAmount", 0) for ln in lines), Decimal(0))
        return self.finish(body, day, code, total)

    def line(self, index: int, line: dict, code: str) -> dict:
        where = f"lines[{index}]"
        account, item = self.ref(line, where, "accountRef"), self.ref(line, where, "itemRef")
        if account and item:
            raise RecordError(self.key, where, "has both accountRef and itemRef; give one")
        return without_none(
            {
                "description": self.value(line, where, "description", values.text, 2000),
                "netAmount": self.value(
                    line, where, "netAmount", values.amount, code, required=True
                ),
                "taxAmount": self.value(line, where, "taxAmount", values.amount, code),
                "taxRateRef": self.ref(line, where, "taxRateRef"),
                "accountRef": account,
                "itemRef": item,
                "trackingRefs": self.tracking(line, where, LINE_TRACKING),
                "invoiceTo": self.invoice_to(line, where),
            }
        )


class AdjustmentReader(Reader):
    kind = ADJUSTMENT

    def mapped(self) -> MappedPush:
        record = self.record
        code = self.value(record, "", "currency", values.currency, required=True)
        day = self.day(record, "date")
        lines = [self.line(i, line, code) for i, line in enumerate(self.lines(record))]
        balance = sum((line["amount"] for line in lines), Decimal(0))
        if balance != 0:
            raise RecordError(
                self.key, "lines", f"do not balance: debits minus credits is {balance}, not 0"
            )
        body = {
            "id": self.transaction_id,
            "date": day.isoformat(),
            "currency": code,
            "currencyRate": self.value(record, "", "currencyRate", values.rate),
            "reference": self.value(record, "", "reference", values.text, 255),
            "lines": lines,
        }
        debits = sum((line["amount"] for line in lines if line["amount"] > 0), Decimal(0))
        return self.finish(body, day, code, debits)

    def line(self, index: int, line: dict, code: str) -> dict:
        where = f"lines[{index}]"
        return without_none(
            {
                "amount": self.value(line, where, "amount", values.amount, code, required=True),
                "accountRef": self.ref(line, where, "accountRef", required=True),
                "description": self.value(line, where, "description", values.text, 2000),
                "trackingRefs": self.tracking(line, where, ADJUSTMENT_TRACKING),
                "invoiceTo": self.invoice_to(line, where),
            }
        )


def without_none(body: dict) -> dict:
    return {k: v for k, v in body.items() if v is not None}
