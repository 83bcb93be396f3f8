"""The company's name, kept for the people reading the report.

Codat names each company (GET /companies/{companyId}); the status store keeps that name beside
the platforms its connections named, once per company per run, so the report can show "Acme Ltd"
next to an id. A name is for people only: when Codat will not give it, the run goes on and the
name read before (if any) stays.
"""

from __future__ import annotations

import logging

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.companies import CompanyInfo
from destination_codat_expenses.errors import CodatAPIError
from destination_codat_expenses.store.status_store import StatusStore

logger = logging.getLogger("airbyte")


def remember_company(client: CodatClient, store: StatusStore, info: CompanyInfo) -> None:
    """Record the company's name and platforms (nothing for a company Codat does not know)."""
    if not info.exists:
        return
    try:
        name = client.get_company(info.company_id).get("name")
    except CodatAPIError as error:  # already scrubbed of secrets by the client
        logger.warning("company %s: its name could not be read (%s)", info.company_id, error)
        name = None
    store.record_company(
        info.company_id,
        name if isinstance(name, str) and name.strip() else None,
        info.source_platform,
        info.target_platform,
    )
