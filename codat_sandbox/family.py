"""The rest of the Sync for Expenses family: expense updates, transfers, reimbursable expenses
(bills against an employee) and adjustments (journal entries), as a platform judges them.

Every push becomes a `Pending` item of a sync. When the sync settles, `judge_item` looks at the
company's books as they are then (earlier syncs have settled, in order), so an update queued
behind its create finds the transaction written. An update changes the existing book entry and
adds a version; it never writes a second record. A repeat whose content equals what the books
hold already is "Nothing written": this is how a PUT sent twice (a retry after a lost answer) stays
harmless, and why a create-only platform (Xero's transfers) refuses a changed transfer but not a
repeated one. Codat does not document a repeated PUT; this is the sandbox's reading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from codat_sandbox.engine import (
    KNOWN_CURRENCIES,
    MINOR_UNITS,
    Outcome,
    Refusal,
    check_line,
    check_tracking,
    decimal_places,
    judge,
    parse_date,
    refuse,
)
from codat_sandbox.ledger import Account, Company
from codat_sandbox.platforms import UPDATE_EXPENSE, UPDATE_REIMBURSABLE, UPDATE_TRANSFER
from codat_sandbox.schemas import (
    Adjustment,
    ExpenseTransaction,
    ExpenseUpdate,
    ReimbursableUpdate,
    Transfer,
    TransferLeg,
)

EXPENSE, TRANSFER, REIMBURSABLE, ADJUSTMENT = "expense", "transfer", "reimbursable", "adjustment"
LABEL = {
    EXPENSE: "expense transaction",
    TRANSFER: "transfer",
    REIMBURSABLE: "reimbursable expense",
    ADJUSTMENT: "adjustment",
}
BOOK_TYPE = {TRANSFER: "Transfer", REIMBURSABLE: "Reimbursable", ADJUSTMENT: "Adjustment"}
DATA_TYPE = {TRANSFER: "transfers", REIMBURSABLE: "bills", ADJUSTMENT: "journalEntries"}
UPDATE_OPERATION = {
    EXPENSE: UPDATE_EXPENSE,
    TRANSFER: UPDATE_TRANSFER,
    REIMBURSABLE: UPDATE_REIMBURSABLE,
}
# what an update may say: an expense's create body is compared on these fields only
UPDATABLE = {
    EXPENSE: set(ExpenseUpdate.model_fields),
    REIMBURSABLE: set(ReimbursableUpdate.model_fields),
}


@dataclass
class Pending:
    """One item of a sync. mode: create (POST; a completed id is "previously processed"),
    update (PUT to an existing id) or upsert (a transfer's PUT: creates, or updates)."""

    id: str
    kind: str
    body: BaseModel
    mode: str = "create"

    @property
    def fingerprint(self) -> str:
        fields = UPDATABLE.get(self.kind)
        data = self.body.model_dump(include=fields, exclude_none=True, by_alias=True)
        data.pop("id", None)
        return json.dumps(data, sort_keys=True, default=plain_decimal)

    def content(self) -> dict[str, Any]:
        """The body as the books show it: JSON, money as decimal strings."""
        return self.body.model_dump(mode="json", exclude_none=True, by_alias=True)


def plain_decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    raise TypeError(f"{type(value).__name__} is not JSON")


def judge_item(company: Company, existing, item: Pending) -> Outcome:
    """What the platform does with one item, given the book entry its id has (or None)."""
    try:
        check_target(company, existing, item)
        if existing is not None and existing.fingerprint == item.fingerprint:
            return Outcome(
                "Completed",
                f"Nothing written: {existing.record_id} already holds this content "
                f"(version {existing.version}).",
                existing.data_type,
            )
        if existing is not None:
            check_update(company, existing, item)
        outcome = JUDGES[item.kind](company, item)
    except Refusal as refusal:
        return Outcome(refusal.status, refusal.message)
    if existing is not None and outcome.status == "Completed":
        outcome.data_type, outcome.written = existing.data_type, True  # even to a zero total
    return outcome


def check_target(company: Company, existing, item: Pending) -> None:
    label = LABEL[item.kind]
    if existing is None:
        if item.mode == "update":
            refuse(f"The {label} {item.id} is not in {company.platform.name}'s books to update.")
        return
    if existing.kind != item.kind:
        refuse(f"Transaction {item.id} is a {LABEL[existing.kind]} in the books, not a {label}.")


def check_update(company: Company, existing, item: Pending) -> None:
    platform = company.platform
    if not platform.supports(UPDATE_OPERATION[item.kind]):
        refuse(f"{platform.name} does not support updating {label_plural(item.kind)}.")
    if item.kind == EXPENSE:
        check_expense_update(company, existing, item.body)


def label_plural(kind: str) -> str:
    return LABEL[kind] + "s"


def check_expense_update(company: Company, existing, body: ExpenseUpdate) -> None:
    if existing.type != "Payment" or body.type != "Payment":
        refuse(
            f"Only Payment transactions can be updated; the books hold a {existing.type} "
            f"and the update is a {body.type}."
        )
    if company.platform.key == "fbrh":
        before = (existing.content().get("bankAccountRef") or {}).get("id")
        after = body.bankAccountRef.id if body.bankAccountRef else None
        if before != after:
            refuse("FreeAgent does not allow changing an expense's bank account.")


# -- one judge per kind ---------------------------------------------------------------------------
def judge_expense(company: Company, item: Pending) -> Outcome:
    body = item.body
    if isinstance(body, ExpenseUpdate):
        fields = {name: getattr(body, name) for name in ExpenseUpdate.model_fields}
        body = ExpenseTransaction.model_construct(id=item.id, **fields)
    return judge(company, body)


def judge_transfer(company: Company, item: Pending) -> Outcome:
    transfer: Transfer = item.body
    when = checked_date(transfer.date, "date")
    source = leg_account(company, "from", transfer.from_)
    target = leg_account(company, "to", transfer.to)
    if source.id == target.id:
        refuse(f"A transfer needs two different accounts; both sides are '{source.id}'.")
    if not (source.is_bank_account or target.is_bank_account):
        refuse("A transfer must move money from or to a bank account; neither side is one.")
    currency = source.currency or company.base_currency
    same_currency = currency == (target.currency or company.base_currency)
    if same_currency and transfer.from_.amount != transfer.to.amount:
        refuse(
            f"Both accounts are in {currency}, so from.amount {transfer.from_.amount} "
            f"must equal to.amount {transfer.to.amount}."
        )
    check_open_period(company, when)
    return Outcome("Completed", "", DATA_TYPE[TRANSFER], written=True)


def leg_account(company: Company, side: str, leg: TransferLeg) -> Account:
    account = company.accounts.get(leg.accountRef.id)
    if account is None:
        refuse(f"{side}.accountRef: account '{leg.accountRef.id}' was not found.")
    if "transfer-transactions" not in account.valid_for:
        refuse(f"{side}.accountRef: account '{account.id} {account.name}' cannot take transfers.")
    if leg.amount <= 0:
        refuse(f"{side}.amount must be greater than zero, got {leg.amount}.")
    currency = account.currency or company.base_currency
    places = MINOR_UNITS.get(currency, 2)
    if decimal_places(leg.amount) > places:
        refuse(
            f"{side}.amount {leg.amount} has more decimal places than {currency} "
            f"(the account's currency) allows ({places})."
        )
    return account


def judge_reimbursable(company: Company, item: Pending) -> Outcome:
    bill: ReimbursableUpdate = item.body
    issued = checked_date(bill.issueDate, "issueDate")
    checked_date(bill.dueDate, "dueDate")
    check_currency(company, bill.currency, bill.currencyRate)
    if bill.contactRef.id not in company.suppliers:
        refuse(f"Employee '{bill.contactRef.id}' was not found as a supplier.")
    check_ap_account(company, bill)
    if not bill.lines:
        refuse("The reimbursable expense has no lines; at least one line is required.")
    as_expense = ExpenseTransaction.model_construct(type="Payment", currency=bill.currency)
    for number, line in enumerate(bill.lines, start=1):
        check_line(company, as_expense, number, line)
    total = sum((line.netAmount + (line.taxAmount or 0) for line in bill.lines), Decimal(0))
    check_open_period(company, issued)
    if total < 0:
        refuse("The bill's total is negative; an employee claim cannot be a credit.", "PushError")
    if total == 0:
        return Outcome("Completed", "Nothing written: the bill's total is zero.")
    return Outcome("Completed", "", DATA_TYPE[REIMBURSABLE], written=True)


def check_ap_account(company: Company, bill: ReimbursableUpdate) -> None:
    ref = bill.apAccountRef
    if ref is None or ref.id is None:
        return
    if not company.platform.supports_ap_account_ref:
        refuse(
            f"apAccountRef is only supported by QuickBooks Desktop, not {company.platform.name}."
        )
    account = company.accounts.get(ref.id)
    if account is None or account.account_type != "Liability" or account.is_bank_account:
        refuse(f"apAccountRef: '{ref.id}' is not an accounts payable (liability) account.")


def judge_adjustment(company: Company, item: Pending) -> Outcome:
    adjustment: Adjustment = item.body
    when = checked_date(adjustment.date, "date")
    check_currency(company, adjustment.currency, adjustment.currencyRate)
    places = MINOR_UNITS.get(adjustment.currency, 2)
    for number, line in enumerate(adjustment.lines, start=1):
        check_adjustment_line(company, number, line, places)
    balance = sum((line.amount for line in adjustment.lines), Decimal(0))
    if balance != 0:
        refuse(
            f"The lines do not balance: debits minus credits is {balance}; the amounts of a "
            "journal's lines must sum to zero."
        )
    check_open_period(company, when)
    if all(line.amount == 0 for line in adjustment.lines):
        return Outcome("Completed", "Nothing written: every line is zero.")
    return Outcome("Completed", "", DATA_TYPE[ADJUSTMENT], written=True)


def check_adjustment_line(company: Company, number: int, line, places: int) -> None:
    if not line.accountRef.id or line.accountRef.id not in company.accounts:
        refuse(f"Line {number}: account '{line.accountRef.id}' was not found.")
    if decimal_places(line.amount) > places:
        refuse(f"Line {number}: amount {line.amount} has more decimal places than allowed.")
    for ref in line.trackingRefs or []:
        if ref.dataType == "suppliers":
            if ref.id not in company.suppliers:
                refuse(f"Line {number}: supplier '{ref.id}' in trackingRefs was not found.")
        else:
            check_tracking(company, number, ref.id, ref.dataType)
    if line.invoiceTo is not None and line.invoiceTo.id not in company.customers:
        refuse(f"Line {number}: customer '{line.invoiceTo.id}' was not found.")


JUDGES = {
    EXPENSE: judge_expense,
    TRANSFER: judge_transfer,
    REIMBURSABLE: judge_reimbursable,
    ADJUSTMENT: judge_adjustment,
}


# -- shared checks -------------------------------------------------------------------------------
def checked_date(text: str, field: str):
    when = parse_date(text)
    if when is None:
        refuse(f"{field} '{text}' is not an ISO 8601 date.")
    return when


def check_currency(company: Company, currency: str, rate: Decimal | None) -> None:
    if currency not in KNOWN_CURRENCIES:
        refuse(f"Currency '{currency}' is not a supported ISO 4217 currency code.")
    if currency != company.base_currency and rate is None:
        refuse(
            f"The transaction is in {currency} but the company's base currency is "
            f"{company.base_currency}; a currencyRate is required for foreign currency."
        )
    if rate is not None and rate <= 0:
        refuse(f"currencyRate must be greater than zero, got {rate}.")


def check_open_period(company: Company, when) -> None:
    if company.closed_until and when <= company.closed_until:
        refuse(
            f"The date {when} is in a closed period: {company.platform.name} is locked for "
            f"entries on or before {company.closed_until}.",
            "PushError",
        )


def book_total(item: Pending) -> Decimal:
    """The amount the books show: an expense's or bill's line total, a transfer's `from`
    amount, a journal's debits."""
    body = item.body
    if item.kind == TRANSFER:
        return body.from_.amount
    if item.kind == ADJUSTMENT:
        return sum((line.amount for line in body.lines if line.amount > 0), Decimal(0))
    return sum(((line.netAmount + (line.taxAmount or 0)) for line in body.lines or []), Decimal(0))


def book_facts(company: Company, item: Pending) -> tuple[str, str, str]:
    """(type, date, currency) of a book entry."""
    body = item.body
    if item.kind == EXPENSE:
        return body.type, body.issueDate, body.currency
    if item.kind == TRANSFER:
        account = company.accounts[body.from_.accountRef.id]
        return BOOK_TYPE[TRANSFER], body.date, account.currency or company.base_currency
    if item.kind == REIMBURSABLE:
        return BOOK_TYPE[REIMBURSABLE], body.issueDate, body.currency
    return BOOK_TYPE[ADJUSTMENT], body.date, body.currency
