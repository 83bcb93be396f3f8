"""What a simulated accounting platform does with one sync.

A sync first passes company-level checks (each maps to one Codat sync status code), then every
transaction is checked against the company's books and either written (`Completed`, with the
record it produced) or refused (`ValidationError` before writing, `PushError` at write time),
with a message a support person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from codat_sandbox.ledger import Company
from codat_sandbox.schemas import ExpenseLine, ExpenseTransaction

# Codat's own table ("Monitor sync status"), kept here so the fake Codat depends on nothing of
# the product's; a unit test checks that the product's copy says the same
SYNC_STATUS_TEXT = {
    1000: "In progress",
    1010: "In progress (long running)",
    2000: "Success (Data written)",
    2040: "Success (No data written)",
    4000: "Configuration error",
    4040: "Company deleted/de-authorized",
    4220: "Company deleted/de-authorized",
    4260: "Accounting software billing expiry",
    5000: "Generic server error",
    5080: "Duplication protection",
    5120: "Data processing error",
    5130: "Data write error",
}
FORCEABLE_STATUSES = {4000, 4040, 4220, 4260, 5000, 5080, 5120, 5130}
MINOR_UNITS = {
    "JPY": 0,
    "KRW": 0,
    "ISK": 0,
    "CLP": 0,
    "VND": 0,
    "BHD": 3,
    "KWD": 3,
    "JOD": 3,
    "OMR": 3,
    "TND": 3,
}
KNOWN_CURRENCIES = {
    "GBP",
    "USD",
    "EUR",
    "CAD",
    "AUD",
    "NZD",
    "CHF",
    "SEK",
    "NOK",
    "DKK",
    "PLN",
    "CZK",
    "HUF",
    "JPY",
    "CNY",
    "HKD",
    "SGD",
    "INR",
    "ZAR",
    "MXN",
    "BRL",
    "AED",
    "KRW",
    "ISK",
    "CLP",
    "VND",
    "BHD",
    "KWD",
    "JOD",
    "OMR",
    "TND",
    "ILS",
    "TRY",
}


@dataclass
class Outcome:
    status: str  # Completed | ValidationError | PushError
    message: str
    data_type: str | None = None
    written: bool = False


class Refusal(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def company_failure(company: Company) -> tuple[int, str] | None:
    """The sync-level status a company's state forces, before any transaction is looked at."""
    if company.deleted:
        return 4220, f"Company {company.id} has been deleted."
    if company.connection_status != "Linked":
        return 4040, (
            f"The {company.platform.name} connection is {company.connection_status}; "
            "the customer must re-link it before expenses can sync."
        )
    if company.billing_expired:
        return 4260, f"The {company.platform.name} subscription for this company has expired."
    if company.config is None:
        return 4000, (
            "The company has no expense configuration: set a default bank account, "
            "supplier and customer (POST /sync/expenses/config)."
        )
    if company.forced_sync_status:
        code = company.forced_sync_status
        return code, f"Sandbox forced status {code}: {SYNC_STATUS_TEXT[code]}."
    return None


def judge(company: Company, txn: ExpenseTransaction) -> Outcome:
    """Check one transaction against the company's books and say what the platform does."""
    try:
        check_transaction(company, txn)
        for number, line in enumerate(txn.lines or [], start=1):
            check_line(company, txn, number, line)
        check_writable(company, txn)
    except Refusal as refusal:
        return Outcome(refusal.status, refusal.message)
    if transaction_total(txn) == 0:
        return Outcome("Completed", "Nothing written: the transaction's total is zero.")
    data_type = "directCosts" if txn.type == "Payment" else "directIncomes"
    return Outcome("Completed", "", data_type, written=True)


def check_transaction(company: Company, txn: ExpenseTransaction) -> None:
    platform = company.platform
    if txn.postAsDraft and not platform.supports_post_as_draft:
        refuse(
            f"postAsDraft is only supported by Dynamics 365 Business Central, not {platform.name}."
        )
    if parse_date(txn.issueDate) is None:
        refuse(f"issueDate '{txn.issueDate}' is not an ISO 8601 date.")
    if txn.currency not in KNOWN_CURRENCIES:
        refuse(f"Currency '{txn.currency}' is not a supported ISO 4217 currency code.")
    if txn.currency != company.base_currency and txn.currencyRate is None:
        refuse(
            f"The transaction is in {txn.currency} but the company's base currency is "
            f"{company.base_currency}; a currencyRate is required for foreign currency."
        )
    if txn.currencyRate is not None and txn.currencyRate <= 0:
        refuse(f"currencyRate must be greater than zero, got {txn.currencyRate}.")
    if not txn.lines:
        refuse("The transaction has no lines; at least one line is required.")
    check_bank_account(company, txn)
    check_supplier(company, txn)


def check_bank_account(company: Company, txn: ExpenseTransaction) -> None:
    bank_id = (txn.bankAccountRef.id if txn.bankAccountRef else None) or company.config[
        "bankAccount"
    ].get("id")
    account = company.accounts.get(bank_id or "")
    if account is None or not account.is_bank_account:
        refuse(f"Bank account '{bank_id}' was not found in {company.platform.name}.")
    bank_currency = account.currency or company.base_currency
    if bank_currency not in (txn.currency, company.base_currency):
        refuse(
            f"Bank account '{account.name}' is in {bank_currency} but the transaction is in "
            f"{txn.currency}."
        )


def check_supplier(company: Company, txn: ExpenseTransaction) -> None:
    supplier_id = (txn.contactRef.id if txn.contactRef else None) or company.config["supplier"].get(
        "id"
    )
    if supplier_id not in company.suppliers:
        refuse(f"Supplier '{supplier_id}' was not found in {company.platform.name}.")


def check_line(company: Company, txn: ExpenseTransaction, number: int, line: ExpenseLine) -> None:
    check_amount_precision(txn.currency, number, "netAmount", line.netAmount)
    if line.taxAmount is not None:
        check_amount_precision(txn.currency, number, "taxAmount", line.taxAmount)
    check_line_account(company, txn, number, line)
    check_line_tax(company, txn, number, line)
    for ref in line.trackingRefs or []:
        check_tracking(company, number, ref.id, ref.dataType)
    if line.invoiceTo is not None:
        if not company.platform.supports_invoice_to:
            refuse(
                f"Line {number}: invoiceTo (billable expenses) is only supported by QuickBooks "
                f"Online and QuickBooks Desktop, not {company.platform.name}."
            )
        if line.invoiceTo.id not in company.customers:
            refuse(f"Line {number}: customer '{line.invoiceTo.id}' was not found.")


def check_line_account(
    company: Company, txn: ExpenseTransaction, number: int, line: ExpenseLine
) -> None:
    platform = company.platform
    if line.itemRef is not None:
        if not platform.supports_item_ref:
            refuse(f"Line {number}: itemRef is only supported by QuickBooks Desktop.")
        if line.accountRef is not None:
            refuse(f"Line {number}: give either itemRef or accountRef, not both.")
        return
    if line.accountRef is None or not line.accountRef.id:
        if platform.requires_account_ref:
            refuse(f"Line {number}: accountRef is required for {platform.name}.")
        refuse(f"Line {number}: either itemRef or accountRef is required.")
    account = company.accounts.get(line.accountRef.id)
    if account is None:
        refuse(
            f"Line {number}: account '{line.accountRef.id}' was not found in the chart of accounts."
        )
    if txn.type not in account.valid_types:
        refuse(
            f"Line {number}: account '{account.id} {account.name}' cannot be used for "
            f"{txn.type} transactions."
        )


def check_line_tax(
    company: Company, txn: ExpenseTransaction, number: int, line: ExpenseLine
) -> None:
    if line.taxRateRef is None:
        return
    if not company.platform.supports_tax_rate_ref:
        refuse(f"Line {number}: {company.platform.name} does not accept taxRateRef; leave it out.")
    rate = company.tax_rates.get(line.taxRateRef.id or "")
    if rate is None:
        refuse(f"Line {number}: tax rate '{line.taxRateRef.id}' was not found.")
    if txn.type not in rate.valid_types:
        refuse(f"Line {number}: tax rate '{rate.name}' cannot be used for {txn.type} transactions.")


def check_tracking(company: Company, number: int, ref_id: str | None, data_type: str) -> None:
    if data_type == "customers":
        if ref_id not in company.customers:
            refuse(f"Line {number}: customer '{ref_id}' in trackingRefs was not found.")
        return
    category = company.tracking.get(ref_id or "")
    if category is None:
        refuse(f"Line {number}: tracking category '{ref_id}' was not found.")
    if category.has_children:
        refuse(
            f"Line {number}: tracking category '{category.name}' has sub-categories; "
            f"choose one of them."
        )


def check_amount_precision(currency: str, number: int, field: str, amount: Decimal) -> None:
    places = MINOR_UNITS.get(currency, 2)
    if decimal_places(amount) > places:
        refuse(
            f"Line {number}: {field} {amount} has more decimal places than {currency} allows "
            f"({places})."
        )


def decimal_places(amount: Decimal) -> int:
    """Places after the point, trailing zeros not counted; exact for any size (no quantize)."""
    _, digits, exponent = amount.as_tuple()
    significant = "".join(map(str, digits)).rstrip("0")
    if not isinstance(exponent, int) or not significant:
        return 0
    return max(0, -exponent - (len(digits) - len(significant)))


def check_writable(company: Company, txn: ExpenseTransaction) -> None:
    """Checks the platform makes only when it writes: these fail as PushError."""
    issued = parse_date(txn.issueDate)
    if company.closed_until and issued <= company.closed_until:
        refuse(
            f"The transaction date {issued} is in a closed period: {company.platform.name} "
            f"is locked for entries on or before {company.closed_until}.",
            "PushError",
        )
    if txn.type == "Payment" and transaction_total(txn) < 0:
        refuse("The payment total is negative; record money coming back as a Refund.", "PushError")


def transaction_total(txn: ExpenseTransaction) -> Decimal:
    return sum(((line.netAmount + (line.taxAmount or 0)) for line in txn.lines or []), Decimal(0))


def parse_date(text: str) -> date | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        return None


def refuse(message: str, status: str = "ValidationError") -> None:
    raise Refusal(status, message)
