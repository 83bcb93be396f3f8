"""A scripted Codat behind an httpx.MockTransport, for unit tests of pushes and the pipeline.

It answers the few endpoints a push and its bookkeeping use, records every request, and can be
told to refuse the next create (a status and a body) or to hold it until released, so a test can
see what happens while a push is in flight. Each test also gets a real DuckDB store file.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from decimal import Decimal

import httpx

from destination_codat_expenses.codat.client import AttemptPolicy, CodatClient
from destination_codat_expenses.config import Config
from destination_codat_expenses.mapping import MappedTransaction, map_record

COMPANY = "11111111-1111-4111-8111-111111111111"
MISSING_COMPANY = "22222222-2222-4222-8222-222222222222"
KEY = "unit-test-key"
STREAM = "card_spend"
EXPENSES = re.compile(r"^/companies/(?P<company>[^/]+)/sync/expenses(?P<rest>/.*)$")
ONE_COMPANY = re.compile(r"^/companies/(?P<company>[^/]+)$")
COMPANY_NAME = "Fake Books Ltd"


def settings(**changes) -> Config:
    return Config.from_mapping(
        {"api_key": KEY, "company_id": COMPANY, "status_store_path": "unused", **changes}
    )


def flat(source_id: str, amount: str = "12.00", **changes) -> dict:
    return {
        "id": source_id,
        "date": "2024-05-02",
        "amount": amount,
        "tax_amount": "2.00",
        "currency": "GBP",
        "merchant": "Cafe",
        "account_id": "402",
        "tax_rate_id": "STD",
        **changes,
    }


def mapped(source_id: str, amount: str = "12.00") -> MappedTransaction:
    return map_record(flat(source_id, amount), STREAM, settings().mapping)


class FakeCodat:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.refusals: list[tuple[int, dict]] = []  # answers for the next creates, in turn
        self.hold_next_create: threading.Event | None = None  # set: the next create waits
        self.create_entered = threading.Event()
        self.completed: dict[str, str] = {}  # transaction id -> the sync Codat completed it in
        self.company_name_status = 200  # what GET /companies/{id} answers
        self.lock = threading.Lock()

    def client(self) -> CodatClient:
        http = httpx.Client(transport=httpx.MockTransport(self.answer), base_url="https://codat")
        return CodatClient(http, KEY, AttemptPolicy(attempts=1), sleep=lambda s: None)

    # -- what the tests read --------------------------------------------------------------------
    def posts(self, ending: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == "POST" and r.url.path.endswith(ending)]

    def created(self) -> list[list[str]]:
        """The ids each create carried, in order."""
        return [
            [item["id"] for item in json.loads(r.content)]
            for r in self.posts("/expense-transactions")
            if "/data/" not in r.url.path
        ]

    # -- the server -----------------------------------------------------------------------------
    def answer(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        path = request.url.path
        if path.endswith("/connections"):
            return self.connections(path)
        if ONE_COMPANY.match(path) and MISSING_COMPANY not in path:
            return self.company(path)
        match = EXPENSES.match(path)
        if match is None:
            return httpx.Response(404, json={"error": "Not found"})
        return self.expenses(request, match["rest"])

    def company(self, path: str) -> httpx.Response:
        if self.company_name_status != 200:  # a test makes the name unreadable
            return httpx.Response(self.company_name_status, json={"error": "Forbidden"})
        company_id = ONE_COMPANY.match(path)["company"]
        return httpx.Response(200, json={"id": company_id, "name": COMPANY_NAME})

    def connections(self, path: str) -> httpx.Response:
        if MISSING_COMPANY in path:
            return httpx.Response(404, json={"error": "Company not found"})
        accounting = {"sourceType": "Accounting", "platformName": "Xero", "status": "Linked"}
        return httpx.Response(200, json={"results": [accounting], "_links": {}})

    def expenses(self, request: httpx.Request, rest: str) -> httpx.Response:
        if rest == "/config":
            return httpx.Response(200, json={"bankAccount": {"id": "b1"}})
        if rest == "/expense-transactions":
            return self.create(request)
        if rest == "/data/expense-transactions":
            return httpx.Response(200, json={"datasetId": str(uuid.uuid4())})
        if rest == "/syncs":
            return httpx.Response(200, json={"syncId": str(uuid.uuid4())})
        if rest == "/syncs/list/status":
            syncs = sorted(set(self.completed.values()))
            return httpx.Response(200, json=[{"syncId": s, "syncStatusCode": 2000} for s in syncs])
        return self.sync_transactions(rest)

    def create(self, request: httpx.Request) -> httpx.Response:
        hold, self.hold_next_create = self.hold_next_create, None
        if hold is not None:
            self.create_entered.set()
            assert hold.wait(10), "the held create was never released"
        if self.refusals:
            status, body = self.refusals.pop(0)
            return httpx.Response(status, json=body)
        json.loads(request.content, parse_float=Decimal)  # the body must be JSON
        return httpx.Response(200, json={"syncId": str(uuid.uuid4())})

    def sync_transactions(self, rest: str) -> httpx.Response:
        """`/syncs/{id}/transactions` and `/syncs/{id}/transactions/{transactionId}`: the
        transactions Codat completed in that sync."""
        parts = rest.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "syncs" or parts[2] != "transactions":
            return httpx.Response(404, json={"error": "Not found"})
        items = [
            {"transactionId": tid, "status": "Completed", "message": "Created directCost"}
            for tid, sync in self.completed.items()
            if sync == parts[1]
        ]
        if len(parts) == 4:
            items = [i for i in items if i["transactionId"] == parts[3]]
            return httpx.Response(200, json=items) if items else httpx.Response(404, json={})
        return httpx.Response(200, json={"results": items, "_links": {}})


def processed_before(*ids: str) -> tuple[int, dict]:
    """Codat's refusal of a create that carries ids it already processed."""
    named = ", ".join(ids)
    return 400, {"error": f"One or more transactions have previously been processed: {named}"}


def validation(*problems: tuple[str, str]) -> tuple[int, dict]:
    """Codat's schema check refusing items: (item id, message) pairs."""
    errors = [{"itemId": item, "message": message} for item, message in problems]
    return 400, {"error": "Validation failed", "validation": {"errors": errors}}
