"""What `check` tries, in order, each failure a sentence a person can act on."""

from __future__ import annotations

import tempfile
from pathlib import Path

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.companies import learn_company
from destination_codat_expenses.config import Config
from destination_codat_expenses.errors import (
    CodatAPIError,
    CodatExpensesError,
    FatalAPIError,
    QuotaExhausted,
)
from destination_codat_expenses.redaction import is_postgres
from destination_codat_expenses.rules import Fallbacks, referenced_ids
from destination_codat_expenses.store.db import migrate


def connection_problem(settings: Config, client: CodatClient) -> str | None:
    """None when everything needed for a write works, else why not."""
    return codat_problem(settings, client) or store_problem(settings.status_store_path)


def codat_problem(settings: Config, client: CodatClient) -> str | None:
    try:
        client.list_companies(page_size=1)
        for company_id in companies_to_check(settings):
            problem = company_problem(client, company_id) or references_problem(
                client, settings.mapping.fallbacks, company_id
            )
            if problem:
                return problem
    except FatalAPIError as error:
        if error.status in (401, 403):
            return (
                f"Codat refused the API key ({error.status}). Copy a current key from the "
                "Codat Portal (Developers > API keys)."
            )
        return f"Codat answered {error.status}: {error.detail}"
    except QuotaExhausted as error:  # reached, but nothing more may be asked until the reset
        return str(error)
    except CodatAPIError as error:
        return (
            f"Codat could not be reached at {settings.base_url} ({error.detail or error}). "
            "Check the base URL and the network."
        )
    return None


def company_problem(client: CodatClient, company_id: str) -> str | None:
    info = learn_company(client, company_id)
    if not info.exists:
        return f"Company {company_id} does not exist in Codat; check the company id."
    if not info.linked:
        return (
            f"Company {company_id} has no linked accounting connection; ask the customer "
            "to link their accounting software."
        )
    if info.config is None:
        return (
            f"Company {company_id} has no expense configuration; set its default bank "
            "account, supplier and customer (POST /sync/expenses/config)."
        )
    return None


def companies_to_check(settings: Config) -> list[str]:
    """The fixed company; with routing by a field, every company the mapping settings name
    (the others are known only when their records arrive)."""
    if settings.company_id:
        return [settings.company_id]
    fallbacks = settings.mapping.fallbacks
    named = set(fallbacks.companies) | {r.company_id for r in fallbacks.rules if r.company_id}
    return sorted(named)


PART_NAMES = {
    "account": "account",
    "bank_account": "bank account",
    "tax_rate": "tax rate",
    "tracking": "tracking category",
    "contact": "supplier",
}


def references_problem(client: CodatClient, fallbacks: Fallbacks, company_id: str) -> str | None:
    """Every id the defaults and rules may give this company's records, looked up in its
    mappingOptions (suppliers in its supplier list); the missing ones named with where each
    is set."""
    wanted = referenced_ids(fallbacks, company_id)
    if not wanted:
        return None
    lookup = ReferenceLookup(client, company_id, client.get_mapping_options(company_id))
    missing: dict[tuple[str, str, str], list[str]] = {}
    for part, ident, where in wanted:
        why = lookup.problem(part, ident)
        if why is not None:
            missing.setdefault((part, ident, why), []).append(where)
    if not missing:
        return None
    named = "; ".join(
        f"{PART_NAMES[part]} '{ident}' ({', '.join(places)}){why}"
        for (part, ident, why), places in missing.items()
    )
    return (
        f"Company {company_id}: the mapping settings name ids its accounting software does "
        f"not have: {named}. Codat lists the valid ones at GET /companies/{company_id}"
        "/sync/expenses/mappingOptions (suppliers at /data/suppliers)."
    )


class ReferenceLookup:
    """One company's ids, from one mappingOptions answer and a supplier lookup per id."""

    def __init__(self, client: CodatClient, company_id: str, options: dict) -> None:
        self.client, self.company_id = client, company_id
        accounts = options.get("accounts") or []
        self.accounts = {a.get("id"): bool(a.get("isBankAccount")) for a in accounts}
        self.tax_rates = {t.get("id") for t in options.get("taxRates") or []}
        self.tracking = {t.get("id") for t in options.get("trackingCategories") or []}
        self.suppliers: dict[str, bool] = {}

    def problem(self, part: str, ident: str) -> str | None:
        """None when the id exists as that part, else "" or a reason to add to its name."""
        if part in ("account", "bank_account"):
            if ident not in self.accounts:
                return ""
            if part == "bank_account" and not self.accounts[ident]:
                return " is an account but not a bank account"
            return None
        if part == "contact":
            if ident not in self.suppliers:
                self.suppliers[ident] = self.client.supplier_exists(self.company_id, ident)
            return None if self.suppliers[ident] else ""
        known = self.tax_rates if part == "tax_rate" else self.tracking
        return None if ident in known else ""


def store_problem(path: str) -> str | None:
    if is_postgres(path):
        try:
            migrate(path)
        except CodatExpensesError as error:
            return f"{str(error).rstrip('.')}. Check 'status_store' (the PostgreSQL URL)."
        return None
    target = Path(path).expanduser()
    try:
        if target.exists():
            migrate(str(target))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=target.parent, prefix=".check-"):
                pass
    except OSError as error:
        detail = f"{error.strerror}: {error.filename}" if error.strerror else str(error)
    except CodatExpensesError as error:
        detail = str(error).rstrip(".")
    else:
        return None
    return (
        f"The status store {path} cannot be written ({detail}). Set 'status_store' "
        "to a file in a folder this process can write to."
    )
