"""What `check` tries, in order, each failure a sentence a person can act on."""

from __future__ import annotations

import tempfile
from pathlib import Path

from destination_codat_expenses.codat.client import CodatClient
from destination_codat_expenses.companies import learn_company
from destination_codat_expenses.config import Config
from destination_codat_expenses.errors import CodatAPIError, CodatExpensesError, FatalAPIError
from destination_codat_expenses.store.db import migrate


def connection_problem(settings: Config, client: CodatClient) -> str | None:
    """None when everything needed for a write works, else why not."""
    return codat_problem(settings, client) or store_problem(settings.status_store_path)


def codat_problem(settings: Config, client: CodatClient) -> str | None:
    try:
        client.list_companies(page_size=1)
        if settings.company_id:
            return company_problem(client, settings.company_id)
    except FatalAPIError as error:
        if error.status in (401, 403):
            return (
                f"Codat refused the API key ({error.status}). Copy a current key from the "
                "Codat Portal (Developers > API keys)."
            )
        return f"Codat answered {error.status}: {error.detail}"
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


def store_problem(path: str) -> str | None:
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
        f"The status store {path} cannot be written ({detail}). Set 'status_store_path' "
        "to a file in a folder this process can write to."
    )
