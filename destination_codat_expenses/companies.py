"""What the pipeline needs to know about a company, learned once per run from Codat.

Learning a company takes Codat calls (its connections and its expense configuration, asked
together, then its name for the report): at Codat's latency, a fraction of a second each. So a
run learns each company in the background from its first record on (`learn`), many companies
at once, and only what needs the answer waits for it (`info`): the reading thread goes on
reading meanwhile, and the name is recorded without anyone waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
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


LEARNING_WORKERS = 16  # companies learned at once


def learn_company(client: CodatClient, company_id: str) -> CompanyInfo:
    """Target platform from the accounting connection, and the expense configuration: asked
    together, one round trip instead of two (the configuration of a company that turns out
    not to exist is not looked at)."""
    with ThreadPoolExecutor(1, thread_name_prefix="company-config") as beside:
        config_read = beside.submit(client.get_config, company_id)
        try:
            connections = client.list_connections(company_id)
        except FatalAPIError as error:
            if error.status == 404:
                return CompanyInfo(company_id, exists=False)
            raise
        config = expense_config(config_read)
    accounting = [c for c in connections if c.get("sourceType") == "Accounting"]
    expense = [c for c in connections if c.get("sourceType") == "Expense"]
    return CompanyInfo(
        company_id,
        exists=True,
        target_platform=accounting[0].get("platformName") if accounting else None,
        source_platform=expense[0].get("platformName") if expense else "Airbyte",
        linked=any(c.get("status") == "Linked" for c in accounting),
        config=config,
    )


def expense_config(read: Future) -> dict[str, Any] | None:
    try:
        return read.result()
    except FatalAPIError as error:
        if error.status != 404:
            raise
        return None


class Companies:
    """Each company learned once per run and shared by every thread: the reader starts learning
    it when it routes the company's first record (`learn`), and waits for the answer only before
    the company's first push (`info`); a push recording the sync it opened reads the same
    answer. `learned` (recording the name) runs in the background: `finish` waits for it."""

    def __init__(
        self, client: CodatClient, learned: Callable[[CompanyInfo], None] | None = None
    ) -> None:
        self.client = client
        self.learned = learned  # told of each company once, when first learned (its name)
        self.learning: dict[str, Future[CompanyInfo]] = {}
        self.telling: list[Future] = []  # the `learned` calls
        self.lock = threading.Lock()
        self.pool = ThreadPoolExecutor(LEARNING_WORKERS, thread_name_prefix="company")

    def learn(self, company_id: str) -> Future[CompanyInfo]:
        """The company's answer, asked of Codat in the background unless it was already."""
        with self.lock:
            future = self.learning.get(company_id)
            if future is None:
                future = self.learning[company_id] = self.pool.submit(self.ask, company_id)
            return future

    def info(self, company_id: str) -> CompanyInfo:
        """What Codat said of the company (waits if it is being asked; asks if it was not)."""
        return self.learn(company_id).result()

    def known(self, company_id: str) -> CompanyInfo | None:
        """The answer if it is in, without waiting (None: not asked, or not answered yet)."""
        with self.lock:
            future = self.learning.get(company_id)
        if future is None or not future.done() or future.exception() is not None:
            return None
        return future.result()

    def ask(self, company_id: str) -> CompanyInfo:
        info = learn_company(self.client, company_id)
        if self.learned is not None:
            with self.lock:
                self.telling.append(self.pool.submit(self.learned, info))
        return info

    def finish(self) -> None:
        """Wait until every company asked about has been told of; raises what telling raised
        (what asking raised, the company's first push met already)."""
        with self.lock:
            asked = list(self.learning.values())
        wait(asked)
        with self.lock:
            telling = list(self.telling)
        for future in telling:
            future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
