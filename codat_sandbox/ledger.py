"""One simulated company: its accounting platform, chart of accounts, and state flags.

A scenario file lists companies; anything a company leaves out comes from `default_books`,
so `{"name": "Acme", "platform": "xero"}` is a whole, working company.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from codat_sandbox.platforms import Platform, find_platform

EXPENSE_TYPES = ["Payment", "Refund", "Chargeback"]
ALL_TYPES = ["Payment", "Refund", "Reward", "Chargeback"]
BALANCE_SHEET = ("Asset", "Liability", "Equity")

# Every key a scenario company may set (docs/sandbox.md lists each; unit_tests/test_docs.py checks)
COMPANY_SETTINGS = frozenset(
    {
        "id",
        "name",
        "platform",
        "baseCurrency",
        "accounts",
        "taxRates",
        "trackingCategories",
        "suppliers",
        "customers",
        "config",
        "closedUntil",
        "connectionStatus",
        "billingExpired",
        "deleted",
        "forcedSyncStatus",
        "syncSeconds",
        "description",
        "tags",
    }
)


@dataclass
class Account:
    id: str
    name: str
    account_type: str  # Asset | Liability | Income | Expense | Equity
    category: str
    valid_types: list[str]
    currency: str | None = None  # None: the company's base currency
    is_bank_account: bool = False

    @property
    def valid_for(self) -> list[str]:
        """mappingOptions' `validFor`: which pushes may name this account. Transfers move money
        between bank or balance-sheet accounts; a reimbursable's lines are expenses; a journal
        (adjustment) may post to any account."""
        found = [f"expense-transactions.{t}" for t in self.valid_types]
        if "Payment" in self.valid_types and not self.is_bank_account:
            found.append("reimbursable-expense-transactions")
        if self.is_bank_account or self.account_type in BALANCE_SHEET:
            found.append("transfer-transactions")
        found.append("adjustment-transactions")
        return found


@dataclass
class TaxRate:
    id: str
    name: str
    rate: str  # percentage as a decimal string, e.g. "20"
    valid_types: list[str] = field(default_factory=lambda: list(ALL_TYPES))


@dataclass
class TrackingCategory:
    id: str
    name: str
    parent_id: str | None = None
    has_children: bool = False


@dataclass
class Company:
    id: str
    name: str
    platform: Platform
    base_currency: str
    accounts: dict[str, Account]
    tax_rates: dict[str, TaxRate]
    tracking: dict[str, TrackingCategory]
    suppliers: dict[str, str]  # id -> currency
    customers: dict[str, str]
    config: dict[str, Any] | None  # CompanyConfiguration, None until set
    closed_until: date | None = None
    connection_status: str = "Linked"  # Linked | Unlinked | Deauthorized | PendingAuth
    billing_expired: bool = False
    deleted: bool = False
    forced_sync_status: int | None = None
    sync_seconds: float = 0.2
    description: str = ""
    created: str = "2024-01-01T00:00:00Z"
    connection_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    partner_connection_id: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def default_accounts(platform: Platform, base: str) -> dict[str, Account]:
    accounts = [
        Account("401", "Travel", "Expense", "Expense.Travel", EXPENSE_TYPES),
        Account(
            "402", "Meals and entertainment", "Expense", "Expense.Entertainment", EXPENSE_TYPES
        ),
        Account("403", "Office supplies", "Expense", "Expense.OfficeSupplies", EXPENSE_TYPES),
        Account("404", "Software subscriptions", "Expense", "Expense.Software", EXPENSE_TYPES),
        Account("260", "Card rewards and cashback", "Income", "Income.OtherIncome", ["Reward"]),
        Account("800", "Owner's equity", "Equity", "Equity.OwnersEquity", []),
        Account(
            "090",
            f"Company card ({base})",
            "Liability",
            "Liability.CreditCard",
            ALL_TYPES,
            base,
            is_bank_account=True,
        ),
        Account(
            "091",
            "Company card (USD)" if base != "USD" else "Company card (EUR)",
            "Liability",
            "Liability.CreditCard",
            ALL_TYPES,
            "USD" if base != "USD" else "EUR",
            is_bank_account=True,
        ),
    ]
    return {a.id: a for a in accounts}


def default_tax_rates(platform: Platform) -> dict[str, TaxRate]:
    if not platform.supports_tax_rate_ref:
        return {}
    rates = [
        TaxRate("STD", "Standard rate", "20"),
        TaxRate("RED", "Reduced rate", "5"),
        TaxRate("ZERO", "Zero rated", "0"),
    ]
    if platform.no_tax_rate_id and platform.no_tax_rate_id != "ZERO":
        rates.append(TaxRate(platform.no_tax_rate_id, "No tax", "0"))
    return {t.id: t for t in rates}


def default_tracking() -> dict[str, TrackingCategory]:
    cats = [
        TrackingCategory("DEPARTMENTS", "Departments", has_children=True),
        TrackingCategory("DEPT-SALES", "Sales", "DEPARTMENTS"),
        TrackingCategory("DEPT-ENG", "Engineering", "DEPARTMENTS"),
    ]
    return {c.id: c for c in cats}


def company_from_spec(spec: dict[str, Any]) -> Company:
    """Build a company from one scenario entry; unknown keys are an error, not a silent no-op."""
    unknown = set(spec) - COMPANY_SETTINGS
    if unknown:
        known = sorted(COMPANY_SETTINGS)
        raise ValueError(f"Unknown company setting(s) {sorted(unknown)}; known: {known}.")
    platform = find_platform(spec.get("platform", "xero"))
    base = spec.get("baseCurrency", platform.default_currency)
    accounts = default_accounts(platform, base)
    accounts.update({a["id"]: account_from_spec(a) for a in spec.get("accounts", [])})
    taxes = default_tax_rates(platform)
    taxes.update({t["id"]: tax_rate_from_spec(t) for t in spec.get("taxRates", [])})
    tracking = default_tracking()
    tracking.update({t["id"]: tracking_from_spec(t) for t in spec.get("trackingCategories", [])})
    suppliers = {"SUP-CARD": base, **spec.get("suppliers", {})}
    customers = {"CUST-1": base, **spec.get("customers", {})}
    default_config = {
        "bankAccount": {"id": "090"},
        "supplier": {"id": "SUP-CARD"},
        "customer": {"id": "CUST-1"},
    }
    closed = spec.get("closedUntil")
    return Company(
        id=spec.get("id") or str(uuid.uuid4()),
        name=spec["name"],
        platform=platform,
        base_currency=base,
        accounts=accounts,
        tax_rates=taxes,
        tracking=tracking,
        suppliers=suppliers,
        customers=customers,
        config=spec.get("config", default_config),
        closed_until=as_date(closed),
        connection_status=spec.get("connectionStatus", "Linked"),
        billing_expired=spec.get("billingExpired", False),
        deleted=spec.get("deleted", False),
        forced_sync_status=spec.get("forcedSyncStatus"),
        sync_seconds=float(spec.get("syncSeconds", 0.2)),
        description=spec.get("description", ""),
        tags=spec.get("tags", {}),
    )


def account_from_spec(spec: dict[str, Any]) -> Account:
    return Account(
        id=spec["id"],
        name=spec["name"],
        account_type=spec.get("accountType", "Expense"),
        category=spec.get("category", "Expense.Other"),
        valid_types=spec.get("validTransactionTypes", EXPENSE_TYPES),
        currency=spec.get("currency"),
        is_bank_account=spec.get("isBankAccount", False),
    )


def tax_rate_from_spec(spec: dict[str, Any]) -> TaxRate:
    return TaxRate(
        id=spec["id"],
        name=spec["name"],
        rate=str(spec.get("rate", "0")),
        valid_types=spec.get("validTransactionTypes", list(ALL_TYPES)),
    )


def tracking_from_spec(spec: dict[str, Any]) -> TrackingCategory:
    return TrackingCategory(
        id=spec["id"],
        name=spec["name"],
        parent_id=spec.get("parentId"),
        has_children=spec.get("hasChildren", False),
    )


def as_date(value: Any) -> date | None:
    """A scenario date may be a YAML date or an ISO string; empty means none."""
    if not value:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))
