"""What the pipeline needs to know about a company, learned once per run from Codat."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.errors import FatalAPIError


@dataclass(frozen=True)
class CompanyInfo:
    company_id: str
    exists: bool
    target_platform: str | None = None
    source_platform: str | None = None
    linked: bool = False
    config: dict[str, Any] | None = None


def learn_company(client: CodatClient, company_id: str) -> CompanyInfo:
    """Target platform from the accounting connection, and the expense configuration."""
    try:
        connections = client.list_connections(company_id)
    except FatalAPIError as error:
        if error.status == 404:
            return CompanyInfo(company_id, exists=False)
        raise
    accounting = [c for c in connections if c.get("sourceType") == "Accounting"]
    expense = [c for c in connections if c.get("sourceType") == "Expense"]
    try:
        config = client.get_config(company_id)
    except FatalAPIError as error:
        if error.status != 404:
            raise
        config = None
    return CompanyInfo(
        company_id,
        exists=True,
        target_platform=accounting[0].get("platformName") if accounting else None,
        source_platform=expense[0].get("platformName") if expense else "Airbyte",
        linked=any(c.get("status") == "Linked" for c in accounting),
        config=config,
    )


class Companies:
    """Each company learned once per run and shared by every thread: the reader learns it when
    it routes the company's first record, before any push for it; a push recording the sync it
    opened reads the same answer. No lock is held while Codat is asked."""

    def __init__(
        self, client: CodatClient, learned: Callable[[CompanyInfo], None] | None = None
    ) -> None:
        self.client = client
        self.learned = learned  # told of each company once, when first learned (its name)
        self.known: dict[str, CompanyInfo] = {}
        self.lock = threading.Lock()

    def info(self, company_id: str) -> CompanyInfo:
        with self.lock:
            known = self.known.get(company_id)
        if known is not None:
            return known
        learned = learn_company(self.client, company_id)
        with self.lock:
            known = self.known.setdefault(company_id, learned)
        if known is learned and self.learned:
            self.learned(learned)
        return known
